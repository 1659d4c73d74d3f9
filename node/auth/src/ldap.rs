//! Users in an LDAP directory: HTTP Basic credentials are checked by binding as the user,
//! whose entry is found by a DN template (`uid={user},ou=people,dc=example,dc=org`) or by a
//! search under a service account; the user's groups are the entries a group search finds
//! (`(member={dn})` under a base). The user name is escaped for a DN and for a filter; an
//! empty password is refused before anything is sent (LDAP takes an empty password as an
//! anonymous bind, which succeeds). A directory that cannot be reached is an error of its
//! own, never a wrong password. `ldaps://` and StartTLS verify the directory's certificate
//! against a CA file or the system's roots.

use ldap3::{dn_escape, ldap_escape, LdapConn, LdapConnSettings, LdapError, Scope, SearchEntry};
use std::sync::Arc;
use std::time::Duration;

/// LDAP's result code for wrong credentials.
const INVALID_CREDENTIALS: u32 = 49;

/// How the node finds and checks users in a directory.
#[derive(Clone, PartialEq, Eq)]
pub struct LdapConfig {
    /// `ldap://host:389`, or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent.
    pub starttls: bool,
    /// The CA certificates (PEM) that sign the directory's certificate; without it, the
    /// system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// How to find a user's DN.
    pub user: UserLookup,
    /// Where groups are, and the filter that finds a user's (`{dn}` and `{user}` replaced).
    pub group_base: Option<String>,
    pub group_filter: String,
    /// Connecting and each operation give up after this.
    pub timeout: Duration,
}

/// How a user's DN is found.
#[derive(Clone, PartialEq, Eq)]
pub enum UserLookup {
    /// A DN with `{user}` in it.
    Template(String),
    /// A search under `base` with `filter` (`{user}` replaced), as `bind_dn`.
    Search {
        bind_dn: String,
        bind_password: String,
        base: String,
        filter: String,
    },
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("group_base", &self.group_base)
            .finish_non_exhaustive()
    }
}

/// What a directory said of a user's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapAnswer {
    /// The credentials are right; the user's groups.
    Valid(Vec<String>),
    /// No such user, or a wrong password.
    Invalid,
}

/// A directory the node cannot use now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the LDAP directory is unavailable: {0}")]
pub struct LdapUnavailable(pub String);

/// A directory to check credentials against.
pub struct Ldap {
    cfg: LdapConfig,
    /// TLS trusting `ca_file`, when given.
    tls: Option<Arc<rustls_021::ClientConfig>>,
}

impl std::fmt::Debug for Ldap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cfg.fmt(f)
    }
}

impl Ldap {
    /// The directory of `cfg`; fails naming the CA file if it holds no certificate.
    pub fn new(cfg: LdapConfig) -> Result<Ldap, String> {
        let tls = match &cfg.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("--ldap-ca-file {}: {e}", path.display()))?;
                let certs = rustls_pemfile_1::certs(&mut pem.as_slice())
                    .map_err(|_| format!("--ldap-ca-file {}: not PEM", path.display()))?;
                let mut roots = rustls_021::RootCertStore::empty();
                for c in certs {
                    roots
                        .add(&rustls_021::Certificate(c))
                        .map_err(|e| format!("--ldap-ca-file {}: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "--ldap-ca-file {}: no certificate in it",
                        path.display()
                    ));
                }
                Some(Arc::new(
                    rustls_021::ClientConfig::builder()
                        .with_safe_defaults()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                ))
            }
        };
        Ok(Ldap { cfg, tls })
    }

    /// Checks `user`'s `password`, on a connection of its own (blocking: call it off the
    /// async threads).
    pub fn check(&self, user: &str, password: &str) -> Result<LdapAnswer, LdapUnavailable> {
        if password.is_empty() || user.is_empty() {
            return Ok(LdapAnswer::Invalid);
        }
        let away = |e: LdapError| LdapUnavailable(e.to_string());
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.timeout)
            .set_starttls(self.cfg.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let mut conn = LdapConn::with_settings(settings, &self.cfg.url).map_err(away)?;
        conn.with_timeout(self.cfg.timeout);
        let dn = match &self.cfg.user {
            UserLookup::Template(t) => t.replace("{user}", &dn_escape(user)),
            UserLookup::Search {
                bind_dn,
                bind_password,
                base,
                filter,
            } => {
                conn.simple_bind(bind_dn, bind_password)
                    .and_then(|r| r.success())
                    .map_err(away)?;
                let filter = filter.replace("{user}", &ldap_escape(user));
                conn.with_timeout(self.cfg.timeout);
                let (entries, _) = conn
                    .search(base, Scope::Subtree, &filter, vec!["1.1"])
                    .and_then(|r| r.success())
                    .map_err(away)?;
                match <[_; 1]>::try_from(entries) {
                    Ok([entry]) => SearchEntry::construct(entry).dn,
                    // None, or more than one: not a user this node can tell apart.
                    Err(_) => return Ok(LdapAnswer::Invalid),
                }
            }
        };
        conn.with_timeout(self.cfg.timeout);
        match conn.simple_bind(&dn, password).map_err(away)?.rc {
            0 => {}
            INVALID_CREDENTIALS => return Ok(LdapAnswer::Invalid),
            rc => return Err(LdapUnavailable(format!("bind answered result code {rc}"))),
        }
        let mut groups = vec![];
        if let Some(base) = &self.cfg.group_base {
            let filter = self
                .cfg
                .group_filter
                .replace("{dn}", &ldap_escape(&dn))
                .replace("{user}", &ldap_escape(user));
            conn.with_timeout(self.cfg.timeout);
            let (entries, _) = conn
                .search(base, Scope::Subtree, &filter, vec!["cn"])
                .and_then(|r| r.success())
                .map_err(away)?;
            for e in entries {
                let e = SearchEntry::construct(e);
                groups.extend(e.attrs.get("cn").into_iter().flatten().cloned());
            }
        }
        let _ = conn.unbind();
        Ok(LdapAnswer::Valid(groups))
    }
}
