//! The session cookie a browser logs in with, and the cross-site request rule that comes with
//! it. The cookie holds a Kindling API token's text (a login's own, or one the user logged in
//! with) and is `HttpOnly` (scripts cannot read it), `SameSite=Strict` and, when members serve
//! HTTPS, `Secure`. A browser sends it on any request to the node, also one a hostile page
//! causes; so a request that authenticates by the cookie and changes anything must carry
//! `X-Requested-By` (Livy's header), which a page of another origin cannot add without the
//! node's consent (a CORS preflight, which the node never grants).

use axum::http::{header, HeaderMap, HeaderValue, Method};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kindling_session";
/// The header a state-changing request authenticated by the cookie must carry.
pub const REQUESTED_BY: &str = "x-requested-by";

/// The session cookie's value in `headers`, if the request carries one.
pub fn session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// Whether a request authenticated by the cookie may go on: reads always, changes only with
/// [`REQUESTED_BY`].
pub fn may_change(method: &Method, headers: &HeaderMap) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers
            .get(REQUESTED_BY)
            .is_some_and(|v| !v.as_bytes().is_empty())
}

/// The `Set-Cookie` value that stores `token` for `max_age_secs`.
pub fn set(token: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    attributes(token, max_age_secs.max(0), secure)
}

/// The `Set-Cookie` value that makes the browser forget the cookie.
pub fn clear(secure: bool) -> HeaderValue {
    attributes("", 0, secure)
}

fn attributes(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    );
    // A token's text is base64url and digits: always a valid header value.
    HeaderValue::from_str(&text).expect("a cookie of token characters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_is_found_among_other_cookies() {
        let h = headers(&[("cookie", "theme=dark; kindling_session=kdl_1_x; other=1")]);
        assert_eq!(session(&h).as_deref(), Some("kdl_1_x"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "kindling_session=\"kdl_2\"")]);
        assert_eq!(session(&h).as_deref(), Some("kdl_2"));
        assert_eq!(session(&headers(&[("cookie", "kindling_session=")])), None);
        assert_eq!(
            session(&headers(&[("cookie", "xkindling_session=1")])),
            None
        );
        assert_eq!(session(&HeaderMap::new()), None);
    }

    #[test]
    fn changes_need_the_requested_by_header_and_reads_do_not() {
        let none = HeaderMap::new();
        assert!(may_change(&Method::GET, &none));
        assert!(!may_change(&Method::POST, &none));
        assert!(!may_change(&Method::DELETE, &none));
        let empty = headers(&[("x-requested-by", "")]);
        assert!(!may_change(&Method::POST, &empty));
        let ui = headers(&[("x-requested-by", "kindling-ui")]);
        assert!(may_change(&Method::POST, &ui));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = set("kdl_1_x", 60, true);
        let c = c.to_str().unwrap();
        for part in [
            "kindling_session=kdl_1_x",
            "Max-Age=60",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c}");
        }
        let plain = set("kdl_1_x", 60, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(clear(false).to_str().unwrap().contains("Max-Age=0"));
    }
}
