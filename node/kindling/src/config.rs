//! The node's configuration: command-line flags, `KINDLING_*` environment variables and an
//! optional TOML file (`--config`), in that order of precedence, validated into [`Config`].

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flags of `kindling serve`. Every flag also reads `KINDLING_<NAME>`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "KINDLING_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP address of the REST API (Livy's port by default).
    #[arg(long, env = "KINDLING_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// gRPC address drivers connect to.
    #[arg(long, env = "KINDLING_DRIVER_LISTEN")]
    pub driver_listen: Option<SocketAddr>,
    /// Address drivers are told to connect to (defaults to the bound driver address).
    #[arg(long, env = "KINDLING_DRIVER_ADVERTISE")]
    pub driver_advertise: Option<String>,
    /// Where the event log, projections and driver logs live.
    #[arg(long, env = "KINDLING_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Spark installation (then `SPARK_HOME`, then the project's venv).
    #[arg(long, env = "KINDLING_SPARK_HOME")]
    pub spark_home: Option<PathBuf>,
    /// Python for PySpark drivers (defaults to the project's venv, then `python3`).
    #[arg(long, env = "KINDLING_PYTHON")]
    pub python: Option<PathBuf>,
    /// Spark master of the local backend, e.g. `local[2]`.
    #[arg(long, env = "KINDLING_LOCAL_MASTER")]
    pub local_master: Option<String>,
    /// Most drivers running at once on the built-in `local` cluster; more jobs queue.
    #[arg(long, env = "KINDLING_MAX_DRIVERS")]
    pub max_drivers: Option<usize>,
    /// Default Spark conf for every job, `key=value` (repeatable).
    #[arg(
        long = "spark-conf",
        env = "KINDLING_SPARK_CONF",
        value_delimiter = ','
    )]
    pub spark_conf: Vec<String>,
    /// A silent session driver is declared dead after this many seconds.
    #[arg(long, env = "KINDLING_DRIVER_HEARTBEAT_TIMEOUT_SECS")]
    pub driver_heartbeat_timeout_secs: Option<u64>,
    /// How long a session's driver may take to reconnect after a node restart.
    #[arg(long, env = "KINDLING_RECOVERY_GRACE_SECS")]
    pub recovery_grace_secs: Option<u64>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "KINDLING_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Header carrying the authenticated user from a trusted proxy (e.g. `X-Remote-User`).
    #[arg(long, env = "KINDLING_TRUSTED_USER_HEADER")]
    pub trusted_user_header: Option<String>,
    /// This node's id.
    #[arg(long, env = "KINDLING_NODE_ID")]
    pub node_id: Option<u64>,
    /// Where the event log lives: `sled` (embedded, in the data dir) or `kafka`.
    #[arg(long, env = "KINDLING_EVENT_LOG")]
    pub event_log: Option<String>,
    /// Kafka bootstrap servers, `host:port,...` (with `--event-log kafka`).
    #[arg(long, env = "KINDLING_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// The event log's topic (created with one partition if missing).
    #[arg(long, env = "KINDLING_KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,
    /// Replication factor of a topic Kindling creates (3 in production).
    #[arg(long, env = "KINDLING_KAFKA_REPLICATION")]
    pub kafka_replication: Option<i32>,
    /// Whether the leader writes through a transactional producer, which the broker fences
    /// when a newer leader opens its own (`true`, the default). `false` leaves the Raft-term
    /// fence alone: for brokers whose transactions are incomplete (see docs/cluster.md).
    #[arg(long, env = "KINDLING_KAFKA_TRANSACTIONS")]
    pub kafka_transactions: Option<bool>,
    /// How long, in milliseconds, the log's follower waits at the end of the topic for new
    /// records (default 100). Kafka answers as soon as records arrive, so this only paces an
    /// idle follower's fetches; a broker that answers only when the wait is over (tansu 0.6)
    /// shows other nodes' writes after about half of it. Raise it to spare a slow broker.
    #[arg(long, env = "KINDLING_KAFKA_TAIL_WAIT_MS")]
    pub kafka_tail_wait_ms: Option<u64>,
    /// Where the projections live: `sled` (embedded) or `mongodb`.
    #[arg(long, env = "KINDLING_PROJECTIONS")]
    pub projections: Option<String>,
    /// MongoDB connection string (with `--projections mongodb`).
    #[arg(long, env = "KINDLING_MONGO_URI")]
    pub mongo_uri: Option<String>,
    /// MongoDB database of the projections (one per node).
    #[arg(long, env = "KINDLING_MONGO_DATABASE")]
    pub mongo_database: Option<String>,
    /// Address of this node's Raft link (peers dial it). Without it the node listens on a free
    /// loopback port, which is all a single node needs.
    #[arg(long, env = "KINDLING_RAFT_LISTEN")]
    pub raft_listen: Option<SocketAddr>,
    /// Address peers are told to dial for the Raft link (defaults to the bound address).
    #[arg(long, env = "KINDLING_RAFT_ADVERTISE")]
    pub raft_advertise: Option<String>,
    /// Address clients are told to use for this node's REST API (defaults to the bound one).
    #[arg(long, env = "KINDLING_HTTP_ADVERTISE")]
    pub http_advertise: Option<String>,
    /// Raft addresses of members of an existing cluster to join, `host:port,...`. Without
    /// it, a node whose Raft directory is empty starts a new cluster of its own.
    #[arg(long, env = "KINDLING_JOIN", value_delimiter = ',')]
    pub join: Vec<String>,
    /// Where the local backend keeps driver logs and exit codes. Nodes of one cluster on one
    /// machine share it, so whichever leads finds the drivers another launched.
    #[arg(long, env = "KINDLING_DRIVERS_DIR")]
    pub drivers_dir: Option<PathBuf>,
    /// How session drivers and the leader talk: `grpc` (the driver streams to the leader's
    /// driver gateway and reconnects after a failover) or `kafka` (each session has its own
    /// request and reply topics on the event log's brokers; needs `--event-log kafka`).
    #[arg(long, env = "KINDLING_DRIVER_ROUTE")]
    pub driver_route: Option<String>,
    /// Prefix of the sessions' route topics, `<prefix>.job.<id>.requests` and `.replies`
    /// (with `--driver-route kafka`; defaults to the event log topic without `.events`).
    #[arg(long, env = "KINDLING_KAFKA_ROUTE_PREFIX")]
    pub kafka_route_prefix: Option<String>,
}

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
    },
}

/// Where projections are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionConfig {
    Sled,
    Mongo { uri: String, database: String },
}

/// The same settings as a TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    driver_listen: Option<SocketAddr>,
    driver_advertise: Option<String>,
    data_dir: Option<PathBuf>,
    spark_home: Option<PathBuf>,
    python: Option<PathBuf>,
    local_master: Option<String>,
    max_drivers: Option<usize>,
    spark_conf: Option<BTreeMap<String, String>>,
    driver_heartbeat_timeout_secs: Option<u64>,
    recovery_grace_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    trusted_user_header: Option<String>,
    node_id: Option<u64>,
    event_log: Option<String>,
    kafka_brokers: Option<String>,
    kafka_topic: Option<String>,
    kafka_replication: Option<i32>,
    kafka_transactions: Option<bool>,
    kafka_tail_wait_ms: Option<u64>,
    projections: Option<String>,
    mongo_uri: Option<String>,
    mongo_database: Option<String>,
    raft_listen: Option<SocketAddr>,
    raft_advertise: Option<String>,
    http_advertise: Option<String>,
    join: Option<Vec<String>>,
    drivers_dir: Option<PathBuf>,
    driver_route: Option<String>,
    kafka_route_prefix: Option<String>,
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
    pub trusted_user_header: Option<String>,
    pub node_id: u64,
    pub log: LogConfig,
    pub projections: ProjectionConfig,
    pub raft_listen: SocketAddr,
    pub raft_advertise: Option<String>,
    pub http_advertise: Option<String>,
    pub join: Vec<String>,
    pub drivers_dir: PathBuf,
    pub driver_route: DriverRouteConfig,
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
                ProjectionConfig::Mongo {
                    uri,
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
                    ..
                } = &log
                else {
                    bail!(
                        "--driver-route kafka needs --event-log kafka: the routes live on the \
                         event log's brokers"
                    );
                };
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
        Ok(Config {
            log,
            projections,
            driver_route,
            raft_listen: self
                .raft_listen
                .or(file.raft_listen)
                .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()),
            raft_advertise: self.raft_advertise.or(file.raft_advertise),
            http_advertise: self.http_advertise.or(file.http_advertise),
            join,
            drivers_dir: self
                .drivers_dir
                .or(file.drivers_dir)
                .unwrap_or_else(|| data_dir.join("drivers")),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8998".parse().unwrap()),
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
            trusted_user_header: self.trusted_user_header.or(file.trusted_user_header),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> ServeArgs {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/spark-submit"), "").unwrap();
        ServeArgs {
            spark_home: Some(dir.to_path_buf()),
            ..Default::default()
        }
    }

    fn on_kafka(dir: &Path, topic: Option<&str>) -> ServeArgs {
        ServeArgs {
            event_log: Some("kafka".into()),
            kafka_brokers: Some("k1:9092,k2:9092".into()),
            kafka_topic: topic.map(String::from),
            kafka_replication: Some(3),
            driver_route: Some("kafka".into()),
            ..args(dir)
        }
    }

    #[test]
    fn drivers_use_grpc_unless_told_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = args(dir.path()).resolve().unwrap();
        assert_eq!(cfg.driver_route, DriverRouteConfig::Grpc);
    }

    #[test]
    fn kafka_routes_live_on_the_event_log_brokers() {
        let dir = tempfile::tempdir().unwrap();
        let route = |a: ServeArgs| a.resolve().unwrap().driver_route;
        let want = |prefix: &str| DriverRouteConfig::Kafka {
            brokers: "k1:9092,k2:9092".into(),
            prefix: prefix.into(),
            replication: 3,
        };
        assert_eq!(route(on_kafka(dir.path(), None)), want("kindling"));
        assert_eq!(
            route(on_kafka(dir.path(), Some("prod.events"))),
            want("prod")
        );
        assert_eq!(route(on_kafka(dir.path(), Some("log"))), want("log"));
        let chosen = ServeArgs {
            kafka_route_prefix: Some("routes".into()),
            ..on_kafka(dir.path(), None)
        };
        assert_eq!(route(chosen), want("routes"));
    }

    #[test]
    fn kafka_routes_need_the_kafka_event_log() {
        let dir = tempfile::tempdir().unwrap();
        let sled = ServeArgs {
            driver_route: Some("kafka".into()),
            ..args(dir.path())
        };
        let e = sled.resolve().unwrap_err().to_string();
        assert!(e.contains("--event-log kafka"), "{e}");
        let typo = ServeArgs {
            driver_route: Some("kafak".into()),
            ..args(dir.path())
        };
        let e = typo.resolve().unwrap_err().to_string();
        assert!(e.contains("grpc or kafka"), "{e}");
    }

    #[test]
    fn the_log_followers_wait_defaults_to_100_ms_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let tail_wait = |ms: Option<u64>| -> Result<Duration> {
            let cfg = ServeArgs {
                kafka_tail_wait_ms: ms,
                ..on_kafka(dir.path(), None)
            }
            .resolve()?;
            match cfg.log {
                LogConfig::Kafka { tail_wait, .. } => Ok(tail_wait),
                LogConfig::Sled => unreachable!("asked for kafka"),
            }
        };
        assert_eq!(tail_wait(None).unwrap(), Duration::from_millis(100));
        assert_eq!(tail_wait(Some(500)).unwrap(), Duration::from_millis(500));
        for bad in [0, 10_001] {
            let e = tail_wait(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("--kafka-tail-wait-ms must be between 1 and 10000"),
                "{e}"
            );
        }
    }
}
