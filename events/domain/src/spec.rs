//! What a user asked for: a batch (a file to `spark-submit`) or an interactive session, with
//! the Spark settings of Livy's request bodies. Validated at the API edge; stored as given.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A duration as the user wrote it (`"10m"`) and what it means in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationSpec {
    pub text: String,
    pub millis: u64,
}

impl DurationSpec {
    /// `text` read as a duration ([`crate::units::parse_duration`]).
    pub fn parse(text: &str) -> Result<DurationSpec, crate::units::UnitError> {
        let d = crate::units::parse_duration(text)?;
        Ok(DurationSpec {
            text: text.to_string(),
            millis: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// Spark resources and files common to batches and sessions (Livy's request fields).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SparkResources {
    pub driver_memory: Option<String>,
    pub driver_cores: Option<u32>,
    pub executor_memory: Option<String>,
    pub executor_cores: Option<u32>,
    pub num_executors: Option<u32>,
    pub queue: Option<String>,
    pub jars: Vec<String>,
    pub py_files: Vec<String>,
    pub files: Vec<String>,
    pub archives: Vec<String>,
    pub conf: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    /// The application file: a `.py` file or a jar.
    pub file: String,
    pub class_name: Option<String>,
    pub args: Vec<String>,
}

/// The language a session (or one of its statements) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionKind {
    Pyspark,
    Sql,
}

impl SessionKind {
    pub const ALL: [SessionKind; 2] = [SessionKind::Pyspark, SessionKind::Sql];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Pyspark => "pyspark",
            SessionKind::Sql => "sql",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    pub kind: SessionKind,
    /// Livy's `heartbeatTimeoutInSecond`: how long a driver may stay silent before it is dead.
    pub heartbeat_timeout_secs: u32,
    /// Livy's `ttl`: the session is stopped after this long without any client activity.
    pub ttl: Option<DurationSpec>,
    /// Stop the session after it has been idle (no statement waiting or running) this long.
    pub idle_timeout: Option<DurationSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    Batch(BatchSpec),
    Session(SessionSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub kind: JobKind,
    pub name: Option<String>,
    /// The authenticated user who submitted the job, when the node knows one.
    pub owner: Option<String>,
    /// Livy's `proxyUser` (or the `doAs` query parameter).
    pub proxy_user: Option<String>,
    pub resources: SparkResources,
}

impl JobSpec {
    pub fn is_session(&self) -> bool {
        matches!(self.kind, JobKind::Session(_))
    }

    pub fn session(&self) -> Option<&SessionSpec> {
        match &self.kind {
            JobKind::Session(s) => Some(s),
            JobKind::Batch(_) => None,
        }
    }

    /// The cluster the job runs on: its `kindling.cluster` conf key, or the default cluster.
    pub fn cluster(&self) -> &str {
        self.resources
            .conf
            .get(crate::cluster::CLUSTER_CONF_KEY)
            .map(String::as_str)
            .unwrap_or(crate::cluster::DEFAULT_CLUSTER)
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            JobKind::Batch(_) => "batch",
            JobKind::Session(_) => "session",
        }
    }
}
