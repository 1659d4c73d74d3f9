//! One followed route: its replies handled in order, each committed once its handling is
//! durable, and what the leader sends back.

use super::{KafkaRoutes, Reply, RouteLink, RETRY, SWEEP};
use crate::{msg, Gateway};
use kindling_core::{Error, Result};
use kindling_events::{Attempt, JobId};
use kindling_proto::driver::v1 as pb;
use prost::Message as _;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The handling of one followed route: replies in order, each committed once handled.
pub(super) struct Route {
    pub(super) routes: Arc<KafkaRoutes>,
    pub(super) gw: Arc<Gateway>,
    pub(super) job: JobId,
    pub(super) attempt: Attempt,
    pub(super) topic: String,
    /// The gateway link of this route's driver, once it registered (or was adopted).
    pub(super) link: Arc<RouteLink>,
    /// Whether a reply was seen since the route was adopted: proof the driver lives.
    pub(super) confirmed: bool,
    pub(super) stop: CancellationToken,
}

impl Route {
    pub(super) async fn serve(mut self, mut replies: mpsc::Receiver<Reply>) {
        if self.link.conn().is_some() {
            // Adopted: resend what the driver should be working on; it ignores what it has.
            loop {
                let Err(e) = self.gw.welcome(self.job, None).await else {
                    break;
                };
                if !self.should_retry(e).await {
                    if !self.live() {
                        return;
                    }
                    break;
                }
            }
        }
        let key = self.attempt.0.to_string();
        let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP, SWEEP);
        loop {
            let reply = tokio::select! {
                r = replies.recv() => match r { Some(r) => r, None => return },
                _ = sweep.tick() => {
                    if self.ended().await {
                        self.routes.stop_attempt(self.job, self.attempt);
                        return;
                    }
                    continue;
                }
                _ = self.stop.cancelled() => return,
            };
            // Replies of another attempt of the job are not this driver's.
            if reply.key.as_deref() == Some(key.as_bytes()) {
                match pb::DriverMessage::decode(reply.payload.as_slice()) {
                    Ok(m) => self.deliver(m).await,
                    Err(e) => tracing::warn!(
                        job = self.job.0,
                        offset = reply.offset,
                        error = %e,
                        "undecodable driver reply skipped"
                    ),
                }
            }
            if !self.live() {
                return;
            }
            self.routes.commit(&self.topic, reply.offset + 1);
        }
    }

    /// Whether the session is over for this route's driver.
    async fn ended(&self) -> bool {
        match self.gw.core.job(self.job).await {
            Ok(j) => j.state.is_terminal() || j.attempt != self.attempt,
            Err(_) => false,
        }
    }

    /// Whether this node still follows the route as leader.
    fn live(&self) -> bool {
        !self.stop.is_cancelled() && self.gw.core.leading_term().is_some()
    }

    /// Handles `m`, again and again while it fails in a way that may pass.
    async fn deliver(&mut self, m: pb::DriverMessage) {
        loop {
            let Err(e) = self.handle(m.clone()).await else {
                return;
            };
            if !self.should_retry(e).await {
                return;
            }
        }
    }

    /// After a failed handling: waits and says to retry when it may succeed later; says to
    /// move on when it never will (logged) or this node no longer leads.
    async fn should_retry(&self, e: Error) -> bool {
        match e {
            Error::NotLeader(_) => false,
            Error::Domain(_) | Error::NotFound(_) | Error::BadRequest(_) => {
                tracing::warn!(job = self.job.0, error = %e, "driver message not recorded");
                false
            }
            e => {
                tracing::warn!(job = self.job.0, error = %e, "driver message not recorded yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => self.live(),
                    _ = self.stop.cancelled() => false,
                }
            }
        }
    }

    async fn handle(&mut self, m: pb::DriverMessage) -> Result<()> {
        if let Some(pb::driver_message::Body::Register(r)) = &m.body {
            return self.register(r).await;
        }
        let Some(conn) = self.link.conn() else {
            // A driver registers before anything else: this one's registration was refused.
            tracing::debug!(job = self.job.0, "reply of an unregistered driver ignored");
            return Ok(());
        };
        if !self.confirmed {
            self.gw.confirm(self.job, self.attempt).await?;
            self.confirmed = true;
        }
        // The dispatcher counted it on arrival if the link was known then; not if it arrived
        // before the driver's registration was handled.
        self.gw.heard(self.job, conn);
        self.gw.handle(self.job, m).await
    }

    async fn register(&mut self, r: &pb::Register) -> Result<()> {
        if r.job_id != self.job.0 || r.attempt != self.attempt.0 {
            tracing::warn!(
                job = self.job.0,
                attempt = self.attempt.0,
                claimed_job = r.job_id,
                claimed_attempt = r.attempt,
                "registration for another session ignored"
            );
            return Ok(());
        }
        if let Err(refused) = self.gw.register(r).await? {
            tracing::warn!(job = self.job.0, reason = %refused.message(), "driver registration refused");
            if refused.code() != tonic::Code::Unauthenticated {
                // The attempt is not wanted: tell it to stop. A registration with a bad
                // secret gets no answer: it does not come from this session's driver.
                let reason = format!("registration refused: {}", refused.message());
                let shutdown = msg(pb::node_message::Body::Shutdown(pb::Shutdown { reason }));
                self.routes
                    .send(self.job, self.attempt, &shutdown, || self.live())
                    .await;
            }
            return Ok(());
        }
        let outbox = self.routes.outbox(&self.gw, self.job, self.attempt);
        let conn = self.gw.link(self.job, self.attempt, outbox);
        self.link.set(conn);
        self.confirmed = true;
        self.gw.welcome(self.job, Some(r)).await
    }
}
