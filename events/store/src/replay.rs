//! Catching projections up with the log. Reading and decoding the next batch overlaps with
//! folding and writing the current one, so a replay uses both a reader and a writer core.

use crate::error::Result;
use crate::log::EventLog;
use crate::projections::ProjectionStore;
use kindling_events::{Envelope, LogPosition};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events folded per projection write when replaying: larger batches write each document
/// once for many events (see `sled_projections`).
pub const REPLAY_BATCH: usize = 16_384;

/// Applies every event from the projections' checkpoint up to `until` (exclusive), calling
/// `progress` with the next position after each batch. Returns where it stopped.
pub async fn catch_up(
    log: Arc<dyn EventLog>,
    projections: &dyn ProjectionStore,
    until: LogPosition,
    mut progress: impl FnMut(LogPosition),
) -> Result<LogPosition> {
    let mut next = projections.checkpoint().await?;
    progress(next);
    let (tx, mut rx) = mpsc::channel::<Vec<Envelope>>(2);
    let from = next;
    let reader = tokio::spawn(async move {
        let mut at = from;
        while at < until {
            // Positions may skip, so `until - at` only bounds how many events are left below
            // `until`: the batch can reach past it.
            let max = REPLAY_BATCH.min((until.0 - at.0) as usize);
            let mut batch = log.read(at, max).await?;
            let below = batch.partition_point(|e| e.position < until);
            let reached = below < batch.len();
            batch.truncate(below);
            let Some(last) = batch.last() else { break };
            at = last.position.next();
            if tx.send(batch).await.is_err() || reached {
                break;
            }
        }
        Ok::<_, crate::StoreError>(())
    });
    while let Some(batch) = rx.recv().await {
        projections.apply(&batch).await?;
        next = batch.last().map(|e| e.position.next()).unwrap_or(next);
        progress(next);
    }
    reader
        .await
        .map_err(|e| crate::StoreError::Backend(format!("replay reader failed: {e}")))??;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::sample_history;
    use crate::log::FencedWriter;
    use crate::{SledProjections, StoreError};
    use async_trait::async_trait;
    use kindling_events::{JobId, JobState, NewEvent};
    use tokio::sync::watch;

    /// A read-only log whose positions skip, as Kafka's do around transaction markers.
    struct SparseLog(Vec<Envelope>);

    #[async_trait]
    impl EventLog for SparseLog {
        async fn append(&self, _: Vec<NewEvent>) -> Result<Vec<Envelope>> {
            Err(StoreError::Backend("read-only".into()))
        }
        async fn read(&self, from: LogPosition, max: usize) -> Result<Vec<Envelope>> {
            Ok(self
                .0
                .iter()
                .filter(|e| e.position >= from)
                .take(max)
                .cloned()
                .collect())
        }
        fn end(&self) -> LogPosition {
            self.0.last().map_or(LogPosition(0), |e| e.position.next())
        }
        fn subscribe(&self) -> watch::Receiver<LogPosition> {
            watch::channel(self.end()).1
        }
        async fn fenced_writer(&self, _: &str) -> Result<Arc<dyn FencedWriter>> {
            Err(StoreError::Backend("read-only".into()))
        }
    }

    #[tokio::test]
    async fn catching_up_to_a_position_the_log_skipped_stops_before_it() {
        // Events at 0, 3, 6, ...: `until` 17 has events 0..=15 below it, six of them.
        let sparse: Vec<Envelope> = sample_history()
            .into_iter()
            .map(|e| Envelope {
                position: LogPosition(3 * e.position.0),
                ..e
            })
            .collect();
        let log: Arc<dyn EventLog> = Arc::new(SparseLog(sparse.clone()));
        let dir = tempfile::tempdir().unwrap();
        let projections = SledProjections::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        let next = catch_up(log.clone(), &projections, LogPosition(17), |p| seen.push(p))
            .await
            .unwrap();
        assert_eq!(next, LogPosition(16), "one past the last event below 17");
        assert_eq!(seen.last(), Some(&LogPosition(16)));
        assert_eq!(projections.checkpoint().await.unwrap(), LogPosition(16));
        let session = projections.job(JobId(2)).await.unwrap().unwrap();
        assert_ne!(
            session.version, 4,
            "SessionReady, at 18, is past `until`: not applied"
        );

        let end = log.end();
        let next = catch_up(log, &projections, end, |_| {}).await.unwrap();
        assert_eq!(next, end);
        let session = projections.job(JobId(2)).await.unwrap().unwrap();
        assert_eq!(session.state, JobState::Busy);
        assert_eq!(session.applied, sparse[10].position);
    }
}
