//! The history: every client operation with its invocation and completion (milliseconds on
//! the run's monotonic clock), the node it went through and its result, one JSON object per
//! line. `unknown` means the operation may or may not have taken effect (a timeout, a reset
//! after the request was sent); the checkers treat it that way.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    SubmitBatch,
    CreateSession,
    SubmitStatement,
    ReadStatement,
    ReadJob,
    ListJobs,
    KillJob,
    DeleteJob,
    /// A recovery probe's submission (acknowledged ones count like any client's).
    Probe,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::SubmitBatch => "submit_batch",
            OpKind::CreateSession => "create_session",
            OpKind::SubmitStatement => "submit_statement",
            OpKind::ReadStatement => "read_statement",
            OpKind::ReadJob => "read_job",
            OpKind::ListJobs => "list_jobs",
            OpKind::KillJob => "kill_job",
            OpKind::DeleteJob => "delete_job",
            OpKind::Probe => "probe",
        }
    }

    /// Operations that create a job.
    pub fn submits(self) -> bool {
        matches!(
            self,
            OpKind::SubmitBatch | OpKind::CreateSession | OpKind::Probe
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpResult {
    Ok,
    /// Certainly did not take effect (refused connection, a 4xx or 5xx answer).
    Fail,
    /// May have taken effect.
    Unknown,
}

impl OpResult {
    pub fn as_str(self) -> &'static str {
        match self {
            OpResult::Ok => "ok",
            OpResult::Fail => "fail",
            OpResult::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    /// Client number; probes use `u32::MAX`.
    pub client: u32,
    pub kind: OpKind,
    /// The node the request went to.
    pub node: u64,
    pub invoke_ms: u64,
    pub complete_ms: u64,
    pub result: OpResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<u64>,
    /// The job's (or statement's) state in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// A statement's output in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// For a batch: the exit code its program was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// For a statement: the token its code appends to the statement ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// A blank operation of `kind`, for tests and builders.
    pub fn new(id: u64, kind: OpKind, invoke_ms: u64, complete_ms: u64, result: OpResult) -> Op {
        Op {
            id,
            client: 0,
            kind,
            node: 1,
            invoke_ms,
            complete_ms,
            result,
            job: None,
            statement: None,
            state: None,
            output: None,
            exit_code: None,
            token: None,
            error: None,
        }
    }
}
