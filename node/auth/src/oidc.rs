//! Bearer tokens from an OpenID Connect issuer: JWTs whose signature is checked against the
//! issuer's published keys (JWKS), with an allow-list of algorithms (so neither `none` nor a
//! symmetric algorithm keyed with a public key can pass), the issuer and audience the node
//! expects, and `exp`/`nbf` within a small leeway. A token naming a key the node does not
//! know makes it fetch the keys again, at most once per `refetch_after`, which is how a key
//! rotation is followed. The user and groups come from configurable claims.

use crate::error::AuthError;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the node accepts from an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    /// Where the issuer publishes its keys.
    pub jwks_url: String,
    /// The claim that names the user (`sub`, `preferred_username`, `email`).
    pub user_claim: String,
    /// The claim that lists the user's groups.
    pub groups_claim: String,
    /// The algorithms a token may be signed with (asymmetric only).
    pub algorithms: Vec<Algorithm>,
    pub leeway_secs: u64,
    /// The keys are fetched again for an unknown key id at most this often.
    pub refetch_after: Duration,
}

/// The asymmetric algorithms, by name: what `--oidc-algorithms` may list.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    let all = [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
    ];
    all.into_iter().find(|a| format!("{a:?}") == name)
}

struct Keys {
    by_id: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    fetches: u64,
}

/// An issuer's tokens, checked against its keys.
pub struct Oidc {
    cfg: OidcConfig,
    keys: Mutex<Keys>,
    /// Made on first use, off the async threads (a blocking client owns a runtime, which
    /// must not be made or dropped on them).
    http: std::sync::OnceLock<Result<reqwest::blocking::Client, String>>,
}

impl Oidc {
    pub fn new(cfg: OidcConfig) -> Result<Oidc, String> {
        Ok(Oidc {
            cfg,
            keys: Mutex::new(Keys {
                by_id: HashMap::new(),
                fetched: None,
                fetches: 0,
            }),
            http: std::sync::OnceLock::new(),
        })
    }

    /// How many times the keys were fetched.
    pub fn fetches(&self) -> u64 {
        self.keys.lock().fetches
    }

    /// The user and groups of a valid `token` (blocking: it may fetch the keys).
    pub fn verify(&self, token: &str) -> Result<(String, Vec<String>), AuthError> {
        let bad = |why: &str| AuthError::InvalidToken(why.to_string());
        let header = decode_header(token).map_err(|_| bad("not a JWT"))?;
        if !self.cfg.algorithms.contains(&header.alg) {
            return Err(bad(&format!("algorithm {:?} is not allowed", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| bad("no key id (kid)"))?;
        let key = self
            .key(&kid)?
            .ok_or_else(|| bad("signed with a key the issuer does not publish"))?;
        // The header's algorithm, allowed above; the library checks it against the key's
        // family (an RSA key never verifies an HMAC or EC signature).
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        v.leeway = self.cfg.leeway_secs;
        v.validate_nbf = true;
        let data = decode::<Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            bad(match e.kind() {
                ExpiredSignature => "expired",
                ImmatureSignature => "not valid yet",
                InvalidAudience => "not for this audience",
                InvalidIssuer => "from another issuer",
                InvalidSignature => "its signature does not verify",
                MissingRequiredClaim(_) => "a required claim is missing",
                _ => "it cannot be verified",
            })
        })?;
        let claims = data.claims;
        let user = claims
            .get(&self.cfg.user_claim)
            .and_then(Value::as_str)
            .filter(|u| crate::UsersFile::valid_name(u))
            .ok_or_else(|| bad(&format!("claim {} is not a user name", self.cfg.user_claim)))?
            .to_string();
        let groups = match claims.get(&self.cfg.groups_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(g)) => g.split(',').map(|s| s.trim().to_string()).collect(),
            _ => vec![],
        };
        Ok((user, groups))
    }

    /// The key `kid`, fetching the issuer's keys if it is unknown and they were not fetched
    /// lately.
    fn key(&self, kid: &str) -> Result<Option<DecodingKey>, AuthError> {
        let mut keys = self.keys.lock();
        if let Some(k) = keys.by_id.get(kid) {
            return Ok(Some(k.clone()));
        }
        if keys
            .fetched
            .is_some_and(|t| t.elapsed() < self.cfg.refetch_after)
        {
            return Ok(None);
        }
        keys.fetched = Some(Instant::now());
        keys.fetches += 1;
        let http = self
            .http
            .get_or_init(|| {
                reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| format!("the JWKS client: {e}"))
            })
            .as_ref()
            .map_err(|e| AuthError::Unavailable(e.clone()))?;
        let set: JwkSet = http
            .get(&self.cfg.jwks_url)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .map_err(|e| AuthError::Unavailable(format!("the issuer's keys: {e}")))?;
        keys.by_id = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let id = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|k| (id, k))
            })
            .collect();
        Ok(keys.by_id.get(kid).cloned())
    }
}
