//! The `EventLog` port: the only source of truth.

use crate::error::Result;
use async_trait::async_trait;
use kindling_events::{Envelope, LogPosition, NewEvent};
use tokio::sync::watch;

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` in order, contiguously, and returns them with their positions once
    /// they are durable. Concurrent appends are committed together (group commit).
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>>;

    /// Up to `max` events at positions `>= from`, in order.
    async fn read(&self, from: LogPosition, max: usize) -> Result<Vec<Envelope>>;

    /// The position the next appended event will get: every event before it is durable.
    fn end(&self) -> LogPosition;

    /// Changes whenever `end` advances; follow the tail by reading up to the new end.
    fn subscribe(&self) -> watch::Receiver<LogPosition>;
}
