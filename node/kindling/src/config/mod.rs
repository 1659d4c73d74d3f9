//! The node's configuration: command-line flags, `KINDLING_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence, validated into [`Config`].

mod args;
mod auth;
mod file;
mod http;
mod ldap;
mod oidc;
pub mod store_security;
#[cfg(test)]
mod tests;

pub use args::ServeArgs;
pub use auth::AuthConfig;
use file::FileConfig;
pub use http::HttpConfig;
pub use store_security::KafkaSecurity;

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How session drivers reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverRouteConfig {
    Grpc,
    /// Per-session topics on these brokers.
    Kafka {
        brokers: String,
        prefix: String,
        replication: i32,
    },
}

/// Where events are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogConfig {
    Sled,
    Kafka {
        brokers: String,
        topic: String,
        replication: i32,
        transactions: bool,
        /// The follower's fetch wait at the end of the topic.
        tail_wait: Duration,
        /// How the clients authenticate and encrypt.
        security: KafkaSecurity,
    },
}

/// Where projections are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionConfig {
    Sled,
    Mongo {
        uri: String,
        database: String,
        /// The file holding the password of the user the URI names.
        password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub driver_listen: SocketAddr,
    pub driver_advertise: Option<String>,
    pub data_dir: PathBuf,
    pub spark_home: PathBuf,
    pub python: PathBuf,
    pub local_master: String,
    pub max_drivers: usize,
    pub spark_conf: BTreeMap<String, String>,
    pub driver_heartbeat_timeout: Duration,
    pub recovery_grace: Duration,
    pub max_body_bytes: usize,
    pub node_id: u64,
    pub log: LogConfig,
    pub projections: ProjectionConfig,
    pub raft_listen: SocketAddr,
    pub raft_advertise: Option<String>,
    pub http_advertise: Option<String>,
    pub join: Vec<String>,
    pub drivers_dir: PathBuf,
    /// Where registered clusters' credential files must lie.
    pub credentials_dir: PathBuf,
    pub driver_route: DriverRouteConfig,
    pub auth: AuthConfig,
    pub http: HttpConfig,
}

/// The project's venv, as `ops/dev/install-spark` creates it.
pub fn project_venv() -> PathBuf {
    if let Some(v) = std::env::var_os("KINDLING_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp".into());
    home.join(".cache/kindling/venv")
}

fn venv_spark_home(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-submit").exists())
}

/// A default sized for the machine: each driver takes about a core to start.
fn default_max_drivers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(2)
        .clamp(2, 64)
}

impl ServeArgs {
    pub fn resolve(self) -> Result<Config> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let venv = project_venv();
        let spark_home = self
            .spark_home
            .or(file.spark_home)
            .or_else(|| std::env::var_os("SPARK_HOME").map(PathBuf::from))
            .or_else(|| venv_spark_home(&venv));
        let Some(spark_home) = spark_home else {
            bail!(
                "no Spark found: pass --spark-home, set SPARK_HOME, or run ops/dev/install-spark \
                 to create the project venv at {}",
                venv.display()
            );
        };
        if !spark_home.join("bin/spark-submit").exists() {
            bail!(
                "--spark-home {} has no bin/spark-submit",
                spark_home.display()
            );
        }
        let python = self
            .python
            .or(file.python)
            .or_else(|| Some(venv.join("bin/python")).filter(|p| p.exists()))
            .unwrap_or_else(|| PathBuf::from("python3"));
        let mut spark_conf = file.spark_conf.unwrap_or_default();
        for kv in &self.spark_conf {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("--spark-conf {kv:?} is not key=value");
            };
            spark_conf.insert(k.trim().to_string(), v.trim().to_string());
        }
        let max_drivers = self
            .max_drivers
            .or(file.max_drivers)
            .unwrap_or_else(default_max_drivers);
        if max_drivers == 0 {
            bail!("--max-drivers must be at least 1");
        }
        let max_body_bytes = self
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(1024 * 1024);
        if max_body_bytes < 1024 {
            bail!("--max-body-bytes must be at least 1024");
        }
        let local_master = self
            .local_master
            .or(file.local_master)
            .unwrap_or_else(|| "local[2]".into());
        if !(local_master == "local" || local_master.starts_with("local[")) {
            bail!("--local-master must be local, local[N] or local[*], not {local_master:?}");
        }
        let heartbeat = self
            .driver_heartbeat_timeout_secs
            .or(file.driver_heartbeat_timeout_secs)
            .unwrap_or(10);
        if heartbeat == 0 {
            bail!("--driver-heartbeat-timeout-secs must be at least 1");
        }
        let log = match self.event_log.or(file.event_log).as_deref() {
            None | Some("sled") => LogConfig::Sled,
            Some("kafka") => {
                let Some(brokers) = self.kafka_brokers.or(file.kafka_brokers) else {
                    bail!("--event-log kafka needs --kafka-brokers host:port[,host:port...]");
                };
                let replication = self
                    .kafka_replication
                    .or(file.kafka_replication)
                    .unwrap_or(1);
                if replication < 1 {
                    bail!("--kafka-replication must be at least 1");
                }
                let tail_wait = self
                    .kafka_tail_wait_ms
                    .or(file.kafka_tail_wait_ms)
                    .unwrap_or(100);
                if !(1..=10_000).contains(&tail_wait) {
                    bail!("--kafka-tail-wait-ms must be between 1 and 10000, not {tail_wait}");
                }
                LogConfig::Kafka {
                    brokers,
                    topic: self
                        .kafka_topic
                        .or(file.kafka_topic)
                        .unwrap_or_else(|| "kindling.events".into()),
                    replication,
                    transactions: self
                        .kafka_transactions
                        .or(file.kafka_transactions)
                        .unwrap_or(true),
                    tail_wait: Duration::from_millis(tail_wait),
                    security: KafkaSecurity::resolve(
                        &self.kafka_properties,
                        &self.kafka_secret_properties,
                        file.kafka_properties,
                        file.kafka_secret_properties,
                    )?,
                }
            }
            Some(other) => bail!("--event-log must be sled or kafka, not {other:?}"),
        };
        let projections = match self.projections.or(file.projections).as_deref() {
            None | Some("sled") => ProjectionConfig::Sled,
            Some("mongodb") => {
                let Some(uri) = self.mongo_uri.or(file.mongo_uri) else {
                    bail!("--projections mongodb needs --mongo-uri mongodb://host:port");
                };
                store_security::check_mongo_uri(&uri)?;
                ProjectionConfig::Mongo {
                    uri,
                    password_file: self.mongo_password_file.or(file.mongo_password_file),
                    database: self
                        .mongo_database
                        .or(file.mongo_database)
                        .unwrap_or_else(|| "kindling".into()),
                }
            }
            Some(other) => bail!("--projections must be sled or mongodb, not {other:?}"),
        };
        let driver_route = match self.driver_route.or(file.driver_route).as_deref() {
            None | Some("grpc") => DriverRouteConfig::Grpc,
            Some("kafka") => {
                let LogConfig::Kafka {
                    brokers,
                    topic,
                    replication,
                    security,
                    ..
                } = &log
                else {
                    bail!(
                        "--driver-route kafka needs --event-log kafka: the routes live on the \
                         event log's brokers"
                    );
                };
                if !security.is_empty() {
                    bail!(
                        "--driver-route kafka does not carry Kafka client properties to the \
                         session drivers; with --kafka-property or --kafka-secret-property \
                         use --driver-route grpc"
                    );
                }
                let prefix = self
                    .kafka_route_prefix
                    .or(file.kafka_route_prefix)
                    .unwrap_or_else(|| route_prefix(topic));
                if prefix.is_empty() {
                    bail!("--kafka-route-prefix must not be empty");
                }
                DriverRouteConfig::Kafka {
                    brokers: brokers.clone(),
                    prefix,
                    replication: *replication,
                }
            }
            Some(other) => bail!("--driver-route must be grpc or kafka, not {other:?}"),
        };
        let node_id = self.node_id.or(file.node_id).unwrap_or(1);
        if node_id == 0 {
            bail!("--node-id must be at least 1");
        }
        let join: Vec<String> = if self.join.is_empty() {
            file.join.unwrap_or_default()
        } else {
            self.join
        };
        let join: Vec<String> = join
            .into_iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        for a in &join {
            if a.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                bail!("--join {a:?} is not host:port");
            }
        }
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8998".parse().unwrap());
        let raft_listen = self
            .raft_listen
            .or(file.raft_listen)
            .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        let auth = self.auth.resolve(file.auth, listen, raft_listen)?;
        let http = self.http.resolve(file.http)?;
        Ok(Config {
            auth,
            http,
            log,
            projections,
            driver_route,
            raft_listen,
            raft_advertise: self.raft_advertise.or(file.raft_advertise),
            http_advertise: self.http_advertise.or(file.http_advertise),
            join,
            drivers_dir: self
                .drivers_dir
                .or(file.drivers_dir)
                .unwrap_or_else(|| data_dir.join("drivers")),
            credentials_dir: self
                .credentials_dir
                .or(file.credentials_dir)
                .unwrap_or_else(|| data_dir.join("credentials")),
            listen,
            driver_listen: self
                .driver_listen
                .or(file.driver_listen)
                .unwrap_or_else(|| "127.0.0.1:8999".parse().unwrap()),
            driver_advertise: self.driver_advertise.or(file.driver_advertise),
            data_dir,
            spark_home,
            python,
            local_master,
            max_drivers,
            spark_conf,
            driver_heartbeat_timeout: Duration::from_secs(heartbeat),
            recovery_grace: Duration::from_secs(
                self.recovery_grace_secs
                    .or(file.recovery_grace_secs)
                    .unwrap_or(30),
            ),
            max_body_bytes,
            node_id,
        })
    }
}

/// The default prefix of the route topics: the event log topic's name without `.events`, so
/// that clusters sharing brokers keep apart.
fn route_prefix(log_topic: &str) -> String {
    log_topic
        .strip_suffix(".events")
        .unwrap_or(log_topic)
        .to_string()
}
