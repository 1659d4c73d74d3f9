//! The ports through which the rest of the node asks who schedules, whether it still does, and
//! which ids it may hand out. Implemented by [`ClusterMember`](crate::ClusterMember).

use crate::error::Result;
use async_trait::async_trait;
use kindling_events::{JobId, NodeId, Term};
use tokio::sync::watch;

/// Who leads, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderState {
    pub term: Term,
    pub leader: Option<NodeId>,
    /// This node leads in `term` and may act on it: in a cluster, a quorum acknowledged it
    /// recently enough that no other leader can have been elected since.
    pub is_leader: bool,
}

pub trait Leadership: Send + Sync + 'static {
    fn node_id(&self) -> NodeId;
    /// Changes on every election this node observes.
    fn watch(&self) -> watch::Receiver<LeaderState>;
}

#[async_trait]
pub trait IdAllocator: Send + Sync + 'static {
    /// An id no node has handed out before, and none will again.
    async fn next_job_id(&self) -> Result<JobId>;
}

#[async_trait]
pub trait LeaderCheck: Send + Sync + 'static {
    /// Confirms, with a round of heartbeats a quorum answers, that this node leads now. Fails
    /// if a newer term is met or no quorum answers in time. The watch of [`Leadership`] can
    /// be behind (a process that was paused acts on what it last heard); this cannot.
    async fn confirm_leadership(&self) -> Result<()>;
}
