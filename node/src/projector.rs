//! Follows the event log and folds it into the projections, publishing how far it got. On
//! start it replays whatever the projections have not seen (everything, after they were
//! deleted), so reads are always rebuilt from the log.

use kindling_events::LogPosition;
use kindling_store::{EventLog, ProjectionStore};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use kindling_store::REPLAY_BATCH as BATCH;

pub async fn run(
    log: Arc<dyn EventLog>,
    projections: Arc<dyn ProjectionStore>,
    projected: watch::Sender<LogPosition>,
    shutdown: CancellationToken,
) {
    let mut end = log.subscribe();
    let until = log.end();
    let mut next = match kindling_store::catch_up(log.clone(), projections.as_ref(), until, |p| {
        projected.send_replace(p);
    })
    .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot replay the log into the projections");
            return;
        }
    };
    loop {
        let batch = match log.read(next, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, position = next.0, "cannot read the event log");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if let Some(last) = batch.last() {
            if let Err(e) = projections.apply(&batch).await {
                tracing::error!(error = %e, "cannot update projections; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
            next = last.position.next();
            projected.send_replace(next);
            continue;
        }
        tokio::select! {
            r = end.changed() => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}
