//! A fault the simulation can inject into its own readers, to show that the checker catches
//! it: projections blind to the leader fence. They apply a deposed leader's late writes as if
//! they counted, by handing them to the real store under the newest term met (so its fence
//! lets them through). Test-only: no node runs with it.

use async_trait::async_trait;
use kindling_events::{
    Envelope, Job, JobId, LeaderFence, LogPosition, Origin, Registry, Statement, StatementId,
};
use kindling_store::{JobQuery, Page, ProjectionStore, Result};
use std::sync::Mutex;

pub struct FenceBlind<P> {
    inner: P,
    fence: Mutex<LeaderFence>,
}

impl<P> FenceBlind<P> {
    pub fn new(inner: P) -> Self {
        FenceBlind {
            inner,
            fence: Mutex::default(),
        }
    }
}

/// `origin` under `newest` instead of its own, older term.
fn restamped(origin: Origin, newest: kindling_events::Term) -> Origin {
    match origin {
        Origin::Scheduler { .. } => Origin::Scheduler { term: newest },
        Origin::ApiDecided { .. } => Origin::ApiDecided { term: newest },
        Origin::DriverDecided { .. } => Origin::DriverDecided { term: newest },
        Origin::Api | Origin::Driver => origin,
    }
}

#[async_trait]
impl<P: ProjectionStore> ProjectionStore for FenceBlind<P> {
    async fn apply(&self, batch: &[Envelope]) -> Result<()> {
        let checkpoint = self.inner.checkpoint().await?;
        let batch: Vec<Envelope> = {
            let mut fence = self.fence.lock().unwrap();
            batch
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    if e.position >= checkpoint && !fence.admit(&e) {
                        e.origin = restamped(e.origin, fence.newest());
                    }
                    e
                })
                .collect()
        };
        self.inner.apply(&batch).await
    }

    async fn checkpoint(&self) -> Result<LogPosition> {
        self.inner.checkpoint().await
    }

    async fn fence(&self) -> Result<LeaderFence> {
        self.inner.fence().await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>> {
        self.inner.job(id).await
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        self.inner.jobs(query).await
    }

    async fn statement(&self, job: JobId, id: StatementId) -> Result<Option<Statement>> {
        self.inner.statement(job, id).await
    }

    async fn statements(&self, job: JobId, offset: usize, limit: usize) -> Result<Page<Statement>> {
        self.inner.statements(job, offset, limit).await
    }

    async fn history(&self, job: JobId) -> Result<Vec<LogPosition>> {
        self.inner.history(job).await
    }

    async fn registry(&self) -> Result<Registry> {
        self.inner.registry().await
    }

    async fn tokens(&self) -> Result<kindling_events::Tokens> {
        self.inner.tokens().await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
}
