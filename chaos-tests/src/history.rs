//! The history: every client operation with its invocation and completion (milliseconds on
//! the run's monotonic clock), the node it went through and its result, one JSON object per
//! line. `unknown` means the operation may or may not have taken effect (a timeout, a reset
//! after the request was sent); the checkers treat it that way.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

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

/// Appends operations to the history file as they complete, and keeps them for the checker.
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    next_id: u64,
    file: std::io::BufWriter<std::fs::File>,
    ops: Vec<Op>,
}

impl Recorder {
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        Ok(Recorder {
            start,
            inner: Mutex::new(Inner {
                next_id: 0,
                file: std::io::BufWriter::new(std::fs::File::create(path)?),
                ops: vec![],
            }),
        })
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Records a completed operation, giving it the next id.
    pub fn record(&self, mut op: Op) {
        let mut g = self.inner.lock().unwrap();
        op.id = g.next_id;
        g.next_id += 1;
        if let Ok(line) = serde_json::to_string(&op) {
            let _ = writeln!(g.file, "{line}");
        }
        g.ops.push(op);
    }

    pub fn flush(&self) {
        let _ = self.inner.lock().unwrap().file.flush();
    }

    pub fn ops(&self) -> Vec<Op> {
        self.inner.lock().unwrap().ops.clone()
    }
}

/// Reads a history file back.
pub fn read(path: &Path) -> anyhow::Result<Vec<Op>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let r = Recorder::create(&path, Instant::now()).unwrap();
        let mut op = Op::new(99, OpKind::SubmitBatch, 1, 5, OpResult::Ok);
        op.job = Some(3);
        op.exit_code = Some(0);
        r.record(op.clone());
        r.record(Op::new(99, OpKind::ReadJob, 6, 9, OpResult::Unknown));
        r.flush();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].id, back[1].id), (0, 1));
        assert_eq!(back[0].job, Some(3));
        assert_eq!(back[1].result, OpResult::Unknown);
    }
}
