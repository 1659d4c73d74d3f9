//! The flags of `kindling serve`, each also read from its `KINDLING_<NAME>` variable.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// An extra librdkafka property for the event log's clients, `KEY=VALUE` (repeatable):
    /// `security.protocol=SASL_SSL`, `sasl.mechanism=SCRAM-SHA-512`, `sasl.username=...`,
    /// `ssl.ca.location=...`.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// A librdkafka property whose value is a secret, read from a file, `KEY=FILE`
    /// (repeatable): `sasl.password=/etc/kindling/kafka.password`.
    #[arg(long = "kafka-secret-property", value_name = "KEY=FILE")]
    pub kafka_secret_properties: Vec<String>,
    /// Where the projections live: `sled` (embedded) or `mongodb`.
    #[arg(long, env = "KINDLING_PROJECTIONS")]
    pub projections: Option<String>,
    /// MongoDB connection string (with `--projections mongodb`).
    #[arg(long, env = "KINDLING_MONGO_URI")]
    pub mongo_uri: Option<String>,
    /// A file holding the password of the user `--mongo-uri` names (never the URI itself,
    /// which shows in the process table). TLS and x.509 go in the URI's options.
    #[arg(long, env = "KINDLING_MONGO_PASSWORD_FILE")]
    pub mongo_password_file: Option<PathBuf>,
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
    /// Where the files of registered clusters' credentials must lie (default
    /// `<data-dir>/credentials`): a registration naming a file elsewhere is refused.
    #[arg(long, env = "KINDLING_CREDENTIALS_DIR")]
    pub credentials_dir: Option<PathBuf>,
    /// How session drivers and the leader talk: `grpc` (the driver streams to the leader's
    /// driver gateway and reconnects after a failover) or `kafka` (each session has its own
    /// request and reply topics on the event log's brokers; needs `--event-log kafka`).
    #[arg(long, env = "KINDLING_DRIVER_ROUTE")]
    pub driver_route: Option<String>,
    /// Prefix of the sessions' route topics, `<prefix>.job.<id>.requests` and `.replies`
    /// (with `--driver-route kafka`; defaults to the event log topic without `.events`).
    #[arg(long, env = "KINDLING_KAFKA_ROUTE_PREFIX")]
    pub kafka_route_prefix: Option<String>,
    #[command(flatten)]
    pub auth: super::auth::AuthArgs,
    #[command(flatten)]
    pub http: super::http::HttpArgs,
}
