//! The OpenID Connect settings of `--auth oidc`: flags, `KINDLING_OIDC_*` variables and the
//! `[auth.oidc]` table, resolved into the auth crate's `OidcConfig`.

use anyhow::{bail, Result};
use clap::Args;
use kindling_auth::{parse_algorithm, OidcConfig};
use serde::Deserialize;
use std::time::Duration;

/// OIDC flags of `kindling serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct OidcArgs {
    /// The issuer tokens must name (`iss`).
    #[arg(long, env = "KINDLING_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The audience tokens must name (`aud`), e.g. this service's client id.
    #[arg(long, env = "KINDLING_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Where the issuer publishes its keys (its `jwks_uri`).
    #[arg(long, env = "KINDLING_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// The claim naming the user (default `sub`).
    #[arg(long, env = "KINDLING_OIDC_USER_CLAIM")]
    pub oidc_user_claim: Option<String>,
    /// The claim listing the user's groups (default `groups`).
    #[arg(long, env = "KINDLING_OIDC_GROUPS_CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// The signature algorithms taken (default `RS256,ES256`; asymmetric only).
    #[arg(long, env = "KINDLING_OIDC_ALGORITHMS", value_delimiter = ',')]
    pub oidc_algorithms: Vec<String>,
    /// A token naming an unknown key makes the node fetch the issuer's keys again, at most
    /// once in this many seconds (default 10).
    #[arg(long, env = "KINDLING_OIDC_REFETCH_SECS")]
    pub oidc_refetch_secs: Option<u64>,
}

/// The `[auth.oidc]` table: the same settings, without the `oidc-` prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct OidcFile {
    issuer: Option<String>,
    audience: Option<String>,
    jwks_url: Option<String>,
    user_claim: Option<String>,
    groups_claim: Option<String>,
    algorithms: Option<Vec<String>>,
    refetch_secs: Option<u64>,
}

impl OidcArgs {
    /// The issuer's settings, flags over the file.
    pub(super) fn resolve(self, file: Option<OidcFile>) -> Result<OidcConfig> {
        let f = file.unwrap_or_default();
        let (Some(issuer), Some(audience), Some(jwks_url)) = (
            self.oidc_issuer.or(f.issuer),
            self.oidc_audience.or(f.audience),
            self.oidc_jwks_url.or(f.jwks_url),
        ) else {
            bail!("--auth oidc needs --oidc-issuer, --oidc-audience and --oidc-jwks-url");
        };
        if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
            bail!("--oidc-jwks-url must be an http(s) URL, not {jwks_url:?}");
        }
        let names = match self.oidc_algorithms.is_empty() {
            true => f
                .algorithms
                .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]),
            false => self.oidc_algorithms,
        };
        let mut algorithms = vec![];
        for name in names {
            let Some(a) = parse_algorithm(name.trim()) else {
                bail!(
                    "--oidc-algorithms: {name:?} is not an asymmetric JWT algorithm (RS256, \
                     RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
                );
            };
            algorithms.push(a);
        }
        Ok(OidcConfig {
            issuer,
            audience,
            jwks_url,
            user_claim: self
                .oidc_user_claim
                .or(f.user_claim)
                .unwrap_or_else(|| "sub".into()),
            groups_claim: self
                .oidc_groups_claim
                .or(f.groups_claim)
                .unwrap_or_else(|| "groups".into()),
            algorithms,
            leeway_secs: 30,
            refetch_after: Duration::from_secs(
                self.oidc_refetch_secs
                    .or(f.refetch_secs)
                    .unwrap_or(10)
                    .max(1),
            ),
        })
    }
}
