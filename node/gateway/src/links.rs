//! The gateway as the core sees it ([`DriverLinks`]): linked drivers and their heartbeats,
//! statements, cancels and completions carried to them, routes opened before launches and
//! resumed after a failover, links ended when this node stops leading.

use super::{metrics, msg, Gateway, Link};
use crate::status::status;
use async_trait::async_trait;
use kindling_backend::KafkaRoute;
use kindling_core::{DriverLinks, Error, ErrorCode, Result};
use kindling_events::{Attempt, JobId, SessionKind, StatementId};
use kindling_proto::driver::v1 as pb;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The largest message a driver's gRPC client receives (gRPC's default, which the runner
/// keeps).
const GRPC_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// The largest message on a session's Kafka route: the producers' `message.max.bytes`, which
/// brokers accept by default.
pub(crate) const ROUTE_MESSAGE_BYTES: usize = 1_000_000;
/// What a statement's message holds besides its code (its id, its kind, the framing).
const MESSAGE_HEADROOM: usize = 1024;

/// How long a completion request waits for the driver's answer.
const COMPLETION_WAIT: Duration = Duration::from_secs(10);

#[async_trait]
impl DriverLinks for Gateway {
    fn last_seen(&self, job: JobId, attempt: Attempt) -> Option<Instant> {
        self.links
            .lock()
            .get(&job)
            .filter(|l| l.attempt == attempt)
            .map(|l| l.last_seen)
    }

    fn connected(&self) -> usize {
        self.links.lock().len()
    }

    fn max_statement_bytes(&self) -> usize {
        let message = match self.routes {
            Some(_) => ROUTE_MESSAGE_BYTES,
            None => GRPC_MESSAGE_BYTES,
        };
        message - MESSAGE_HEADROOM
    }

    /// In Kafka mode: creates the session's topic pair and follows its replies; returns what
    /// the driver needs to use it.
    async fn open_route(&self, job: JobId, attempt: Attempt) -> Result<Option<KafkaRoute>> {
        let (Some(routes), Some(me)) = (&self.routes, self.me.upgrade()) else {
            return Ok(None);
        };
        routes.open(&me, job, attempt).await.map(Some)
    }

    /// Follows again the route of every session a former leader launched in Kafka mode,
    /// from where that leader's durable handling of its replies ended. Sessions that had
    /// registered count as linked at once, so the failover does not mark them recovering.
    async fn resume_routes(&self) {
        let (Some(routes), Some(me)) = (&self.routes, self.me.upgrade()) else {
            return;
        };
        if let Err(e) = routes.resume(&me).await {
            tracing::error!(error = %e, "cannot resume the sessions' driver routes");
        }
    }

    /// gRPC drivers reconnect, to whichever member leads now; Kafka routes stop being
    /// followed here, and the next leader resumes them.
    fn release_all(&self) {
        if let Some(routes) = &self.routes {
            routes.stop_all();
        }
        let links: Vec<Link> = self.links.lock().drain().map(|(_, l)| l).collect();
        for l in links {
            let _ = l.tx.try_send(Err(status(
                ErrorCode::Unavailable,
                "this node no longer leads the cluster; reconnect",
            )));
        }
        metrics::drivers_connected(self.connected());
    }

    /// Asks the driver to stop Spark and exit, and forgets the link (and the route).
    async fn shutdown(&self, job: JobId, reason: &str) {
        if let Some(routes) = &self.routes {
            routes.stop(job);
        }
        let link = self.links.lock().remove(&job);
        if let Some(l) = link {
            let _ =
                l.tx.send(Ok(msg(pb::node_message::Body::Shutdown(pb::Shutdown {
                    reason: reason.into(),
                }))))
                .await;
        }
        metrics::drivers_connected(self.connected());
    }

    async fn run(&self, job: JobId, statement: StatementId, kind: SessionKind, code: String) {
        self.dispatched
            .lock()
            .entry((job, statement))
            .or_insert_with(|| (Instant::now(), kind));
        if let Some(tx) = self.sender(job) {
            let _ = tx
                .send(Ok(msg(pb::node_message::Body::Run(pb::RunStatement {
                    statement_id: statement.0,
                    kind: kind.as_str().into(),
                    code,
                }))))
                .await;
        }
    }

    async fn cancel(&self, job: JobId, statement: StatementId) {
        if let Some(tx) = self.sender(job) {
            let _ = tx
                .send(Ok(msg(pb::node_message::Body::Cancel(
                    pb::CancelStatement {
                        statement_id: statement.0,
                    },
                ))))
                .await;
        }
    }

    async fn complete(
        &self,
        job: JobId,
        kind: SessionKind,
        code: String,
        cursor: u32,
    ) -> Result<Vec<String>> {
        let Some(tx) = self.sender(job) else {
            return Err(Error::Unavailable(format!(
                "session {job} has no connected driver yet; retry when it is idle"
            )));
        };
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        self.completions.lock().insert(id, done);
        let _ = tx
            .send(Ok(msg(pb::node_message::Body::Complete(
                pb::CompletionRequest {
                    request_id: id,
                    kind: kind.as_str().into(),
                    code,
                    cursor,
                },
            ))))
            .await;
        let out = tokio::time::timeout(COMPLETION_WAIT, rx).await;
        self.completions.lock().remove(&id);
        match out {
            Ok(Ok(c)) => Ok(c),
            _ => Err(Error::Unavailable(format!(
                "session {job}'s driver did not answer the completion request in time"
            ))),
        }
    }
}
