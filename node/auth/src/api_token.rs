//! The text of an API token Kindling issues: `kdl_<id>_<secret>`, where the id (16 hex
//! digits) is public (listed, and how a token is revoked) and the secret is 32 random bytes
//! in unpadded base64url. The prefix tells a Kindling token from an OIDC JWT in the same
//! `Authorization: Bearer` header, and lets secret scanners find leaked ones. Only the
//! secret's SHA-256 is ever stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

pub const API_TOKEN_PREFIX: &str = "kdl_";
const ID_LEN: usize = 16;
const SECRET_BYTES: usize = 32;

/// A token's two parts.
#[derive(PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    secret: String,
}

// The secret never reaches a log through `{:?}`.
impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// A new token with a random id and secret.
    pub fn generate() -> ApiToken {
        let id: [u8; ID_LEN / 2] = rand::random();
        let secret: [u8; SECRET_BYTES] = rand::random();
        ApiToken {
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            secret: URL_SAFE_NO_PAD.encode(secret),
        }
    }

    /// Whether `bearer` is meant as a Kindling token (rather than a JWT).
    pub fn is_one(bearer: &str) -> bool {
        bearer.starts_with(API_TOKEN_PREFIX)
    }

    /// The token in `text`, if it is shaped like one.
    pub fn parse(text: &str) -> Option<ApiToken> {
        let rest = text.strip_prefix(API_TOKEN_PREFIX)?;
        let (id, secret) = (rest.get(..ID_LEN)?, rest.get(ID_LEN..)?.strip_prefix('_')?);
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        let secret_ok = URL_SAFE_NO_PAD
            .decode(secret)
            .is_ok_and(|b| b.len() == SECRET_BYTES);
        (id.chars().all(hex) && secret_ok).then(|| ApiToken {
            id: id.into(),
            secret: secret.into(),
        })
    }

    /// The text a client sends: shown once, when the token is issued.
    pub fn text(&self) -> String {
        format!("{API_TOKEN_PREFIX}{}_{}", self.id, self.secret)
    }

    /// What is stored: the lowercase hex SHA-256 of the secret.
    pub fn secret_sha256(&self) -> String {
        Sha256::digest(self.secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether this token's secret is the one `stored` ([`ApiToken::secret_sha256`]) was
    /// made from, compared in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        let ours = self.secret_sha256();
        ours.len() == stored.len()
            && ours
                .bytes()
                .zip(stored.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_matches_only_its_own_digest() {
        let t = ApiToken::generate();
        let text = t.text();
        assert!(ApiToken::is_one(&text));
        assert_eq!(text.len(), 4 + 16 + 1 + 43);
        let parsed = ApiToken::parse(&text).unwrap();
        assert_eq!(parsed, t);
        let stored = t.secret_sha256();
        assert!(parsed.matches(&stored));
        assert!(!ApiToken::generate().matches(&stored));
        assert!(!format!("{t:?}").contains(&t.secret), "{t:?}");
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = ApiToken::generate().text();
        for bad in [
            "kdl_".to_string(),
            "kdl_0123456789abcdef".into(),
            "kdl_0123456789abcdef_".into(),
            good.replacen("kdl_", "kdx_", 1),
            good[..good.len() - 1].into(),
            format!("{good}A"),
            good.replacen(&good[4..6], "ZZ", 1),
            "eyJhbGciOiJSUzI1NiJ9.e30.sig".into(),
        ] {
            assert!(ApiToken::parse(&bad).is_none(), "{bad}");
        }
    }
}
