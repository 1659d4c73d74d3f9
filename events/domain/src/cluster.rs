//! The Spark clusters Kindling launches drivers on, as configuration that lives in the log
//! like everything else: a cluster's kind, connection, credentials, Spark conf and capacity.
//! One aggregate, [`Registry`] (in `registry`), holds every registered cluster. The node keeps a built-in cluster, [`DEFAULT_CLUSTER`], that is not in
//! the log: it is the node's own local backend, configured by its flags.
//!
//! Credentials are references only (paths of files every node can read): the log is readable
//! by operators, so no secret value ever enters it. `Debug` shows which kind of credentials a
//! cluster has, never where they are, and redacts Spark conf values that look like secrets.

use crate::ids::LogPosition;
pub use crate::registry::{Registry, RegistryCommand};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The built-in cluster: the node's local backend. Jobs that name no cluster run there.
pub const DEFAULT_CLUSTER: &str = "local";
/// The Spark conf key of a job that names its cluster (Livy clients set it in `conf`).
pub const CLUSTER_CONF_KEY: &str = "kindling.cluster";
/// The longest cluster name: a DNS label, so a name fits in paths, labels and URLs.
pub const MAX_NAME_LEN: usize = 63;

/// Whether `name` can name a cluster: 1 to 63 lowercase letters, digits and `-`, starting
/// with a letter and not ending with `-`. Returns what is wrong otherwise.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "must be 1 to {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{name:?} must start with a lowercase letter"));
    }
    if name.ends_with('-') {
        return Err(format!("{name:?} must not end with '-'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{name:?} has {c:?}; use lowercase letters, digits and '-'"
        ));
    }
    Ok(())
}

/// Which backend runs a cluster's drivers. New kinds are appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClusterKind {
    Local,
    Standalone,
    Kubernetes,
    Yarn,
}

impl ClusterKind {
    pub const ALL: [ClusterKind; 4] = [
        ClusterKind::Local,
        ClusterKind::Standalone,
        ClusterKind::Kubernetes,
        ClusterKind::Yarn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Local => "local",
            ClusterKind::Standalone => "standalone",
            ClusterKind::Kubernetes => "kubernetes",
            ClusterKind::Yarn => "yarn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The connection settings that say where drivers live: changing one moves the cluster,
    /// so it is refused while jobs run there (they could no longer be found).
    pub fn location_keys(self) -> &'static [&'static str] {
        match self {
            ClusterKind::Local => &[],
            ClusterKind::Standalone => &["restUrl", "webUiUrl"],
            ClusterKind::Kubernetes => &["apiServer", "namespace"],
            ClusterKind::Yarn => &["hadoopConfDir", "resourceManagers"],
        }
    }
}

impl fmt::Display for ClusterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How Kindling authenticates to a cluster: always by reference to files on the nodes, never
/// the secret itself. New kinds are appended, never inserted.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Credentials {
    #[default]
    None,
    /// A file holding a bearer token (re-read when it changes, as projected tokens rotate).
    TokenFile { path: String },
    /// A kubeconfig file, and the context to use (its current one when `None`).
    Kubeconfig {
        path: String,
        context: Option<String>,
    },
    /// A client certificate and its private key, PEM files.
    ClientCertificate { cert: String, key: String },
    /// A Kerberos principal and the keytab file holding its key.
    Keytab { principal: String, keytab: String },
}

impl Credentials {
    /// The kind's name, as the API shows it in place of the reference.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Credentials::None => "none",
            Credentials::TokenFile { .. } => "tokenFile",
            Credentials::Kubeconfig { .. } => "kubeconfig",
            Credentials::ClientCertificate { .. } => "clientCertificate",
            Credentials::Keytab { .. } => "keytab",
        }
    }

    /// The files the credentials name, with the field each comes from.
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        match self {
            Credentials::None => vec![],
            Credentials::TokenFile { path } | Credentials::Kubeconfig { path, .. } => {
                vec![("path", path)]
            }
            Credentials::ClientCertificate { cert, key } => vec![("cert", cert), ("key", key)],
            Credentials::Keytab { keytab, .. } => vec![("keytab", keytab)],
        }
    }
}

/// Only the kind: where credentials are is nobody's business in a log line.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            other => write!(f, "{}(<redacted>)", other.kind_name()),
        }
    }
}

/// Whether a Spark property would hold a credential (Spark's own redaction rule,
/// `spark.redaction.regex`: `(?i)secret|password|token|access[.]key`).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "token", "access.key"]
        .iter()
        .any(|w| k.contains(w))
}

/// Spark properties that name a Kubernetes secret rather than hold one: allowed in a
/// cluster's conf although their keys say "secret".
pub fn is_secret_reference_key(key: &str) -> bool {
    [
        "spark.kubernetes.driver.secretKeyRef.",
        "spark.kubernetes.executor.secretKeyRef.",
        "spark.kubernetes.driver.secrets.",
        "spark.kubernetes.executor.secrets.",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// Spark conf with the values of credential-like keys replaced, for showing.
pub fn redacted_conf(conf: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    conf.iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) && !is_secret_reference_key(k) {
                "<redacted>".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// What a cluster may run at once; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capacity {
    pub max_drivers: Option<u32>,
    pub max_driver_cores: Option<u32>,
    pub max_driver_memory_mb: Option<u64>,
}

/// A cluster's configuration, as registered.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    pub kind: ClusterKind,
    /// Where the cluster is and how drivers run there; the keys depend on the kind and are
    /// checked where requests come in, so a backend's new setting needs no new event.
    pub connection: BTreeMap<String, String>,
    pub credentials: Credentials,
    /// Spark conf applied to every job on the cluster before the job's own.
    pub spark_conf: BTreeMap<String, String>,
    pub capacity: Capacity,
}

impl ClusterConfig {
    /// A local cluster with nothing set.
    pub fn local() -> Self {
        ClusterConfig {
            kind: ClusterKind::Local,
            connection: BTreeMap::new(),
            credentials: Credentials::None,
            spark_conf: BTreeMap::new(),
            capacity: Capacity::default(),
        }
    }

    pub fn setting(&self, key: &str) -> Option<&str> {
        self.connection.get(key).map(String::as_str)
    }

    /// Whether `other` puts drivers somewhere else than this configuration does.
    pub fn moves_from(&self, other: &ClusterConfig) -> bool {
        self.kind != other.kind
            || self
                .kind
                .location_keys()
                .iter()
                .any(|k| self.setting(k) != other.setting(k))
    }
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("kind", &self.kind)
            .field("connection", &redacted_conf(&self.connection))
            .field("credentials", &self.credentials)
            .field("spark_conf", &redacted_conf(&self.spark_conf))
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// A registered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub config: ClusterConfig,
    /// The log position of the event that set `config`: it only grows, also across a delete
    /// and a new registration under the same name, so a node rebuilds a backend when it does.
    pub revision: LogPosition,
    pub registered_at_ms: i64,
    pub updated_at_ms: i64,
}
