//! The LDAP settings of `--auth ldap`: flags, `KINDLING_LDAP_*` variables and the
//! `[auth.ldap]` table, resolved into the auth crate's `LdapConfig`. The service account's
//! password is read from a file, never taken as an argument.

use anyhow::{bail, Context, Result};
use clap::Args;
use kindling_auth::{LdapConfig, UserLookup};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// LDAP flags of `kindling serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct LdapArgs {
    /// The directory, `ldap://host:389` or `ldaps://host:636`.
    #[arg(long, env = "KINDLING_LDAP_URL")]
    pub ldap_url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[arg(long, env = "KINDLING_LDAP_STARTTLS")]
    pub ldap_starttls: bool,
    /// The CA certificates (PEM) of the directory's certificate (default: the system's).
    #[arg(long, env = "KINDLING_LDAP_CA_FILE")]
    pub ldap_ca_file: Option<PathBuf>,
    /// A user's DN, `{user}` replaced: `uid={user},ou=people,dc=example,dc=org`. Without
    /// it, users are found by a search as `--ldap-bind-dn`.
    #[arg(long, env = "KINDLING_LDAP_USER_DN")]
    pub ldap_user_dn: Option<String>,
    /// The service account that searches for users.
    #[arg(long, env = "KINDLING_LDAP_BIND_DN")]
    pub ldap_bind_dn: Option<String>,
    /// A file holding the service account's password.
    #[arg(long, env = "KINDLING_LDAP_BIND_PASSWORD_FILE")]
    pub ldap_bind_password_file: Option<PathBuf>,
    /// Where to search for users.
    #[arg(long, env = "KINDLING_LDAP_USER_BASE")]
    pub ldap_user_base: Option<String>,
    /// The filter that finds a user, `{user}` replaced (default `(uid={user})`).
    #[arg(long, env = "KINDLING_LDAP_USER_FILTER")]
    pub ldap_user_filter: Option<String>,
    /// Where to search for the user's groups (their `cn` is the group name).
    #[arg(long, env = "KINDLING_LDAP_GROUP_BASE")]
    pub ldap_group_base: Option<String>,
    /// The filter that finds the user's groups, `{dn}` and `{user}` replaced (default
    /// `(member={dn})`).
    #[arg(long, env = "KINDLING_LDAP_GROUP_FILTER")]
    pub ldap_group_filter: Option<String>,
}

/// The `[auth.ldap]` table: the same settings, without the `ldap-` prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct LdapFile {
    url: Option<String>,
    starttls: Option<bool>,
    ca_file: Option<PathBuf>,
    user_dn: Option<String>,
    bind_dn: Option<String>,
    bind_password_file: Option<PathBuf>,
    user_base: Option<String>,
    user_filter: Option<String>,
    group_base: Option<String>,
    group_filter: Option<String>,
}

impl LdapArgs {
    /// The directory's settings, flags over the file.
    pub(super) fn resolve(self, file: Option<LdapFile>) -> Result<LdapConfig> {
        let f = file.unwrap_or_default();
        let Some(url) = self.ldap_url.or(f.url) else {
            bail!("--auth ldap needs --ldap-url (ldap://host:389)");
        };
        let starttls = self.ldap_starttls || f.starttls.unwrap_or(false);
        match (url.split_once("://").map(|(s, _)| s), starttls) {
            (Some("ldap"), _) => {}
            (Some("ldaps"), false) => {}
            (Some("ldaps"), true) => {
                bail!("--ldap-starttls is for ldap:// URLs; ldaps:// is TLS already")
            }
            _ => bail!("--ldap-url must be ldap://host:port or ldaps://host:port, not {url:?}"),
        }
        let user = match self.ldap_user_dn.or(f.user_dn) {
            Some(t) if t.contains("{user}") => UserLookup::Template(t),
            Some(t) => bail!("--ldap-user-dn must contain {{user}}, not {t:?}"),
            None => {
                let (Some(bind_dn), Some(pw), Some(base)) = (
                    self.ldap_bind_dn.or(f.bind_dn),
                    self.ldap_bind_password_file.or(f.bind_password_file),
                    self.ldap_user_base.or(f.user_base),
                ) else {
                    bail!(
                        "--auth ldap needs --ldap-user-dn (a DN with {{user}}), or a search: \
                         --ldap-bind-dn, --ldap-bind-password-file and --ldap-user-base"
                    );
                };
                let bind_password = std::fs::read_to_string(&pw)
                    .with_context(|| {
                        format!("cannot read --ldap-bind-password-file {}", pw.display())
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                UserLookup::Search {
                    bind_dn,
                    bind_password,
                    base,
                    filter: self
                        .ldap_user_filter
                        .or(f.user_filter)
                        .unwrap_or_else(|| "(uid={user})".into()),
                }
            }
        };
        Ok(LdapConfig {
            url,
            starttls,
            ca_file: self.ldap_ca_file.or(f.ca_file),
            user,
            group_base: self.ldap_group_base.or(f.group_base),
            group_filter: self
                .ldap_group_filter
                .or(f.group_filter)
                .unwrap_or_else(|| "(member={dn})".into()),
            timeout: Duration::from_secs(5),
        })
    }
}
