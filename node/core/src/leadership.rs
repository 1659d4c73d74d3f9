//! What the node's core asks of its Raft member, as ports: who leads and in which term
//! ([`LeaderState`], a watch the node wires from Raft with its terms lifted), fresh job ids,
//! and a quorum's confirmation that this node still leads ([`Member`]). The Raft member
//! implements them in the node's composition root; tests and the simulation bring their own.

use async_trait::async_trait;
use kindling_events::{JobId, NodeId, Term};

/// Who leads, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaderState {
    pub term: Term,
    pub leader: Option<NodeId>,
    /// This node leads in `term` and may act on it.
    pub is_leader: bool,
}

/// Why the member could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MemberError {
    pub message: String,
    /// The same request may succeed once a leader is elected or a quorum is back.
    pub retryable: bool,
}

impl MemberError {
    /// No leader answered (an election, no quorum): retrying later may work.
    pub fn no_leader(message: impl Into<String>) -> Self {
        MemberError {
            message: message.into(),
            retryable: true,
        }
    }

    /// The member failed or refused; retrying will not help.
    pub fn failed(message: impl Into<String>) -> Self {
        MemberError {
            message: message.into(),
            retryable: false,
        }
    }
}

#[async_trait]
pub trait Member: Send + Sync + 'static {
    /// An id no node has handed out before, and none will again.
    async fn next_job_id(&self) -> Result<JobId, MemberError>;

    /// Confirms, with a round of heartbeats a quorum answers, that this node leads now. The
    /// leadership watch can be behind (a process that was paused acts on what it last
    /// heard); this cannot.
    async fn confirm_leadership(&self) -> Result<(), MemberError>;
}
