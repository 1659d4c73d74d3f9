//! Livy's response objects, field for field: batches, sessions, statements and their
//! outputs, logs, lists, the version. Built from the domain's [`Job`] and [`Statement`].

use kindling_events::cluster::redacted_conf;
use kindling_events::{Job, Statement, StatementOutput};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

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
            conf: redacted_conf(&r.conf),
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
