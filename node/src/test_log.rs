//! A real sled event log with two test hooks: reads that fail, as reads on an unreachable or
//! overloaded broker do, and a count of `current_end` asks, each a broker round trip on
//! Kafka. Shared by the unit tests that need either.

use async_trait::async_trait;
use kindling_events::{Envelope, LogPosition, NewEvent};
use kindling_store::{EventLog, FencedWriter, Result, SledEventLog, StoreError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub struct ObservedLog {
    log: SledEventLog,
    failing_reads: AtomicUsize,
    end_asks: AtomicUsize,
}

impl ObservedLog {
    pub fn new(log: SledEventLog) -> Self {
        ObservedLog {
            log,
            failing_reads: AtomicUsize::new(0),
            end_asks: AtomicUsize::new(0),
        }
    }

    /// The next `n` reads fail.
    pub fn failing_reads(self, n: usize) -> Self {
        self.failing_reads.store(n, Ordering::SeqCst);
        self
    }

    /// How often `current_end` was asked.
    pub fn end_asks(&self) -> usize {
        self.end_asks.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventLog for ObservedLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        self.log.append(events).await
    }

    async fn read(&self, from: LogPosition, max: usize) -> Result<Vec<Envelope>> {
        let failed = self
            .failing_reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Err(StoreError::Backend("no record within 10s".into()));
        }
        self.log.read(from, max).await
    }

    fn end(&self) -> LogPosition {
        self.log.end()
    }

    fn subscribe(&self) -> watch::Receiver<LogPosition> {
        self.log.subscribe()
    }

    async fn current_end(&self) -> Result<LogPosition> {
        self.end_asks.fetch_add(1, Ordering::SeqCst);
        self.log.current_end().await
    }

    async fn fenced_writer(&self, id: &str) -> Result<Arc<dyn FencedWriter>> {
        self.log.fenced_writer(id).await
    }
}
