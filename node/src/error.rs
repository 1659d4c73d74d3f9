//! The node's error type. Mapped to HTTP statuses in exactly one place (`api::error`).

use kindling_events::{DomainError, JobId};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("session '{0}' not found")]
    NotFound(JobId),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] kindling_store::StoreError),
    #[error(transparent)]
    Raft(#[from] kindling_raft::RaftError),
    /// The request is wrong; the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// The request is right but cannot be served now (e.g. a session whose driver is not
    /// connected); retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// Only the leader decides commands on existing jobs; this node does not lead (now).
    #[error("{}", not_leader(*.0))]
    NotLeader(Option<kindling_events::NodeId>),
}

fn not_leader(leader: Option<kindling_events::NodeId>) -> String {
    match leader {
        Some(l) => format!(
            "this node does not lead the cluster (node {} does); retry",
            l.0
        ),
        None => "the cluster is electing a leader; retry in a moment".into(),
    }
}
