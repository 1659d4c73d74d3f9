//! A browser's login on a node run with `--auth basic`: the session cookie it sets, requests
//! that authenticate by that cookie alone, the cross-site rule (a change needs
//! `X-Requested-By`), logging in with an API token, logging out, and the cap on one user's
//! logins.

use crate::auth::{Secured, PASSWORD};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};

fn send(req: RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().unwrap_or(Value::Null), headers)
}

/// The `name=value` part of a `Set-Cookie`, and its attributes.
fn cookie_of(headers: &reqwest::header::HeaderMap) -> (String, String) {
    let set = headers["set-cookie"].to_str().unwrap().to_string();
    let pair = set.split(';').next().unwrap().to_string();
    (pair, set)
}

fn login(n: &Secured, who: &str) -> (String, Value) {
    let req = n
        .http
        .post(n.node.url("/api/v1/login"))
        .basic_auth(who, Some(format!("{who}-{PASSWORD}")));
    let (status, me, headers) = send(req);
    assert_eq!(status, 200, "{me}");
    (cookie_of(&headers).0, me)
}

fn with_cookie(n: &Secured, method: &str, path: &str, cookie: &str) -> RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    n.http
        .request(method, n.node.url(path))
        .header("cookie", cookie)
}

fn logins(n: &Secured, who: &str) -> usize {
    let (_, list, _) = n.call("GET", "/api/v1/tokens", Some(who), None);
    let tokens = list["tokens"].as_array().unwrap();
    tokens.iter().filter(|t| t["name"] == "web login").count()
}

#[test]
fn a_browser_logs_in_acts_by_its_cookie_only_same_site_and_logs_out() {
    let dir = tempfile::tempdir().unwrap();
    let n = Secured::start(dir.path());

    // A page's script is not challenged to Basic (the browser would open its own dialog
    // over the page); anyone else is.
    let challenge = |mode: Option<&str>| {
        let mut req = n.http.get(n.node.url("/api/v1/whoami"));
        if let Some(mode) = mode {
            req = req.header("sec-fetch-mode", mode);
        }
        let (status, _, headers) = send(req);
        assert_eq!(status, 401);
        headers["www-authenticate"].to_str().unwrap().to_string()
    };
    assert!(!challenge(Some("cors")).contains("Basic"));
    assert!(challenge(Some("cors")).contains("Bearer"));
    assert!(challenge(Some("navigate")).contains("Basic"));
    assert!(challenge(None).contains("Basic"));

    // A password login sets an HttpOnly, SameSite=Strict cookie (not Secure over HTTP).
    let req = n
        .http
        .post(n.node.url("/api/v1/login"))
        .basic_auth("alice", Some(format!("alice-{PASSWORD}")));
    let (status, me, headers) = send(req);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"], "alice");
    assert_eq!(me["role"], "user");
    assert_eq!(me["authentication"], true);
    let (cookie, attributes) = cookie_of(&headers);
    assert!(cookie.starts_with("kindling_session=kdl_"), "{attributes}");
    for part in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(attributes.contains(part), "{attributes}");
    }
    assert!(!attributes.contains("Secure"), "{attributes}");
    assert_eq!(headers["cache-control"], "no-store");

    // The cookie alone authenticates.
    let (status, who, _) = send(with_cookie(&n, "GET", "/api/v1/whoami", &cookie));
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["user"], "alice");
    assert_eq!(who["expiresAt"], me["expiresAt"]);

    // A change by cookie without X-Requested-By is refused before anything happens; with it,
    // it goes through as the cookie's user.
    let body = json!({"file": n.app, "name": "by-cookie"});
    let before = n.call("GET", "/api/v1/jobs", Some("alice"), None).1["total"].clone();
    let (status, reply, _) = send(with_cookie(&n, "POST", "/api/v1/batches", &cookie).json(&body));
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["msg"].as_str().unwrap().contains("x-requested-by"),
        "{reply}"
    );
    let after = n.call("GET", "/api/v1/jobs", Some("alice"), None).1["total"].clone();
    assert_eq!(before, after, "the refused request created nothing");
    let (status, job, _) = send(
        with_cookie(&n, "POST", "/api/v1/batches", &cookie)
            .header("x-requested-by", "kindling-ui")
            .json(&body),
    );
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["owner"], "alice");

    // Other credentials win over a cookie.
    let req = with_cookie(&n, "GET", "/api/v1/whoami", &cookie)
        .basic_auth("bob", Some(format!("bob-{PASSWORD}")));
    assert_eq!(send(req).1["user"], "bob");

    // A login is the user in person: it may issue an API token, which a token may not.
    let (status, issued, _) = send(
        with_cookie(&n, "POST", "/api/v1/tokens", &cookie)
            .header("x-requested-by", "kindling-ui")
            .json(&json!({"name": "from-the-ui"})),
    );
    assert_eq!(status, 201, "{issued}");
    let (status, reply, _) = n.call(
        "POST",
        "/api/v1/tokens",
        Some("alice"),
        Some(json!({"name": "web login"})),
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(logins(&n, "alice"), 1);

    // Logged in with an API token, the cookie holds that token, and logging out leaves it.
    let api_token = issued["token"].as_str().unwrap();
    let req = n
        .http
        .post(n.node.url("/api/v1/login"))
        .bearer_auth(api_token);
    let (status, _, headers) = send(req);
    assert_eq!(status, 200);
    let (token_cookie, _) = cookie_of(&headers);
    assert_eq!(token_cookie, format!("kindling_session={api_token}"));
    let (status, _, headers) = send(
        with_cookie(&n, "POST", "/api/v1/logout", &token_cookie).header("x-requested-by", "x"),
    );
    assert_eq!(status, 200);
    assert!(cookie_of(&headers).1.contains("Max-Age=0"));
    let req = n
        .http
        .get(n.node.url("/api/v1/whoami"))
        .bearer_auth(api_token);
    assert_eq!(send(req).0, 200, "the API token lives on");

    // Logging out revokes the login: its cookie is refused, and told to go.
    let (status, reply, headers) =
        send(with_cookie(&n, "POST", "/api/v1/logout", &cookie).header("x-requested-by", "x"));
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["msg"].as_str().unwrap().contains("revoked"),
        "{reply}"
    );
    assert!(cookie_of(&headers).1.contains("Max-Age=0"));
    let (status, reply, headers) = send(with_cookie(&n, "GET", "/api/v1/whoami", &cookie));
    assert_eq!(status, 401, "{reply}");
    assert!(cookie_of(&headers).1.contains("Max-Age=0"));
    assert_eq!(logins(&n, "alice"), 0);

    // One user holds at most 20 logins: the 21st ends the oldest.
    let (first, _) = login(&n, "bob");
    for _ in 0..20 {
        login(&n, "bob");
    }
    assert_eq!(logins(&n, "bob"), 20);
    let (status, _, _) = send(with_cookie(&n, "GET", "/api/v1/whoami", &first));
    assert_eq!(status, 401, "the oldest login ended");
}
