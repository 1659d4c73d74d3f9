//! Errors of leadership, the replicated metadata and the cluster membership.

use std::time::Duration;

pub type Result<T, E = RaftError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("metadata storage failed: {0}")]
    Storage(String),
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// No leader executed the request in time: during an election, or without a quorum. The
    /// request may still have happened (e.g. a lease whose answer was lost); retrying is safe.
    #[error("no leader answered within {waited:?}: {last}")]
    NoLeader { waited: Duration, last: String },
    /// The cluster refused the request as asked; retrying will not help.
    #[error("the cluster refused the request: {0}")]
    Rejected(String),
    /// This member's Raft has stopped (shut down, or a fatal storage error).
    #[error("raft has stopped on this member: {0}")]
    Stopped(String),
    #[error("cannot serve raft rpcs: {0}")]
    Transport(String),
    #[error("the job id space is exhausted")]
    IdsExhausted,
}

impl RaftError {
    /// True when the same request may succeed later (a new leader, a quorum back).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RaftError::NoLeader { .. })
    }
}

impl From<sled::Error> for RaftError {
    fn from(e: sled::Error) -> Self {
        RaftError::Storage(e.to_string())
    }
}

impl From<openraft::StorageError<u64>> for RaftError {
    fn from(e: openraft::StorageError<u64>) -> Self {
        RaftError::Storage(e.to_string())
    }
}

impl From<openraft::error::Fatal<u64>> for RaftError {
    fn from(e: openraft::error::Fatal<u64>) -> Self {
        match e {
            openraft::error::Fatal::StorageError(e) => e.into(),
            other => RaftError::Stopped(other.to_string()),
        }
    }
}
