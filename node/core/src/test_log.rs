//! A real sled event log with test hooks: reads that fail, as reads on an unreachable or
//! overloaded broker do; appends that fail, before they are written or after (the answer is
//! lost, as when a broker goes away mid-request); and a count of `current_end` asks, each a
//! broker round trip on Kafka. Shared by the unit tests and the scheduler simulation.

use async_trait::async_trait;
use kindling_events::{Envelope, LogPosition, NewEvent};
use kindling_store::{EventLog, FencedWriter, Result, SledEventLog, StoreError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// How appends fail while a fault is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppendFault {
    #[default]
    None,
    /// Nothing is written; the caller gets an error.
    Refused,
    /// The events are written, but the caller gets an error: it cannot tell.
    AnswerLost,
}

#[derive(Default)]
struct Faults {
    /// Reads left to fail (counted down).
    failing_reads: AtomicUsize,
    /// Every read fails while set.
    reads_down: AtomicBool,
    appends: Mutex<AppendFault>,
    /// While true, an append is written at once but its answer waits (a broker that is slow
    /// to acknowledge what it has already made durable).
    answers_held: watch::Sender<bool>,
    end_asks: AtomicUsize,
}

impl Faults {
    /// A read: fails while reads are down, or if it is one of the counted failing reads.
    fn read(&self) -> Result<()> {
        let counted = self
            .failing_reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if counted {
            return Err(StoreError::Backend("no record within 10s".into()));
        }
        self.reachable()
    }

    /// Any other round trip to the log (its end, opening a writer): fails while reads are
    /// down.
    fn reachable(&self) -> Result<()> {
        if self.reads_down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("no record within 10s".into()));
        }
        Ok(())
    }

    async fn append<F>(&self, write: F) -> Result<Vec<Envelope>>
    where
        F: std::future::Future<Output = Result<Vec<Envelope>>>,
    {
        let fault = *self.appends.lock().unwrap();
        match fault {
            AppendFault::Refused => Err(StoreError::Backend(
                "append refused: broker unreachable".into(),
            )),
            AppendFault::AnswerLost => {
                write.await?;
                Err(StoreError::Backend(
                    "append timed out (it may have landed)".into(),
                ))
            }
            AppendFault::None => {
                let out = write.await;
                let mut held = self.answers_held.subscribe();
                // The sender lives in `self`: this wait ends when the answers are let go.
                let _ = held.wait_for(|h| !*h).await;
                out
            }
        }
    }
}

pub struct ObservedLog {
    log: SledEventLog,
    faults: Arc<Faults>,
}

impl ObservedLog {
    pub fn new(log: SledEventLog) -> Self {
        ObservedLog {
            log,
            faults: Arc::default(),
        }
    }

    /// The next `n` reads fail.
    pub fn failing_reads(self, n: usize) -> Self {
        self.faults.failing_reads.store(n, Ordering::SeqCst);
        self
    }

    /// Every read fails until this is called again with `false`.
    pub fn set_reads_down(&self, down: bool) {
        self.faults.reads_down.store(down, Ordering::SeqCst);
    }

    /// Every append (plain or fenced) fails so until the fault is set to `None`.
    pub fn set_append_fault(&self, fault: AppendFault) {
        *self.faults.appends.lock().unwrap() = fault;
    }

    /// While `held`, appends land at once but their answers wait until this is called again
    /// with `false`.
    pub fn hold_answers(&self, held: bool) {
        self.faults.answers_held.send_replace(held);
    }

    /// How often `current_end` was asked.
    pub fn end_asks(&self) -> usize {
        self.faults.end_asks.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventLog for ObservedLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        self.faults.append(self.log.append(events)).await
    }

    async fn read(&self, from: LogPosition, max: usize) -> Result<Vec<Envelope>> {
        self.faults.read()?;
        self.log.read(from, max).await
    }

    fn end(&self) -> LogPosition {
        self.log.end()
    }

    fn subscribe(&self) -> watch::Receiver<LogPosition> {
        self.log.subscribe()
    }

    async fn current_end(&self) -> Result<LogPosition> {
        self.faults.end_asks.fetch_add(1, Ordering::SeqCst);
        self.faults.reachable()?;
        self.log.current_end().await
    }

    async fn fenced_writer(&self, id: &str) -> Result<Arc<dyn FencedWriter>> {
        self.faults.reachable()?;
        Ok(Arc::new(ObservedWriter {
            writer: self.log.fenced_writer(id).await?,
            faults: self.faults.clone(),
        }))
    }
}

struct ObservedWriter {
    writer: Arc<dyn FencedWriter>,
    faults: Arc<Faults>,
}

#[async_trait]
impl FencedWriter for ObservedWriter {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        self.faults.append(self.writer.append(events)).await
    }
}
