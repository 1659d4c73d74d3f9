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
            let max = REPLAY_BATCH.min((until.0 - at.0) as usize);
            let batch = log.read(at, max).await?;
            let Some(last) = batch.last() else { break };
            at = last.position.next();
            if tx.send(batch).await.is_err() {
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
