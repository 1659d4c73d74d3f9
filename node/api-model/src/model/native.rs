//! The native API's documents: a job with everything Kindling knows about it, pages of
//! jobs, a job's events, and pages of the whole event log.

use kindling_events::cluster::{is_secret_key, is_secret_reference_key};
use kindling_events::spec::JobKind;
use kindling_events::{Aggregate, Envelope, Job, RestartPolicy};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

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
    /// Its queue on the cluster (Livy's `queue`; `default` when it names none) and its
    /// priority there (`conf["kindling.priority"]`).
    pub queue: String,
    pub priority: i32,
    /// While the job waits for a driver: its place in its queue's order (1 first; priority,
    /// then submission). Only in `GET /api/v1/jobs/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    pub file: Option<String>,
    /// The driver attempt now (0 before the first launch).
    pub attempt: u32,
    /// A batch's restart policy; absent: a failure ends the job.
    pub restart_policy: Option<super::RestartPolicyDoc>,
    /// The attempts that failed and were retried, oldest first.
    pub retried: Vec<super::AttemptDoc>,
    /// While a failed attempt's retry waits: when the next attempt may start.
    pub retry_at: Option<i64>,
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
            queue: kindling_events::queues::queue_of(&j.spec).into(),
            priority: kindling_events::queues::priority_of(&j.spec.resources.conf).unwrap_or(0),
            queue_position: None,
            file: match &j.spec.kind {
                JobKind::Batch(b) => Some(b.file.clone()),
                JobKind::Session(_) => None,
            },
            attempt: j.attempt.0,
            restart_policy: match &j.spec.kind {
                JobKind::Batch(_) => RestartPolicy::of(&j.spec.resources.conf)
                    .ok()
                    .flatten()
                    .map(Into::into),
                JobKind::Session(_) => None,
            },
            retried: j.retried.iter().map(Into::into).collect(),
            retry_at: j.retry_at_ms,
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
    /// Who asked for it: the authenticated user of the request that caused the event.
    /// Absent on the scheduler's and drivers' events, on requests to a node without
    /// authentication, and on events written before actors were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<&Envelope> for EventDoc {
    fn from(e: &Envelope) -> Self {
        let (origin, term) = (e.origin.source(), e.leader_term().map(|t| t.0));
        let mut data = match serde_json::to_value(&e.event) {
            Ok(Value::Object(mut m)) if m.len() == 1 => m.values_mut().next().unwrap().take(),
            Ok(_) => Value::Object(Default::default()),
            Err(_) => Value::Null,
        };
        redact(&mut data);
        EventDoc {
            position: e.position.0,
            version: e.version,
            at: e.at_ms,
            origin: origin.into(),
            term,
            node: e.node.0,
            actor: e.actor.clone(),
            event_type: e.event.name().into(),
            data,
        }
    }
}

/// Replaces the text of every field whose name looks like a credential (Spark's redaction
/// rule: a job's `spark.hadoop.fs.s3a.secret.key`, say) with `<redacted>`, at any depth.
/// References to Kubernetes secrets stay: they name a secret, they do not hold one.
fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if v.is_string() && is_secret_key(k) && !is_secret_reference_key(k) {
                    *v = Value::String("<redacted>".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventDoc>,
}

/// One event of the whole log, with what it belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEventDoc {
    /// `job`, `cluster`, `registry` or `tokens`.
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
            Aggregate::Tokens => ("tokens", None),
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
    use serde_json::json;

    #[test]
    fn credential_like_fields_are_redacted_at_any_depth_and_references_stay() {
        let mut v = json!({
            "spec": {"resources": {"conf": {
                "spark.hadoop.fs.s3a.secret.key": "s3-SECRET",
                "spark.kubernetes.driver.secretKeyRef.DB": "db:password",
                "spark.executor.memory": "2g",
            }}},
            "list": [{"apiToken": "t0k"}, {"token": 3}],
        });
        redact(&mut v);
        let conf = &v["spec"]["resources"]["conf"];
        assert_eq!(conf["spark.hadoop.fs.s3a.secret.key"], "<redacted>");
        assert_eq!(
            conf["spark.kubernetes.driver.secretKeyRef.DB"],
            "db:password"
        );
        assert_eq!(conf["spark.executor.memory"], "2g");
        assert_eq!(v["list"][0]["apiToken"], "<redacted>");
        assert_eq!(v["list"][1]["token"], 3, "only texts are secrets");
    }
}
