//! What the node's security settings build at start-up, before anything listens: the
//! authenticator (users file, LDAP, trusted proxy), the credentials directory clusters'
//! files must lie in, the TLS pair of the REST API, the cluster secret members prove to each
//! other, and the client a member forwards requests with. Every file is read here first, so
//! a wrong one stops the node with a message naming it (never its content).

use crate::config::{AuthConfig, Config};
use anyhow::Context;
use kindling_api as api;
use kindling_auth::{AuthMode, Authenticator, Ldap, Oidc, UsersFile};
use kindling_backend::GatewayTls;
use kindling_raft::ClusterSecret;
use std::sync::Arc;

pub struct Security {
    pub authenticator: Arc<Authenticator>,
    pub tls: Option<Arc<crate::tls::CertFiles>>,
    pub cluster_secret: Option<Arc<ClusterSecret>>,
}

impl Security {
    /// Reads every file the configuration names, and creates the credentials directory.
    pub fn open(cfg: &Config) -> anyhow::Result<Security> {
        credentials_dir(&cfg.credentials_dir)?;
        let tls = match &cfg.http.tls {
            Some(t) => Some(Arc::new(
                crate::tls::CertFiles::open(&t.cert, &t.key).map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        let cluster_secret = match &cfg.auth.cluster_secret_file {
            Some(path) => Some(Arc::new(
                ClusterSecret::read(path).map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        Ok(Security {
            authenticator: Arc::new(authenticator(&cfg.auth)?),
            tls,
            cluster_secret,
        })
    }

    /// What session drivers need to reach the driver gateway over TLS, when it serves TLS
    /// (it does whenever the REST API does, with the same certificate): the CA of `--tls-ca`,
    /// or, without it, the system's roots.
    pub fn gateway_tls(&self, cfg: &Config) -> anyhow::Result<Option<GatewayTls>> {
        let Some(t) = cfg.http.tls.as_ref().filter(|_| self.tls.is_some()) else {
            return Ok(None);
        };
        let ca_pem = match &t.ca {
            Some(ca) => Some(
                std::fs::read_to_string(ca)
                    .with_context(|| format!("cannot read --tls-ca {}", ca.display()))?,
            ),
            None => None,
        };
        Ok(Some(GatewayTls { ca_pem }))
    }

    /// The client a member forwards requests to the leader with: over HTTPS when this node
    /// serves it, trusting `--tls-ca` (or this node's own chain).
    pub fn forwarder(&self, cfg: &Config) -> anyhow::Result<api::forward::Forwarder> {
        let trusted = match (&cfg.http.tls, &self.tls) {
            (Some(t), Some(files)) => Some(match &t.ca {
                Some(ca) => std::fs::read(ca)
                    .with_context(|| format!("cannot read --tls-ca {}", ca.display()))?,
                None => files.chain_pem(),
            }),
            _ => None,
        };
        api::forward::Forwarder::new(cfg.max_body_bytes, trusted.as_deref())
            .map_err(anyhow::Error::msg)
    }
}

/// The node's authenticator, as configured.
fn authenticator(cfg: &AuthConfig) -> anyhow::Result<Authenticator> {
    let mut auth = match (cfg.mode, &cfg.users_file) {
        (AuthMode::Basic, Some(path)) => {
            let users = UsersFile::open(path).map_err(anyhow::Error::msg)?;
            Authenticator::basic(users, cfg.roles.clone())
        }
        _ => Authenticator::none(cfg.roles.clone()),
    };
    if let Some(ldap) = &cfg.ldap {
        auth = auth.with_ldap(Ldap::new(ldap.clone()).map_err(anyhow::Error::msg)?);
    }
    if let Some(oidc) = &cfg.oidc {
        auth = auth.with_oidc(Oidc::new(oidc.clone()).map_err(anyhow::Error::msg)?);
    }
    Ok(match &cfg.trusted_proxy {
        Some(proxy) => auth.with_trusted_proxy(proxy.clone()),
        None => auth,
    })
}

/// Creates the credentials directory if it is missing, readable by this user only.
fn credentials_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the credentials directory {}", dir.display()))
}
