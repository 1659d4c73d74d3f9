//! The port through which the scheduler and the API reach session drivers: the driver
//! gateway, seen from the core. The gateway crate implements it (gRPC streams or Kafka topic
//! pairs); nothing here knows which transport carries a message.

use crate::error::Result;
use async_trait::async_trait;
use kindling_backend::KafkaRoute;
use kindling_events::{Attempt, JobId, SessionKind, StatementId};
use std::time::Instant;

#[async_trait]
pub trait DriverLinks: Send + Sync + 'static {
    /// When the driver of `job`'s `attempt` was last heard from, if it is linked to this node.
    fn last_seen(&self, job: JobId, attempt: Attempt) -> Option<Instant>;

    /// How many session drivers are linked to this node.
    fn connected(&self) -> usize;

    /// The largest statement (its code, in bytes) the link to a driver carries: a larger one
    /// could never reach the driver, and is refused when it is submitted.
    fn max_statement_bytes(&self) -> usize;

    /// Opens the route of a session's driver before it is launched: in Kafka mode its topic
    /// pair, which the launch hands to the driver; `None` when drivers dial the gateways.
    async fn open_route(&self, job: JobId, attempt: Attempt) -> Result<Option<KafkaRoute>>;

    /// On taking over as leader, before drivers are checked: follows again the routes a
    /// former leader followed.
    async fn resume_routes(&self);

    /// Ends every link without stopping the drivers (this node stopped leading).
    fn release_all(&self);

    /// Asks the driver of `job` to stop, and forgets its link.
    async fn shutdown(&self, job: JobId, reason: &str);

    /// Hands a statement to the session's driver if it is linked; otherwise it is sent when
    /// the driver registers.
    async fn run(&self, job: JobId, statement: StatementId, kind: SessionKind, code: String);

    /// Asks the driver to cancel a statement.
    async fn cancel(&self, job: JobId, statement: StatementId);

    /// Completion candidates for `code` at `cursor`, computed by the driver.
    async fn complete(
        &self,
        job: JobId,
        kind: SessionKind,
        code: String,
        cursor: u32,
    ) -> Result<Vec<String>>;
}
