//! The REST API listener's bounds: flags, `KINDLING_*` variables and the `[http]` table of
//! the configuration file, resolved into [`HttpConfig`].

use crate::http_server::Limits;
use anyhow::{bail, Result};
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Listener flags of `kindling serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct HttpArgs {
    /// Open connections at most (default 4096; kept below the file-descriptor limit).
    #[arg(long, env = "KINDLING_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections at most from one client address (default 256); more are closed as
    /// they arrive.
    #[arg(long, env = "KINDLING_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,
    /// A connection that takes longer to send a request's headers, or is idle that long
    /// between requests, is closed (default 30).
    #[arg(long, env = "KINDLING_HTTP_HEADER_TIMEOUT_SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Long polls (`?wait=`) waiting at once at most (default 512); past it they answer at
    /// once, as without `wait`.
    #[arg(long, env = "KINDLING_MAX_LONG_POLLS")]
    pub max_long_polls: Option<usize>,
    /// An event stream (`/api/v1/stream`) whose client takes no message for this long is
    /// closed, with a last message saying where to resume (default 30).
    #[arg(long, env = "KINDLING_STREAM_STALL_SECS")]
    pub stream_stall_secs: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); re-read when it changes.
    #[arg(long, env = "KINDLING_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "KINDLING_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The certificates (PEM) a member trusts when it forwards a request to another
    /// member over HTTPS; default: the chain of `--tls-cert`.
    #[arg(long, env = "KINDLING_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

/// The `[http]` table of the configuration file: the same settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct HttpFile {
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    http_header_timeout_secs: Option<u64>,
    max_long_polls: Option<usize>,
    stream_stall_secs: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
}

/// The listener's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub limits: Limits,
    pub max_long_polls: usize,
    /// How long an event stream may wait on its client.
    pub stream_stall: Duration,
    pub tls: Option<TlsConfig>,
}

/// The files of HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

impl HttpArgs {
    /// Resolves the settings, flags over the file.
    pub(super) fn resolve(self, file: Option<HttpFile>) -> Result<HttpConfig> {
        let file = file.unwrap_or_default();
        let at_least_one = |name: &str, v: usize| {
            if v == 0 {
                bail!("--{name} must be at least 1");
            }
            Ok(v)
        };
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(4096);
        let per_client = self
            .max_connections_per_client
            .or(file.max_connections_per_client)
            .unwrap_or(256);
        let header = self
            .http_header_timeout_secs
            .or(file.http_header_timeout_secs)
            .unwrap_or(30);
        if !(1..=3600).contains(&header) {
            bail!("--http-header-timeout-secs must be between 1 and 3600, got {header}");
        }
        let stall = self
            .stream_stall_secs
            .or(file.stream_stall_secs)
            .unwrap_or(30);
        if !(1..=3600).contains(&stall) {
            bail!("--stream-stall-secs must be between 1 and 3600, got {stall}");
        }
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert,
                key,
                ca: self.tls_ca.or(file.tls_ca),
            }),
            (Some(_), None) => bail!("--tls-cert needs --tls-key, the certificate's private key"),
            (None, Some(_)) => {
                bail!("--tls-key needs --tls-cert, the certificate chain it signs for")
            }
        };
        Ok(HttpConfig {
            tls,
            limits: Limits {
                max_connections: at_least_one("max-connections", max_connections)?,
                per_client: at_least_one("max-connections-per-client", per_client)?,
                header_timeout: Duration::from_secs(header),
            },
            max_long_polls: self.max_long_polls.or(file.max_long_polls).unwrap_or(512),
            stream_stall: Duration::from_secs(stall),
        })
    }
}
