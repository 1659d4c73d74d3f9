//! The authentication settings of `kindling serve`: flags, `KINDLING_*` variables and the
//! `[auth]` table of the configuration file, resolved into [`AuthConfig`]. A node without
//! authentication serves every caller as an admin, so it refuses to listen beyond loopback
//! unless the operator says `--insecure-no-auth`; likewise its Raft port without the
//! cluster secret.

use anyhow::{bail, Result};
use clap::Args;
use kindling_auth::{AuthMode, JobRules, LdapConfig, OidcConfig, RoleMap, TrustedProxy};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Authentication flags of `kindling serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {
    /// How callers authenticate: `none` (the default; the node then listens on loopback only),
    /// `basic` (HTTP Basic against `--users-file`), `ldap` (HTTP Basic checked by an LDAP
    /// bind), `oidc` (Bearer tokens of an OpenID Connect issuer), or several:
    /// `basic,ldap,oidc` (the users file before the directory).
    #[arg(long = "auth", env = "KINDLING_AUTH")]
    pub mode: Option<String>,
    /// The users of `--auth basic`, as `kindling users add` writes them; re-read when it
    /// changes.
    #[arg(long, env = "KINDLING_USERS_FILE")]
    pub users_file: Option<PathBuf>,
    /// Groups whose members are admins (default `admins`).
    #[arg(long, env = "KINDLING_ADMIN_GROUPS", value_delimiter = ',')]
    pub admin_groups: Vec<String>,
    /// Groups whose members only view (default `viewers`).
    #[arg(long, env = "KINDLING_VIEWER_GROUPS", value_delimiter = ',')]
    pub viewer_groups: Vec<String>,
    /// Users who may run jobs as another user (`proxyUser`, `doAs`).
    #[arg(long, env = "KINDLING_SUPERUSERS", value_delimiter = ',')]
    pub superusers: Vec<String>,
    /// Users who may view every job.
    #[arg(long, env = "KINDLING_VIEW_USERS", value_delimiter = ',')]
    pub view_users: Vec<String>,
    /// Users who may view and modify every job.
    #[arg(long, env = "KINDLING_MODIFY_USERS", value_delimiter = ',')]
    pub modify_users: Vec<String>,
    /// The header a trusted proxy names the authenticated user in (e.g. `X-Remote-User`);
    /// believed only from `--trusted-proxies`.
    #[arg(long, env = "KINDLING_TRUSTED_USER_HEADER")]
    pub trusted_user_header: Option<String>,
    /// The header a trusted proxy lists the user's groups in, comma-separated.
    #[arg(long, env = "KINDLING_TRUSTED_GROUPS_HEADER")]
    pub trusted_groups_header: Option<String>,
    /// The addresses of the proxies whose headers are believed: CIDRs or single addresses.
    #[arg(long, env = "KINDLING_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// The cluster's shared secret (at least 32 bytes; the same file on every member):
    /// members prove it on every Raft call and every request one forwards to another.
    #[arg(long, env = "KINDLING_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Listen beyond loopback without authentication: every caller is an admin.
    #[arg(long, env = "KINDLING_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    #[command(flatten)]
    pub ldap: super::ldap::LdapArgs,
    #[command(flatten)]
    pub oidc: super::oidc::OidcArgs,
}

/// The `[auth]` table of the configuration file: the same settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct AuthFile {
    mode: Option<String>,
    users_file: Option<PathBuf>,
    admin_groups: Option<Vec<String>>,
    viewer_groups: Option<Vec<String>>,
    superusers: Option<Vec<String>>,
    view_users: Option<Vec<String>>,
    modify_users: Option<Vec<String>>,
    trusted_user_header: Option<String>,
    trusted_groups_header: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    cluster_secret_file: Option<PathBuf>,
    insecure_no_auth: Option<bool>,
    ldap: Option<super::ldap::LdapFile>,
    oidc: Option<super::oidc::OidcFile>,
}

/// How the node authenticates and authorizes callers.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub users_file: Option<PathBuf>,
    pub ldap: Option<LdapConfig>,
    pub oidc: Option<OidcConfig>,
    pub roles: RoleMap,
    pub rules: JobRules,
    pub trusted_proxy: Option<TrustedProxy>,
    pub cluster_secret_file: Option<PathBuf>,
}

impl AuthArgs {
    /// Resolves the settings (flags over the file) for a node listening on `listen` for
    /// clients and on `raft_listen` for its peers.
    pub(super) fn resolve(
        self,
        file: Option<AuthFile>,
        listen: SocketAddr,
        raft_listen: SocketAddr,
    ) -> Result<AuthConfig> {
        let file = file.unwrap_or_default();
        let list = |flag: Vec<String>, file: Option<Vec<String>>, default: &[&str]| {
            let v = if flag.is_empty() {
                file.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
            } else {
                flag
            };
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        let modes: Vec<String> = self
            .mode
            .or(file.mode)
            .unwrap_or_else(|| "none".into())
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        let (mut basic, mut ldap, mut oidc) = (false, false, false);
        for m in &modes {
            match m.as_str() {
                "none" if modes.len() == 1 => {}
                "basic" => basic = true,
                "ldap" => ldap = true,
                "oidc" => oidc = true,
                other => bail!(
                    "--auth must be none, or basic, ldap and oidc in any combination \
                     (basic,ldap,oidc), not {other:?}"
                ),
            }
        }
        // Any of them authenticates every caller (a bearer-only node refuses Basic).
        let mode = if basic || ldap || oidc {
            AuthMode::Basic
        } else {
            AuthMode::None
        };
        let users_file = self.users_file.or(file.users_file);
        if basic && users_file.is_none() {
            bail!("--auth basic needs --users-file (create it with `kindling users add`)");
        }
        let users_file = users_file.filter(|_| basic);
        let ldap = match ldap {
            true => Some(self.ldap.resolve(file.ldap)?),
            false => None,
        };
        let oidc = match oidc {
            true => Some(self.oidc.resolve(file.oidc)?),
            false => None,
        };
        let proxies = list(self.trusted_proxies, file.trusted_proxies, &[]);
        let trusted_proxy = match self.trusted_user_header.or(file.trusted_user_header) {
            None if proxies.is_empty() => None,
            None => bail!(
                "--trusted-proxies needs --trusted-user-header, the header they name the user in"
            ),
            Some(_) if proxies.is_empty() => bail!(
                "--trusted-user-header needs --trusted-proxies, the addresses of the proxies \
                 that set it (a header from anyone else would let a client name itself)"
            ),
            Some(user_header) => Some(TrustedProxy {
                user_header,
                groups_header: self.trusted_groups_header.or(file.trusted_groups_header),
                from: TrustedProxy::parse_addresses(&proxies)
                    .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
            }),
        };
        let insecure = self.insecure_no_auth || file.insecure_no_auth.unwrap_or(false);
        if mode == AuthMode::None && !listen.ip().is_loopback() && !insecure {
            bail!(
                "--listen {listen} is reachable beyond this machine, and no authentication is \
                 configured: set --auth basic with --users-file, or pass --insecure-no-auth to \
                 let every caller act as an admin"
            );
        }
        let cluster_secret_file = self.cluster_secret_file.or(file.cluster_secret_file);
        if cluster_secret_file.is_none() && !raft_listen.ip().is_loopback() && !insecure {
            bail!(
                "--raft-listen {raft_listen} is reachable beyond this machine, and no \
                 --cluster-secret-file is set: anyone reaching it could join, vote and append. \
                 Give every member the same secret file (e.g. head -c 32 /dev/urandom | base64), \
                 or pass --insecure-no-auth"
            );
        }
        Ok(AuthConfig {
            mode,
            users_file,
            ldap,
            oidc,
            roles: RoleMap {
                admin_groups: list(self.admin_groups, file.admin_groups, &["admins"]),
                viewer_groups: list(self.viewer_groups, file.viewer_groups, &["viewers"]),
            },
            rules: JobRules {
                superusers: list(self.superusers, file.superusers, &[]),
                view_users: list(self.view_users, file.view_users, &[]),
                modify_users: list(self.modify_users, file.modify_users, &[]),
            },
            trusted_proxy,
            cluster_secret_file,
        })
    }
}
