//! The REST API listener's bounds: flags, `KINDLING_*` variables and the `[http]` table of
//! the configuration file, resolved into [`HttpConfig`].

use crate::http_server::Limits;
use anyhow::{bail, Result};
use clap::Args;
use serde::Deserialize;
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
}

/// The `[http]` table of the configuration file: the same settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct HttpFile {
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    http_header_timeout_secs: Option<u64>,
    max_long_polls: Option<usize>,
}

/// The listener's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    pub limits: Limits,
    pub max_long_polls: usize,
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
        Ok(HttpConfig {
            limits: Limits {
                max_connections: at_least_one("max-connections", max_connections)?,
                per_client: at_least_one("max-connections-per-client", per_client)?,
                header_timeout: Duration::from_secs(header),
            },
            max_long_polls: self.max_long_polls.or(file.max_long_polls).unwrap_or(512),
        })
    }
}
