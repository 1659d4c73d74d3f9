//! The read side of a node: jobs, statements, a job's history, the log itself and the cluster
//! registry, as the projections (and, for events, the log) hold them. Nothing here waits for
//! the projections to be current: a read served to a client passes the read barrier first
//! ([`Core::read_barrier`](crate::Core::read_barrier)).

use crate::error::Result;
use kindling_events::{
    Envelope, Job, JobId, LeaderFence, LogPosition, Registry, Statement, StatementId,
};
use kindling_store::{EventLog, JobQuery, KindFilter, Page, ProjectionStore, StoreError};
use std::sync::Arc;

/// Positions at most this far apart are fetched by one read: a job's events were mostly
/// written close together, so its history costs a read or two rather than one per event.
const READ_RUN_GAP: u64 = 64;

pub struct Reads {
    log: Arc<dyn EventLog>,
    projections: Arc<dyn ProjectionStore>,
}

impl Reads {
    pub fn new(log: Arc<dyn EventLog>, projections: Arc<dyn ProjectionStore>) -> Self {
        Reads { log, projections }
    }

    pub async fn job(&self, id: JobId) -> Result<Option<Job>> {
        Ok(self.projections.job(id).await?)
    }

    pub async fn jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        Ok(self.projections.jobs(query).await?)
    }

    /// The jobs of a kind (sessions if `session`, else batches) named exactly `name`,
    /// deleted ones left out. The projections' name filter matches case-insensitive parts of
    /// names, so the candidates are paged through and the exact ones kept.
    pub async fn named(&self, name: &str, session: bool) -> Result<Vec<Job>> {
        const PAGE: usize = 500;
        let mut query = JobQuery {
            kind: Some(if session {
                KindFilter::Session
            } else {
                KindFilter::Batch
            }),
            name: Some(name.to_string()),
            limit: PAGE,
            ..Default::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.projections.jobs(&query).await?;
            let n = page.items.len();
            out.extend(
                page.items
                    .into_iter()
                    .filter(|j| j.spec.name.as_deref() == Some(name)),
            );
            if n < PAGE {
                return Ok(out);
            }
            query.offset += PAGE;
        }
    }

    /// The job a Livy path that names one means: the active job of that name (there is at
    /// most one), else the one submitted last.
    pub async fn by_name(&self, name: &str, session: bool) -> Result<Option<Job>> {
        let named = self.named(name, session).await?;
        Ok(named
            .iter()
            .find(|j| !j.state.is_terminal())
            .or_else(|| named.iter().max_by_key(|j| (j.submitted_at_ms, j.id)))
            .cloned())
    }

    /// Every job the projections hold, deleted ones included.
    pub async fn all_jobs(&self) -> Result<Vec<Job>> {
        let query = JobQuery {
            include_deleted: true,
            limit: usize::MAX,
            ..Default::default()
        };
        Ok(self.projections.jobs(&query).await?.items)
    }

    pub async fn statement(&self, job: JobId, id: StatementId) -> Result<Option<Statement>> {
        Ok(self.projections.statement(job, id).await?)
    }

    /// A session's statements ordered by id, `offset`/`limit` paged.
    pub async fn statements(
        &self,
        job: JobId,
        offset: usize,
        limit: usize,
    ) -> Result<Page<Statement>> {
        Ok(self.projections.statements(job, offset, limit).await?)
    }

    /// The log positions of every event of one job, in log order.
    pub async fn history(&self, job: JobId) -> Result<Vec<LogPosition>> {
        Ok(self.projections.history(job).await?)
    }

    /// Every event of one job, read from the log (the source of truth) at the positions the
    /// projections list for it.
    pub async fn events_of(&self, job: JobId) -> Result<Vec<Envelope>> {
        let mut positions = self.projections.history(job).await?;
        positions.sort_unstable();
        Ok(events_at(self.log.as_ref(), &positions).await?)
    }

    /// Up to `limit` events of the log from `from`, in order.
    pub async fn log_page(&self, from: LogPosition, limit: usize) -> Result<Vec<Envelope>> {
        Ok(self.log.read(from, limit).await?)
    }

    /// The next log position to be written, as this node knows it.
    pub fn log_end(&self) -> LogPosition {
        self.log.end()
    }

    /// The cluster registry.
    pub async fn registry(&self) -> Result<Registry> {
        Ok(self.projections.registry().await?)
    }

    /// The live API tokens.
    pub async fn tokens(&self) -> Result<kindling_events::Tokens> {
        Ok(self.projections.tokens().await?)
    }

    /// The leader fence the projections reached.
    pub async fn fence(&self) -> Result<LeaderFence> {
        Ok(self.projections.fence().await?)
    }
}

/// The events at `positions` (ascending), read from the log in runs of nearby positions.
async fn events_at(
    log: &dyn EventLog,
    positions: &[LogPosition],
) -> kindling_store::Result<Vec<Envelope>> {
    let mut out = Vec::with_capacity(positions.len());
    let mut rest = positions;
    while let Some(first) = rest.first() {
        let run = 1 + rest
            .windows(2)
            .take_while(|w| w[1].0 - w[0].0 <= READ_RUN_GAP)
            .count();
        let (wanted, after) = rest.split_at(run);
        let last = wanted[run - 1].0;
        let mut from = first.0;
        while from <= last {
            let got = log
                .read(LogPosition(from), (last - from + 1) as usize)
                .await?;
            let Some(read_to) = got.last().map(|e| e.position.0) else {
                return Err(StoreError::Backend(format!(
                    "the log holds nothing from position {from}, below the event at {last} \
                     the projections list"
                )));
            };
            out.extend(
                got.into_iter()
                    .filter(|e| wanted.binary_search(&e.position).is_ok()),
            );
            from = read_to + 1;
        }
        rest = after;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::{Event, Origin};
    use kindling_store::conformance::new_event;
    use kindling_store::SledEventLog;

    #[tokio::test]
    async fn events_at_reads_far_apart_positions_in_runs_and_returns_exactly_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledEventLog::open(&dir.path().join("log")).unwrap();
        let events = (0..300)
            .map(|i| new_event(i, 1, Origin::Api, Event::JobDeleted))
            .collect();
        log.append(events).await.unwrap();
        // Two runs (0..=1 and 100..=130), then lone positions beyond the gap.
        let wanted: Vec<LogPosition> = [0, 1, 100, 130, 250, 299]
            .into_iter()
            .map(LogPosition)
            .collect();
        let got = events_at(&log, &wanted).await.unwrap();
        let positions: Vec<LogPosition> = got.iter().map(|e| e.position).collect();
        assert_eq!(positions, wanted);
        let beyond = events_at(&log, &[LogPosition(299), LogPosition(310)]).await;
        assert!(
            matches!(&beyond, Err(StoreError::Backend(m)) if m.contains("from position 300")),
            "{beyond:?}"
        );
    }
}
