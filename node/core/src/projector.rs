//! Follows the event log and folds it into the projections, publishing how far it got, and
//! where newer leader terms appeared ([`LeaderTerms`]). On start it replays whatever the
//! projections have not seen (everything, after they were deleted), so reads are always
//! rebuilt from the log.

use crate::leader_terms::LeaderTerms;
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
    terms: Arc<LeaderTerms>,
    shutdown: CancellationToken,
) {
    let mut end = log.subscribe();
    let until = log.end();
    // A failed replay (broker or projection store away, a read that met nothing in time) is
    // tried again from the projections' checkpoint, which holds whatever it got through.
    let mut next = loop {
        let replay = kindling_store::catch_up(log.clone(), projections.as_ref(), until, |p| {
            projected.send_replace(p);
        });
        let replayed = match replay.await {
            Ok(p) => projections.fence().await.map(|fence| (p, fence)),
            Err(e) => Err(e),
        };
        match replayed {
            Ok((p, fence)) => {
                terms.seed(fence, p);
                break p;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot replay the log into the projections; retrying");
                if !pause(&shutdown).await {
                    return;
                }
            }
        }
    };
    loop {
        let batch = match log.read(next, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, position = next.0, "cannot read the event log");
                if !pause(&shutdown).await {
                    return;
                }
                continue;
            }
        };
        if let Some(last) = batch.last() {
            if let Err(e) = projections.apply(&batch).await {
                tracing::error!(error = %e, "cannot update projections; retrying");
                crate::metrics::projection_error();
                if !pause(&shutdown).await {
                    return;
                }
                continue;
            }
            terms.observe(&batch);
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

/// Waits out the pause after a failed read or write; false once the node shuts down.
async fn pause(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_log::ObservedLog;
    use kindling_events::{Event, Origin};
    use kindling_store::conformance::new_event;
    use kindling_store::{SledEventLog, SledProjections};
    use std::time::Duration;

    #[tokio::test]
    async fn a_replay_that_fails_is_tried_again_until_it_reaches_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledEventLog::open(&dir.path().join("log")).unwrap();
        let events = (1..=5)
            .map(|job| new_event(job, 1, Origin::Api, Event::SessionActivity))
            .collect();
        log.append(events).await.unwrap();
        let log: Arc<dyn EventLog> = Arc::new(ObservedLog::new(log).failing_reads(2));
        let projections: Arc<dyn ProjectionStore> =
            Arc::new(SledProjections::open(&dir.path().join("projections")).unwrap());
        let (tx, mut projected) = watch::channel(LogPosition(0));
        let shutdown = CancellationToken::new();
        let terms = Arc::new(LeaderTerms::default());
        let task = tokio::spawn(run(log, projections.clone(), tx, terms, shutdown.clone()));

        tokio::time::timeout(
            Duration::from_secs(20),
            projected.wait_for(|p| *p >= LogPosition(5)),
        )
        .await
        .expect("the replay was retried after its reads failed")
        .expect("the projector is still running");
        assert_eq!(projections.checkpoint().await.unwrap(), LogPosition(5));
        shutdown.cancel();
        task.await.unwrap();
    }
}
