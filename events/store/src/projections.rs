//! The `ProjectionStore` port: read models folded from the log (jobs, statements, job
//! histories and the cluster registry). Every document records the
//! last log position it reflects, written in the same atomic write as the store's checkpoint,
//! so applying an event twice is a no-op and a replay resumes exactly where it stopped.

use crate::error::Result;
use async_trait::async_trait;
use kindling_events::{
    Envelope, Job, JobId, JobState, LeaderFence, LogPosition, Registry, Statement, StatementId,
    Tokens,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFilter {
    Batch,
    Session,
}

/// A filtered, paged query over jobs, ordered by id (either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    pub kind: Option<KindFilter>,
    pub state: Option<JobState>,
    pub owner: Option<String>,
    /// Only jobs whose name contains this text, ignoring case.
    pub name: Option<String>,
    /// Only jobs on this cluster.
    pub cluster: Option<String>,
    /// Only jobs this user owns or that run as this user (a caller who may not view every
    /// job).
    pub visible_to: Option<String>,
    /// Include jobs deleted through Livy's DELETE (the native API shows them).
    pub include_deleted: bool,
    /// Newest (highest id) first; else oldest first.
    pub newest_first: bool,
    /// Number of matching jobs to skip.
    pub offset: usize,
    pub limit: usize,
}

impl Default for JobQuery {
    fn default() -> Self {
        JobQuery {
            kind: None,
            state: None,
            owner: None,
            name: None,
            cluster: None,
            visible_to: None,
            include_deleted: false,
            newest_first: false,
            offset: 0,
            limit: 100,
        }
    }
}

impl JobQuery {
    pub fn matches(&self, job: &Job) -> bool {
        (self.include_deleted || !job.deleted)
            && self.kind.is_none_or(|k| match k {
                KindFilter::Batch => !job.is_session(),
                KindFilter::Session => job.is_session(),
            })
            && self.state.is_none_or(|s| job.state == s)
            && self
                .owner
                .as_deref()
                .is_none_or(|o| job.spec.owner.as_deref() == Some(o))
            && self.name.as_deref().is_none_or(|n| {
                let n = n.to_lowercase();
                job.spec
                    .name
                    .as_deref()
                    .is_some_and(|name| name.to_lowercase().contains(&n))
            })
            && self
                .cluster
                .as_deref()
                .is_none_or(|c| job.spec.cluster() == c)
            && self.visible_to.as_deref().is_none_or(|u| {
                job.spec.owner.as_deref() == Some(u) || job.spec.proxy_user.as_deref() == Some(u)
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many documents match the query in all.
    pub total: usize,
}

#[async_trait]
pub trait ProjectionStore: Send + Sync + 'static {
    /// Folds `batch` (consecutive log events) into the documents; events already reflected
    /// are skipped, and so are a deposed leader's late writes (the [`LeaderFence`]).
    /// Durable when it returns.
    async fn apply(&self, batch: &[Envelope]) -> Result<()>;

    /// The next log position to apply: every event before it is reflected.
    async fn checkpoint(&self) -> Result<LogPosition>;

    /// The leader fence as of the checkpoint: the newest leader term among the events
    /// reflected. `apply` ignores a leader's event of an older term ([`LeaderFence`]), on
    /// every aggregate, and keeps the fence in the same write as the checkpoint.
    async fn fence(&self) -> Result<LeaderFence>;

    async fn job(&self, id: JobId) -> Result<Option<Job>>;

    async fn jobs(&self, query: &JobQuery) -> Result<Page<Job>>;

    async fn statement(&self, job: JobId, id: StatementId) -> Result<Option<Statement>>;

    /// A session's statements ordered by id, `offset`/`limit` paged.
    async fn statements(&self, job: JobId, offset: usize, limit: usize) -> Result<Page<Statement>>;

    /// The log positions of every event of one job, in log order (read the events
    /// themselves from the log).
    async fn history(&self, job: JobId) -> Result<Vec<LogPosition>>;

    /// The cluster registry (one small document: every registered cluster), empty before
    /// the first registry event.
    async fn registry(&self) -> Result<Registry>;

    /// The live API tokens (one small document), empty before the first token event.
    async fn tokens(&self) -> Result<Tokens>;

    /// Drops every document and the checkpoint, so the next `apply` rebuilds from scratch.
    async fn clear(&self) -> Result<()>;
}
