//! The read barrier: how far this node's projections reflect the log, and waiting until they
//! reflect every event acknowledged anywhere before a read, so that a read through any node
//! never goes back behind what a client saw through another (a session read `idle` on one
//! node must not read `starting` on the next).

use crate::error::{Error, Result};
use kindling_events::LogPosition;
use kindling_store::EventLog;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a read waits for the projections to reach the log's end before it gives up.
pub const READ_BARRIER_WAIT: Duration = Duration::from_secs(5);

pub struct ReadBarrier {
    log: Arc<dyn EventLog>,
    /// How far the projector has brought the projections (the next position to apply).
    projected: watch::Receiver<LogPosition>,
}

impl ReadBarrier {
    pub fn new(log: Arc<dyn EventLog>, projected: watch::Receiver<LogPosition>) -> Self {
        ReadBarrier { log, projected }
    }

    /// The next log position the projections will apply.
    pub fn position(&self) -> LogPosition {
        *self.projected.borrow()
    }

    /// Changes each time the projections move on.
    pub fn projected(&self) -> watch::Receiver<LogPosition> {
        self.projected.clone()
    }

    /// Waits until the projections reflect the log up to `position` (exclusive), or the
    /// deadline passes. Reads after a write call this to see their own writes.
    pub async fn await_projected(&self, position: LogPosition, timeout: Duration) -> bool {
        let mut rx = self.projected.clone();
        let deadline = Instant::now() + timeout;
        loop {
            if *rx.borrow_and_update() >= position {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until the projections reflect everything appended so far, as far as this node
    /// can tell: the log's current end if its store answers, else the end it knows. For the
    /// node's own bookkeeping; reads served to clients go through [`ReadBarrier::pass`].
    pub async fn catch_up(&self) -> bool {
        let end = match self.log.current_end().await {
            Ok(end) => end,
            Err(_) => self.log.end(),
        };
        self.await_projected(end, READ_BARRIER_WAIT).await
    }

    /// Waits until the projections reflect every event acknowledged anywhere in the cluster
    /// before the call. Fails, as retryable, when this node cannot ask the log for its end
    /// (cut off from the broker) or its projections do not get there in time (the
    /// projection store is away): a stale answer would be worse.
    pub async fn pass(&self) -> Result<()> {
        let started = Instant::now();
        let end = self.log.current_end().await.map_err(|e| {
            crate::metrics::read_barrier(started.elapsed(), Some("log_unreachable"));
            Error::Unavailable(format!(
                "this node cannot confirm that its reads are current ({e}); retry, another \
                 node may answer"
            ))
        })?;
        if self.await_projected(end, READ_BARRIER_WAIT).await {
            crate::metrics::read_barrier(started.elapsed(), None);
            return Ok(());
        }
        crate::metrics::read_barrier(started.elapsed(), Some("behind"));
        Err(Error::Unavailable(format!(
            "this node's projections are behind the event log (at {}, the log ends at {}); \
             retry, another node may answer",
            self.position().0,
            end.0
        )))
    }
}
