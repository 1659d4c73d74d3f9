//! The JSON shapes of the REST API: Livy's request and response bodies, field for field, and
//! the native API's documents. Requests are validated into domain specs here, with messages
//! that name the field and the fix.

use crate::Invalid;
use kindling_events::spec::{
    BatchSpec, DurationSpec, JobKind, JobSpec, SessionKind, SessionSpec, SparkResources,
};
use kindling_events::spec_check::{MAX_CORES, MAX_EXECUTORS, MAX_TIMEOUT_MS};
use kindling_events::{Aggregate, Envelope, Job, Statement, StatementOutput, CLUSTER_CONF_KEY};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Declares a Livy create-request body: its own fields plus the fields batches and sessions
/// share; and the native API's body, the same with a `cluster` field, which converts into
/// the Livy one. (Not `#[serde(flatten)]`: that would hide the failing field's name from
/// errors.)
macro_rules! livy_request {
    ($(#[$m:meta])* $name:ident, $(#[$nm:meta])* $native:ident { $($(#[$fm:meta])* $field:ident: $ty:ty,)* }) => {
        livy_request!(@one $(#[$m])* $name { $($(#[$fm])* $field: $ty,)* });
        impl $name {
            fn common(&mut self) -> CommonFields {
                CommonFields {
                    jars: std::mem::take(&mut self.jars),
                    py_files: std::mem::take(&mut self.py_files),
                    files: std::mem::take(&mut self.files),
                    archives: std::mem::take(&mut self.archives),
                    driver_memory: self.driver_memory.take(),
                    driver_cores: self.driver_cores,
                    executor_memory: self.executor_memory.take(),
                    executor_cores: self.executor_cores,
                    num_executors: self.num_executors,
                    queue: self.queue.take(),
                    name: self.name.take(),
                    conf: std::mem::take(&mut self.conf),
                }
            }
        }
        livy_request!(@one $(#[$nm])* $native {
            /// The cluster to run on (`GET /api/v1/clusters` lists them); the default
            /// cluster, `local`, when absent. The same as `conf["kindling.cluster"]`.
            cluster: Option<String>,
            $($(#[$fm])* $field: $ty,)*
        });

        impl $native {
            /// The Livy body and the cluster it names.
            fn split(self) -> ($name, Option<String>) {
                let livy = $name {
                    $($field: self.$field,)*
                    jars: self.jars,
                    py_files: self.py_files,
                    files: self.files,
                    archives: self.archives,
                    driver_memory: self.driver_memory,
                    driver_cores: self.driver_cores,
                    executor_memory: self.executor_memory,
                    executor_cores: self.executor_cores,
                    num_executors: self.num_executors,
                    queue: self.queue,
                    name: self.name,
                    conf: self.conf,
                };
                (livy, self.cluster)
            }
        }

        impl CreateJob for $native {
            fn into_spec(self, caller: &Caller) -> Result<JobSpec, Invalid> {
                let (livy, cluster) = self.split();
                let mut spec = livy.into_spec(caller)?;
                if let Some(cluster) = cluster {
                    let conf = &mut spec.resources.conf;
                    match conf.get(CLUSTER_CONF_KEY) {
                        Some(other) if *other != cluster => {
                            return Err(Invalid::new(format!(
                                "cluster {cluster:?} and conf.{CLUSTER_CONF_KEY} {other:?} \
                                 differ; set one of them"
                            )))
                        }
                        _ => {
                            conf.insert(CLUSTER_CONF_KEY.into(), cluster);
                        }
                    }
                }
                Ok(spec)
            }
        }
    };
    (@one $(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Default, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
            #[serde(default)]
            pub jars: Vec<String>,
            #[serde(default)]
            pub py_files: Vec<String>,
            #[serde(default)]
            pub files: Vec<String>,
            #[serde(default)]
            pub archives: Vec<String>,
            pub driver_memory: Option<String>,
            pub driver_cores: Option<i64>,
            pub executor_memory: Option<String>,
            pub executor_cores: Option<i64>,
            pub num_executors: Option<i64>,
            pub queue: Option<String>,
            pub name: Option<String>,
            /// Spark configuration; scalar values are taken as strings. `kindling.cluster`
            /// names the cluster to run on.
            #[serde(default)]
            #[schema(value_type = BTreeMap<String, String>)]
            pub conf: BTreeMap<String, Value>,
        }

    };
}

livy_request!(
    /// Livy's `POST /batches` body.
    CreateBatch,
    /// `POST /api/v1/batches`: Livy's batch body and the cluster to run on.
    NativeCreateBatch {
        /// The application: a `.py` file or a jar, on this node or at a URL Spark can read.
        file: Option<String>,
        proxy_user: Option<String>,
        class_name: Option<String>,
        #[serde(default)]
        args: Vec<String>,
    }
);

livy_request!(
    /// Livy's `POST /sessions` body.
    CreateSession,
    /// `POST /api/v1/sessions`: Livy's session body and the cluster to run on.
    NativeCreateSession {
        /// `pyspark` (default; also `python`, `shared`) or `sql`.
        kind: Option<String>,
        proxy_user: Option<String>,
        heartbeat_timeout_in_second: Option<i64>,
        /// Stop the session after this long without activity, e.g. `30m` (Livy's format).
        ttl: Option<String>,
        /// Stop the session after it has been idle this long.
        idle_timeout: Option<String>,
    }
);

/// Fields batches and sessions share.
struct CommonFields {
    jars: Vec<String>,
    py_files: Vec<String>,
    files: Vec<String>,
    archives: Vec<String>,
    driver_memory: Option<String>,
    driver_cores: Option<i64>,
    executor_memory: Option<String>,
    executor_cores: Option<i64>,
    num_executors: Option<i64>,
    queue: Option<String>,
    name: Option<String>,
    conf: BTreeMap<String, Value>,
}

/// A count field (`driverCores`, `numExecutors`) within `1..=max`.
fn count(field: &str, v: Option<i64>, max: u32) -> Result<Option<u32>, Invalid> {
    match v {
        None => Ok(None),
        Some(n) if (1..=i64::from(max)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(Invalid::new(format!(
            "{field} must be between 1 and {max}, got {n}"
        ))),
    }
}

/// Livy's time strings (`kindling_events::units`: a bare number is milliseconds).
pub fn duration(field: &str, v: &Option<String>) -> Result<Option<DurationSpec>, Invalid> {
    let Some(s) = v else { return Ok(None) };
    let d = DurationSpec::parse(s).map_err(|e| Invalid::new(format!("{field}: {e}")))?;
    if d.millis == 0 || d.millis > MAX_TIMEOUT_MS {
        return Err(Invalid::new(format!(
            "{field} must be between 1ms and 365d, got {s:?}"
        )));
    }
    Ok(Some(d))
}

impl CommonFields {
    fn resources(self) -> Result<(SparkResources, Option<String>), Invalid> {
        let mut conf = BTreeMap::new();
        for (k, v) in self.conf {
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(Invalid::new(format!(
                        "conf.{k} must be a string, number or boolean, got {other}"
                    )))
                }
            };
            conf.insert(k, s);
        }
        let r = SparkResources {
            driver_memory: self.driver_memory.map(|m| m.trim().to_string()),
            driver_cores: count("driverCores", self.driver_cores, MAX_CORES)?,
            executor_memory: self.executor_memory.map(|m| m.trim().to_string()),
            executor_cores: count("executorCores", self.executor_cores, MAX_CORES)?,
            num_executors: count("numExecutors", self.num_executors, MAX_EXECUTORS)?,
            queue: self.queue,
            jars: self.jars,
            py_files: self.py_files,
            files: self.files,
            archives: self.archives,
            conf,
        };
        Ok((r, self.name))
    }
}

/// Who asks: the authenticated owner and the `doAs` query parameter.
pub struct Caller {
    pub owner: Option<String>,
    pub do_as: Option<String>,
}

/// A request that creates a job.
pub trait CreateJob {
    fn into_spec(self, caller: &Caller) -> Result<JobSpec, Invalid>;
}

impl CreateJob for CreateBatch {
    fn into_spec(mut self, caller: &Caller) -> Result<JobSpec, Invalid> {
        let common = self.common();
        let file = match self.file {
            Some(f) if !f.trim().is_empty() => f,
            _ => {
                return Err(Invalid::new(
                    "file is required: the path or URL of the application to run",
                ))
            }
        };
        let (resources, name) = common.resources()?;
        Ok(JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file,
                class_name: self.class_name,
                args: self.args,
            }),
            name,
            owner: caller.owner.clone(),
            proxy_user: caller.do_as.clone().or(self.proxy_user),
            resources,
        })
    }
}

/// Session and statement kinds: pyspark (with Livy's aliases) and sql.
pub fn session_kind(field: &str, v: Option<&str>) -> Result<SessionKind, Invalid> {
    match v.map(str::trim) {
        None | Some("pyspark" | "python" | "shared") => Ok(SessionKind::Pyspark),
        Some("sql") => Ok(SessionKind::Sql),
        Some(k @ ("spark" | "scala" | "sparkr" | "r")) => Err(Invalid::new(format!(
            "{field} {k:?} is not supported by Kindling yet; use pyspark or sql"
        ))),
        Some(k) => Err(Invalid::new(format!(
            "{field} {k:?} is unknown; use pyspark or sql"
        ))),
    }
}

impl CreateJob for CreateSession {
    fn into_spec(mut self, caller: &Caller) -> Result<JobSpec, Invalid> {
        let common = self.common();
        let kind = session_kind("kind", self.kind.as_deref())?;
        let heartbeat = match self.heartbeat_timeout_in_second {
            None => 0,
            Some(n) if (0..=86_400).contains(&n) => n as u32,
            Some(n) => {
                return Err(Invalid::new(format!(
                    "heartbeatTimeoutInSecond must be between 0 and 86400, got {n}"
                )))
            }
        };
        let ttl = duration("ttl", &self.ttl)?;
        let idle_timeout = duration("idleTimeout", &self.idle_timeout)?;
        let (resources, name) = common.resources()?;
        Ok(JobSpec {
            kind: JobKind::Session(SessionSpec {
                kind,
                heartbeat_timeout_secs: heartbeat,
                ttl,
                idle_timeout,
            }),
            name,
            owner: caller.owner.clone(),
            proxy_user: caller.do_as.clone().or(self.proxy_user),
            resources,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStatement {
    pub code: String,
    /// `pyspark` or `sql`; defaults to the session's kind.
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    pub code: String,
    pub kind: Option<String>,
    /// Offset in `code` where completion happens; defaults to the end.
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Completion {
    pub candidates: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub driver_log_url: Option<String>,
    pub spark_ui_url: Option<String>,
}

/// Livy's batch object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LivyBatch {
    pub id: u64,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub proxy_user: Option<String>,
    /// Livy's batch state: not_started, starting, running, success, dead, killed.
    pub state: String,
    pub app_id: Option<String>,
    pub app_info: AppInfo,
    /// The last lines of the driver's output.
    pub log: Vec<String>,
}

/// Livy's session object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LivySession {
    pub id: u64,
    pub name: Option<String>,
    pub app_id: Option<String>,
    pub owner: Option<String>,
    pub proxy_user: Option<String>,
    pub state: String,
    pub kind: String,
    pub app_info: AppInfo,
    pub log: Vec<String>,
    pub ttl: Option<String>,
    pub idle_timeout: Option<String>,
    pub driver_memory: Option<String>,
    pub driver_cores: u32,
    pub executor_memory: Option<String>,
    pub executor_cores: u32,
    pub conf: BTreeMap<String, String>,
    pub archives: Vec<String>,
    pub files: Vec<String>,
    pub heartbeat_timeout_in_second: u32,
    pub jars: Vec<String>,
    pub num_executors: u32,
    pub py_files: Vec<String>,
    pub queue: Option<String>,
}

fn app_info(job: &Job) -> AppInfo {
    AppInfo {
        driver_log_url: None,
        spark_ui_url: job.spark_ui_url.clone(),
    }
}

impl LivyBatch {
    pub fn from_job(job: &Job, log: Vec<String>) -> Self {
        LivyBatch {
            id: job.id.0,
            name: job.spec.name.clone(),
            owner: job.spec.owner.clone(),
            proxy_user: job.spec.proxy_user.clone(),
            state: job.state.as_str().into(),
            app_id: job.app_id.clone(),
            app_info: app_info(job),
            log,
        }
    }
}

impl LivySession {
    pub fn from_job(job: &Job, log: Vec<String>) -> Self {
        let s = job.spec.session();
        let r = &job.spec.resources;
        LivySession {
            id: job.id.0,
            name: job.spec.name.clone(),
            app_id: job.app_id.clone(),
            owner: job.spec.owner.clone(),
            proxy_user: job.spec.proxy_user.clone(),
            state: job.state.as_str().into(),
            kind: s.map(|s| s.kind.as_str()).unwrap_or("pyspark").into(),
            app_info: app_info(job),
            log,
            ttl: s.and_then(|s| s.ttl.as_ref()).map(|d| d.text.clone()),
            idle_timeout: s
                .and_then(|s| s.idle_timeout.as_ref())
                .map(|d| d.text.clone()),
            driver_memory: r.driver_memory.clone(),
            driver_cores: r.driver_cores.unwrap_or(0),
            executor_memory: r.executor_memory.clone(),
            executor_cores: r.executor_cores.unwrap_or(0),
            conf: r.conf.clone(),
            archives: r.archives.clone(),
            files: r.files.clone(),
            heartbeat_timeout_in_second: s.map(|s| s.heartbeat_timeout_secs).unwrap_or(0),
            jars: r.jars.clone(),
            num_executors: r.num_executors.unwrap_or(0),
            py_files: r.py_files.clone(),
            queue: r.queue.clone(),
        }
    }
}

/// Livy's list body: the key is `sessions` for batches too.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivyList<T> {
    pub from: usize,
    pub total: usize,
    pub sessions: Vec<T>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LivyState {
    pub id: u64,
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LivyLog {
    pub id: u64,
    pub from: usize,
    pub total: usize,
    pub log: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Msg {
    pub msg: String,
}

/// Livy's statement object.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivyStatement {
    pub id: u64,
    pub code: String,
    /// waiting, running, available, cancelling, cancelled.
    pub state: String,
    /// `null` until the statement ends.
    pub output: Option<LivyOutput>,
    pub progress: f64,
    /// Epoch milliseconds; 0 until started.
    pub started: i64,
    /// Epoch milliseconds; 0 until completed.
    pub completed: i64,
}

/// `{status: "ok", execution_count, data}` or
/// `{status: "error", execution_count, ename, evalue, traceback}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivyOutput {
    pub status: String,
    pub execution_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evalue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceback: Option<Vec<String>>,
}

impl From<&Statement> for LivyStatement {
    fn from(s: &Statement) -> Self {
        let output = s.output.as_ref().map(|o| match o {
            StatementOutput::Ok {
                execution_count,
                data_json,
            } => LivyOutput {
                status: "ok".into(),
                execution_count: *execution_count,
                data: Some(
                    serde_json::from_str(data_json)
                        .unwrap_or_else(|_| serde_json::json!({"text/plain": data_json})),
                ),
                ename: None,
                evalue: None,
                traceback: None,
            },
            StatementOutput::Error {
                execution_count,
                ename,
                evalue,
                traceback,
            } => LivyOutput {
                status: "error".into(),
                execution_count: *execution_count,
                data: None,
                ename: Some(ename.clone()),
                evalue: Some(evalue.clone()),
                traceback: Some(traceback.clone()),
            },
        });
        LivyStatement {
            id: s.id.0,
            code: s.code.clone(),
            state: s.state.as_str().into(),
            output,
            progress: s.progress(),
            started: s.started_at_ms.unwrap_or(0),
            completed: s.completed_at_ms.unwrap_or(0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LivyStatements {
    pub total_statements: usize,
    pub statements: Vec<LivyStatement>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// The Livy API version Kindling speaks.
    pub version: String,
    pub kindling: String,
}

/// A job in the native API: everything Kindling knows about it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobDoc {
    pub id: u64,
    /// `batch` or `session`.
    #[serde(rename = "type")]
    pub job_type: String,
    pub state: String,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub proxy_user: Option<String>,
    /// For sessions: `pyspark` or `sql`.
    pub kind: Option<String>,
    /// The cluster the job runs on.
    pub cluster: String,
    pub file: Option<String>,
    pub attempt: u32,
    pub driver_id: Option<String>,
    pub app_id: Option<String>,
    pub spark_ui_url: Option<String>,
    /// Why the job is dead, killed, in error or recovering, or why it has not started yet
    /// (e.g. its cluster is full).
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub kill_requested: bool,
    /// Deleted through Livy's DELETE (hidden from Livy's lists).
    pub deleted: bool,
    pub statements: usize,
    /// The log position this document reflects.
    pub position: u64,
}

impl From<&Job> for JobDoc {
    fn from(j: &Job) -> Self {
        JobDoc {
            id: j.id.0,
            job_type: j.spec.kind_name().into(),
            state: j.state.as_str().into(),
            name: j.spec.name.clone(),
            owner: j.spec.owner.clone(),
            proxy_user: j.spec.proxy_user.clone(),
            kind: j.spec.session().map(|s| s.kind.as_str().into()),
            cluster: j.spec.cluster().into(),
            file: match &j.spec.kind {
                JobKind::Batch(b) => Some(b.file.clone()),
                JobKind::Session(_) => None,
            },
            attempt: j.attempt.0,
            driver_id: j.driver_id.clone(),
            app_id: j.app_id.clone(),
            spark_ui_url: j.spark_ui_url.clone(),
            reason: j.reason.clone(),
            exit_code: j.exit_code,
            submitted_at: j.submitted_at_ms,
            started_at: j.started_at_ms,
            finished_at: j.finished_at_ms,
            kill_requested: j.kill_requested,
            deleted: j.deleted,
            statements: j.statements.len(),
            position: j.applied.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub total: usize,
    pub offset: usize,
    pub jobs: Vec<JobDoc>,
}

/// One event of a job's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDoc {
    pub position: u64,
    pub version: u64,
    /// Wall-clock epoch milliseconds (informational).
    pub at: i64,
    /// `api`, `scheduler` or `driver`.
    pub origin: String,
    /// The Raft term of the leader that wrote the event: scheduler events, and commands of
    /// clients and drivers the leader decided. Absent on new jobs (any node writes those).
    pub term: Option<u64>,
    pub node: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<&Envelope> for EventDoc {
    fn from(e: &Envelope) -> Self {
        let (origin, term) = (e.origin.source(), e.leader_term().map(|t| t.0));
        let data = match serde_json::to_value(&e.event) {
            Ok(Value::Object(mut m)) if m.len() == 1 => m.values_mut().next().unwrap().take(),
            Ok(_) => Value::Object(Default::default()),
            Err(_) => Value::Null,
        };
        EventDoc {
            position: e.position.0,
            version: e.version,
            at: e.at_ms,
            origin: origin.into(),
            term,
            node: e.node.0,
            event_type: e.event.name().into(),
            data,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventDoc>,
}

/// One event of the whole log, with what it belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEventDoc {
    /// `job`, `cluster` or `registry`.
    pub aggregate: String,
    /// The job, for a job's event.
    pub job: Option<u64>,
    #[serde(flatten)]
    pub event: EventDoc,
}

impl From<&Envelope> for LogEventDoc {
    fn from(e: &Envelope) -> Self {
        let (aggregate, job) = match e.aggregate {
            Aggregate::Job(id) => ("job", Some(id.0)),
            Aggregate::Cluster => ("cluster", None),
            Aggregate::Registry => ("registry", None),
        };
        LogEventDoc {
            aggregate: aggregate.into(),
            job,
            event: EventDoc::from(e),
        }
    }
}

/// A page of the event log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    pub events: Vec<LogEventDoc>,
    /// Where the next page starts: past the last event returned.
    pub next: u64,
    /// The end of the log when this page was read: paging is done when `next` reaches it.
    pub log_end: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_livy() {
        assert_eq!(
            duration("ttl", &Some("10m".into()))
                .unwrap()
                .unwrap()
                .millis,
            600_000
        );
        assert_eq!(
            duration("ttl", &Some("1500".into()))
                .unwrap()
                .unwrap()
                .millis,
            1500
        );
        assert_eq!(
            duration("ttl", &Some("2h".into())).unwrap().unwrap().millis,
            7_200_000
        );
        assert!(duration("ttl", &Some("ten".into())).is_err());
        assert!(duration("ttl", &Some("5y".into())).is_err());
        assert!(duration("ttl", &Some("0s".into())).is_err());
    }
}
