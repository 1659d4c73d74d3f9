//! The configuration file (`--config`): the same settings as the flags, in TOML.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The same settings as a TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileConfig {
    pub(super) listen: Option<SocketAddr>,
    pub(super) driver_listen: Option<SocketAddr>,
    pub(super) driver_advertise: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) spark_home: Option<PathBuf>,
    pub(super) python: Option<PathBuf>,
    pub(super) local_master: Option<String>,
    pub(super) max_drivers: Option<usize>,
    pub(super) spark_conf: Option<BTreeMap<String, String>>,
    pub(super) driver_heartbeat_timeout_secs: Option<u64>,
    pub(super) recovery_grace_secs: Option<u64>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) node_id: Option<u64>,
    pub(super) event_log: Option<String>,
    pub(super) kafka_brokers: Option<String>,
    pub(super) kafka_topic: Option<String>,
    pub(super) kafka_replication: Option<i32>,
    pub(super) kafka_transactions: Option<bool>,
    pub(super) kafka_tail_wait_ms: Option<u64>,
    pub(super) kafka_properties: Option<BTreeMap<String, String>>,
    pub(super) kafka_secret_properties: Option<BTreeMap<String, PathBuf>>,
    pub(super) projections: Option<String>,
    pub(super) mongo_uri: Option<String>,
    pub(super) mongo_database: Option<String>,
    pub(super) mongo_password_file: Option<PathBuf>,
    pub(super) raft_listen: Option<SocketAddr>,
    pub(super) raft_advertise: Option<String>,
    pub(super) http_advertise: Option<String>,
    pub(super) join: Option<Vec<String>>,
    pub(super) drivers_dir: Option<PathBuf>,
    pub(super) credentials_dir: Option<PathBuf>,
    pub(super) driver_route: Option<String>,
    pub(super) kafka_route_prefix: Option<String>,
    /// The `[auth]` table.
    pub(super) auth: Option<super::auth::AuthFile>,
    /// The `[http]` table.
    pub(super) http: Option<super::http::HttpFile>,
}
