//! The `EventLog` port: the only source of truth.
//!
//! Positions strictly increase in log order but need not be dense: a log may spend positions
//! on things that are not events (Kafka's transaction markers, records of aborted
//! transactions), so the event after position `p` is at some position `> p`, and the number of
//! events below `end()` is at most `end().0`. Read forward from `last.position.next()`; never
//! count events by subtracting positions.

use crate::error::Result;
use async_trait::async_trait;
use kindling_events::{Envelope, LogPosition, NewEvent};
use std::sync::Arc;
use tokio::sync::watch;

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` in order and returns them with their positions once they are durable.
    /// Concurrent appends are committed together (group commit). The events of one append get
    /// increasing positions; with one writer they are adjacent, but another writer's events
    /// (another process, or a [`FencedWriter`]) may land between them.
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>>;

    /// Up to `max` events at positions `>= from`, in order.
    async fn read(&self, from: LogPosition, max: usize) -> Result<Vec<Envelope>>;

    /// One past the position of the last event readers can see: every event before it is
    /// durable and readable. It is always an event's position + 1 (or 0 for an empty log),
    /// never the position of anything else the log stores, so every instance of one log
    /// agrees on it once it has seen the same events.
    fn end(&self) -> LogPosition;

    /// Changes whenever `end` advances; follow the tail by reading up to the new end.
    fn subscribe(&self) -> watch::Receiver<LogPosition>;

    /// The end, made current: at or past every event whose append was acknowledged, by any
    /// writer in any process, before this call. `end` may lag behind other processes' appends
    /// (it moves as this instance learns of them); this asks the log's store and waits until
    /// `end` covers what it answered. A read that must not go back behind what a client saw
    /// through another node waits for its projections to reach this. Fails if the store
    /// cannot be asked. A log with one writer process has nothing to ask: `end` it is.
    async fn current_end(&self) -> Result<LogPosition> {
        Ok(self.end())
    }

    /// Opens a writer that fences every writer opened earlier under the same `writer_id`, in
    /// this process or any other: once this returns Ok, their appends fail with `Fenced` and
    /// none of their unacknowledged appends becomes visible to readers afterwards.
    async fn fenced_writer(&self, writer_id: &str) -> Result<Arc<dyn FencedWriter>>;
}

/// A writer that a newer writer with the same id can depose (the scheduler of a Raft leader:
/// a deposed leader must not write once its successor started). Its events go to the same log
/// as [`EventLog::append`]'s and are read back the same way.
#[async_trait]
pub trait FencedWriter: Send + Sync + 'static {
    /// Appends like EventLog::append (in order, durable before Ok, positions returned), but
    /// fails with StoreError::Fenced once a newer writer with the same id was opened.
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>>;
}
