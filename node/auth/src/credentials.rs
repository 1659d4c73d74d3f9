//! The credentials of a request, read from its `Authorization` header: HTTP Basic (RFC 7617)
//! or a Bearer token (RFC 6750). Anything else is refused with a message saying what was
//! wrong, never echoing the secret.

use crate::error::AuthError;
use base64::Engine;

/// The longest `Authorization` header read; longer ones are refused before decoding.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// What a request presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Credentials::Bearer(_) => write!(f, "Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// Reads an `Authorization` header's value (as bytes: a header need not be UTF-8).
    pub fn parse(value: &[u8]) -> Result<Credentials, AuthError> {
        let malformed = |m: &str| Err(AuthError::Malformed(m.to_string()));
        if value.len() > MAX_HEADER_LEN {
            return Err(AuthError::Malformed(format!(
                "longer than {MAX_HEADER_LEN} bytes"
            )));
        }
        let Ok(value) = std::str::from_utf8(value) else {
            return malformed("not UTF-8");
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                return malformed("Basic credentials are not valid base64");
            };
            let Ok(decoded) = String::from_utf8(decoded) else {
                return malformed("Basic credentials are not UTF-8");
            };
            let Some((user, password)) = decoded.split_once(':') else {
                return malformed("Basic credentials must be user:password");
            };
            if user.is_empty() {
                return malformed("Basic credentials have an empty user name");
            }
            Ok(Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if rest.is_empty() || rest.contains(' ') {
                return malformed("a Bearer token is one word");
            }
            Ok(Credentials::Bearer(rest.to_string()))
        } else {
            Err(AuthError::Malformed(
                "the scheme must be Basic or Bearer".to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn reads_basic_and_bearer() {
        assert_eq!(
            Credentials::parse(basic("alice:pa:ss").as_bytes()).unwrap(),
            Credentials::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            Credentials::parse(b"bearer abc.def").unwrap(),
            Credentials::Bearer("abc.def".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_without_echoing_it() {
        let huge = format!("Basic {}", "A".repeat(MAX_HEADER_LEN));
        for (value, needle) in [
            (b"Basic !!!".to_vec(), "base64"),
            (basic("nocolon").into_bytes(), "user:password"),
            (basic(":pw").into_bytes(), "empty user"),
            (b"Digest x".to_vec(), "Basic or Bearer"),
            (b"Bearer".to_vec(), "one word"),
            (vec![b'B', 0xff, 0xfe], "UTF-8"),
            (huge.into_bytes(), "longer than"),
        ] {
            let e = Credentials::parse(&value).unwrap_err();
            let AuthError::Malformed(m) = &e else {
                panic!("{e:?}")
            };
            assert!(m.contains(needle), "{m}");
            assert!(!m.contains("!!!") && !m.contains("nocolon"), "{m}");
        }
        let secret = Credentials::parse(basic("alice:hunter2").as_bytes()).unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
