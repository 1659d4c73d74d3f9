//! The `ClusterBackend` port: start, find, stop and read the logs of Spark drivers. A backend
//! reports what happens to its drivers (application id, exit) as [`BackendEvent`]s; the
//! scheduler turns them into events. Driver names derive from (job, attempt), so a launch
//! re-issued after a crash finds the driver that already exists instead of starting another.
//!
//! Beside the port: [`Backends`], one instance per cluster built through a
//! [`BackendFactory`] (the node wires the adapters into one), and [`settings`], the
//! connection settings each kind of cluster takes. The adapters (local, standalone,
//! Kubernetes, YARN) are crates of their own; none of them is known here. Each passes the one
//! conformance suite of the port, `conformance` (behind the feature of that name), from its
//! own tests.

pub mod backends;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod driver_log;
pub mod settings;
pub mod spark_properties;

pub use backends::{BackendFactory, Backends, NodeContext};
pub use driver_log::{DriverLog, LogSlice, LogWindow, MAX_LOG_LINES};

use async_trait::async_trait;
use kindling_events::spec::JobSpec;
use kindling_events::{Attempt, JobId};

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The driver certainly did not start; the message says why.
    #[error("{0}")]
    LaunchFailed(String),
    #[error("{0}")]
    Io(String),
}

/// Everything a backend needs to start one driver attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub job: JobId,
    pub attempt: Attempt,
    pub driver_name: String,
    pub spec: JobSpec,
    /// For sessions: how the runner reaches the node, and its secret.
    pub session: Option<SessionLink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLink {
    /// The driver gateways (gRPC), `host:port,...`, the leader's first.
    pub endpoints: String,
    pub secret: String,
    /// In Kafka mode, the session's own topic pair, which the runner uses instead of the
    /// gateways.
    pub kafka: Option<KafkaRoute>,
    /// Whether the gateways speak TLS, and what the runner trusts then.
    pub tls: Option<GatewayTls>,
}

/// The driver gateways serve TLS: the runner verifies them against `ca_pem` (PEM
/// certificates, public), or against the system's roots without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTls {
    pub ca_pem: Option<String>,
}

/// A session's driver route on Kafka: the node produces requests, the driver replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRoute {
    pub brokers: String,
    pub requests: String,
    pub replies: String,
}

impl SessionLink {
    /// The runner's environment for its route, all but the secret (which each backend hands
    /// over in its own way).
    pub fn route_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("KINDLING_ENDPOINTS", self.endpoints.clone())];
        if let Some(tls) = &self.tls {
            env.push(("KINDLING_GATEWAY_TLS", "1".into()));
            if let Some(ca) = &tls.ca_pem {
                // One line, whatever carries it (a YARN application master's environment
                // is set through a conf value).
                use base64::Engine;
                let ca = base64::engine::general_purpose::STANDARD.encode(ca);
                env.push(("KINDLING_GATEWAY_CA_BASE64", ca));
            }
        }
        if let Some(k) = &self.kafka {
            env.push(("KINDLING_ROUTE", "kafka".into()));
            env.push(("KINDLING_KAFKA_BROKERS", k.brokers.clone()));
            env.push((
                "KINDLING_ROUTE_TOPICS",
                format!("{},{}", k.requests, k.replies),
            ));
        }
        env
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    AppIdentified {
        job: JobId,
        attempt: Attempt,
        app_id: String,
        spark_ui_url: Option<String>,
    },
    Exited {
        job: JobId,
        attempt: Attempt,
        /// `None` when the exit status is unknown (the driver ended while nobody watched).
        exit_code: Option<i32>,
        /// How the cluster says it ended, when it says more than the exit code (a pod's
        /// `OOMKilled` or `Evicted`, YARN's diagnostics); it becomes part of the job's reason.
        reason: Option<String>,
    },
}

/// What `find` learned about a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The driver runs; the backend now watches it and will report its exit.
    Running { driver_id: String },
    /// The driver existed and ended; its exit code if it was recorded.
    Ended { exit_code: Option<i32> },
    /// No trace of the driver: the launch never happened.
    Never,
}

#[async_trait]
pub trait ClusterBackend: Send + Sync + 'static {
    /// Starts a driver and returns the backend's id for it.
    async fn launch(&self, spec: LaunchSpec) -> Result<String>;
    /// Looks for the driver called `driver_name` (after a restart or failover) and, if it
    /// runs, watches it again.
    async fn find(&self, job: JobId, attempt: Attempt, driver_name: &str) -> Result<Found>;
    /// Stops the driver; its exit is reported as usual.
    async fn kill(&self, driver_name: &str) -> Result<()>;
    /// The lines of the driver's output that `window` names, and how many there are in all,
    /// read in bounded memory; kept after the driver is gone.
    async fn log(&self, driver_name: &str, window: LogWindow) -> Result<LogSlice>;
}

/// Whether a Spark file reference points at this machine's file system.
pub fn is_local_path(file: &str) -> bool {
    !file.contains("://") || file.starts_with("file://") || file.starts_with("local://")
}

/// Spark's application ids: `local-<millis>`, `app-<yyyyMMddHHmmss>-<seq>` (standalone),
/// `application_<ts>_<seq>` (YARN), `spark-<32 hex>` (Kubernetes).
pub fn is_app_id(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix("local-") {
        return rest.len() == 13 && digits(rest);
    }
    if let Some(rest) = s.strip_prefix("app-") {
        return matches!(rest.split_once('-'), Some((a, b)) if a.len() == 14 && digits(a) && digits(b));
    }
    if let Some(rest) = s.strip_prefix("application_") {
        return matches!(rest.split_once('_'), Some((a, b)) if digits(a) && digits(b));
    }
    if let Some(rest) = s.strip_prefix("spark-") {
        return rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit());
    }
    false
}

/// A driver's name: stable for (job, attempt), so re-issuing a launch is idempotent.
pub fn driver_name(job: JobId, attempt: Attempt) -> String {
    format!("kindling-{}-{}", job.0, attempt.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_spark_application_ids() {
        for ok in [
            "local-1732180000000",
            "app-20261121102211-0003",
            "application_1732180000000_0042",
            "spark-0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_app_id(ok), "{ok}");
        }
        for bad in [
            "local-12",
            "app-2026-1",
            "application_x_1",
            "spark-xyz",
            "localhost",
        ] {
            assert!(!is_app_id(bad), "{bad}");
        }
    }
}
