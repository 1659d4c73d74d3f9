//! The driver gateway: how the leader talks to session drivers. It checks a driver's secret,
//! records what the driver reports (ready, statement started and finished) as events, and
//! carries statements, cancels and completion requests to it. Each result is recorded
//! exactly once (the aggregate refuses a second completion) and acknowledged only after it
//! is durable, so a driver resends whatever a broken link may have lost.
//!
//! A driver is reached through a link: a channel of node messages whose other end is a
//! transport, chosen by `--driver-route`:
//! - [`grpc`]: one bidirectional stream from the driver to the leader; after a failover the
//!   runner reconnects to the new leader.
//! - [`kafka_route`]: the session's own pair of topics; it outlives every node, and a new
//!   leader resumes it where the last one's durable handling ended.
//!
//! Only the leader holds links; both transports feed the same handling here. This module does
//! not launch or watch drivers (the scheduler does).

mod grpc;
pub mod kafka_route;

pub use grpc::DriverService;

use crate::backend::KafkaRoute;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::metrics;
use kafka_route::KafkaRoutes;
use kindling_events::{
    Attempt, Command, JobId, JobState, Origin, SessionKind, StatementId, StatementOutput,
    StatementState,
};
use kindling_proto::driver::v1 as pb;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

/// What a link carries to its driver. An `Err` ends the link (on gRPC, as the stream's
/// status).
pub(crate) type Outgoing = Result<pb::NodeMessage, Status>;

/// A registered driver, as far as this node knows: where its messages go and when it was last
/// heard from. `conn` tells one registration from the next.
struct Link {
    attempt: Attempt,
    conn: u64,
    tx: mpsc::Sender<Outgoing>,
    last_seen: Instant,
}

pub struct Gateway {
    core: Arc<Core>,
    /// The leader's driver gateway, if known, for drivers that reach a follower.
    leader_endpoint: Box<dyn Fn() -> Option<String> + Send + Sync>,
    heartbeat_interval: Duration,
    links: Mutex<HashMap<JobId, Link>>,
    next_conn: AtomicU64,
    next_request: AtomicU64,
    completions: Mutex<HashMap<u64, oneshot::Sender<Vec<String>>>>,
    /// When each in-flight statement was handed to a driver, for the latency histogram.
    dispatched: Mutex<HashMap<(JobId, StatementId), Instant>>,
    /// Kafka mode: the sessions' topic pairs. `None` in gRPC mode.
    routes: Option<Arc<KafkaRoutes>>,
}

/// SHA-256 of a driver secret, as stored in `JobScheduled`.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn msg(body: pb::node_message::Body) -> pb::NodeMessage {
    pb::NodeMessage { body: Some(body) }
}

impl Gateway {
    pub fn new(
        core: Arc<Core>,
        heartbeat_interval: Duration,
        leader_endpoint: Box<dyn Fn() -> Option<String> + Send + Sync>,
    ) -> Self {
        Gateway {
            core,
            leader_endpoint,
            heartbeat_interval,
            links: Mutex::default(),
            next_conn: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            completions: Mutex::default(),
            dispatched: Mutex::default(),
            routes: None,
        }
    }

    /// Kafka mode: sessions are launched with, and reached through, their own topic pair.
    pub fn with_kafka_routes(mut self, routes: Option<Arc<KafkaRoutes>>) -> Self {
        self.routes = routes;
        self
    }

    fn sender(&self, job: JobId) -> Option<mpsc::Sender<Outgoing>> {
        self.links.lock().unwrap().get(&job).map(|l| l.tx.clone())
    }

    /// When the driver of `job` was last heard from, if it is connected.
    pub fn last_seen(&self, job: JobId, attempt: Attempt) -> Option<Instant> {
        self.links
            .lock()
            .unwrap()
            .get(&job)
            .filter(|l| l.attempt == attempt)
            .map(|l| l.last_seen)
    }

    pub fn connected(&self) -> usize {
        self.links.lock().unwrap().len()
    }

    /// Hands a statement to the session's driver if it is connected; otherwise it is sent
    /// when the driver registers.
    pub async fn run(&self, job: JobId, statement: StatementId, kind: SessionKind, code: String) {
        self.dispatched
            .lock()
            .unwrap()
            .entry((job, statement))
            .or_insert_with(Instant::now);
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

    pub async fn cancel(&self, job: JobId, statement: StatementId) {
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

    /// Ends every driver's link without stopping the drivers (this node stopped leading):
    /// gRPC drivers reconnect, to whichever member leads now; Kafka routes stop being
    /// followed here, and the next leader resumes them.
    pub fn release_all(&self) {
        if let Some(routes) = &self.routes {
            routes.stop_all();
        }
        let links: Vec<Link> = self.links.lock().unwrap().drain().map(|(_, l)| l).collect();
        for l in links {
            let _ = l.tx.try_send(Err(Status::unavailable(
                "this node no longer leads the cluster; reconnect",
            )));
        }
        metrics::drivers_connected(self.connected());
    }

    /// Asks the driver to stop Spark and exit, and forgets the link (and the route).
    pub async fn shutdown(&self, job: JobId, reason: &str) {
        if let Some(routes) = &self.routes {
            routes.stop(job);
        }
        let link = self.links.lock().unwrap().remove(&job);
        if let Some(l) = link {
            let _ =
                l.tx.send(Ok(msg(pb::node_message::Body::Shutdown(pb::Shutdown {
                    reason: reason.into(),
                }))))
                .await;
        }
        metrics::drivers_connected(self.connected());
    }

    /// Opens the route of a session's driver before it is launched. In Kafka mode: creates
    /// the session's topic pair and follows its replies; returns what the driver needs to
    /// use it. `None` in gRPC mode (the driver dials the gateways it is given).
    pub async fn open_route(
        self: &Arc<Self>,
        job: JobId,
        attempt: Attempt,
    ) -> Result<Option<KafkaRoute>> {
        match &self.routes {
            Some(routes) => routes.open(self, job, attempt).await.map(Some),
            None => Ok(None),
        }
    }

    /// On taking over as leader, before drivers are checked: follows again the route of
    /// every session a former leader launched in Kafka mode, from where that leader's
    /// durable handling of its replies ended. Sessions that had registered count as linked
    /// at once, so the failover does not mark them recovering.
    pub async fn resume_routes(self: &Arc<Self>) {
        let Some(routes) = &self.routes else { return };
        if let Err(e) = routes.resume(self).await {
            tracing::error!(error = %e, "cannot resume the sessions' driver routes");
        }
    }

    /// Completion candidates for `code` at `cursor`, computed by the driver.
    pub async fn complete(
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
        self.completions.lock().unwrap().insert(id, done);
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
        let out = tokio::time::timeout(Duration::from_secs(10), rx).await;
        self.completions.lock().unwrap().remove(&id);
        match out {
            Ok(Ok(c)) => Ok(c),
            _ => Err(Error::Unavailable(format!(
                "session {job}'s driver did not answer the completion request in time"
            ))),
        }
    }

    fn leader_hint(&self) -> String {
        match (self.leader_endpoint)() {
            Some(addr) => format!("this node does not lead the cluster; leader-endpoint={addr}"),
            None => "this node does not lead the cluster; no leader is known yet".into(),
        }
    }

    /// Checks a driver's registration: `Ok(Err(status))` refuses it for the reason given;
    /// `Err` means it cannot be told now.
    async fn register(&self, r: &pb::Register) -> Result<Result<(), Status>> {
        let job = JobId(r.job_id);
        let state = match self.core.job(job).await {
            Ok(state) => state,
            Err(Error::NotFound(_)) => return Ok(Err(Status::unauthenticated("unknown session"))),
            Err(e) => return Err(e),
        };
        if state.secret_digest.is_empty() || secret_digest(&r.secret) != state.secret_digest {
            return Ok(Err(Status::unauthenticated("bad session secret")));
        }
        if state.attempt != Attempt(r.attempt) || state.state.is_terminal() || state.kill_requested
        {
            return Ok(Err(Status::failed_precondition(format!(
                "session {job} attempt {} is not wanted (state {})",
                r.attempt, state.state
            ))));
        }
        Ok(Ok(()))
    }

    /// A driver that a former leader registered was heard from: a session marked recovering
    /// meanwhile is ready again.
    async fn confirm(&self, job: JobId, attempt: Attempt) -> Result<()> {
        if self.core.job(job).await?.state == JobState::Recovering {
            self.core
                .execute(job, Origin::Driver, Command::SessionReady { attempt })
                .await?;
        }
        Ok(())
    }

    /// Makes `tx` the link to the driver of `job` (replacing any earlier one) and tells the
    /// driver it is registered. Returns the link's connection number.
    fn link(&self, job: JobId, attempt: Attempt, tx: mpsc::Sender<Outgoing>) -> u64 {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        // A fresh channel has room: this never drops the message.
        let _ = tx.try_send(Ok(msg(pb::node_message::Body::Registered(
            pb::Registered {
                heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
            },
        ))));
        self.links.lock().unwrap().insert(
            job,
            Link {
                attempt,
                conn,
                tx,
                last_seen: Instant::now(),
            },
        );
        metrics::drivers_connected(self.connected());
        conn
    }

    /// Forgets link `conn` of `job`, unless a newer one replaced it. Returns it if it was
    /// the current one.
    fn unlink(&self, job: JobId, conn: u64) -> Option<Link> {
        let removed = {
            let mut links = self.links.lock().unwrap();
            match links.get(&job) {
                Some(l) if l.conn == conn => links.remove(&job),
                _ => None,
            }
        };
        metrics::drivers_connected(self.connected());
        removed
    }

    /// Brings a newly linked driver up to date. After a `Register`: records its application
    /// id and that the session is ready, then resends what it does not know. For a driver a
    /// former leader registered (a resumed Kafka route): resends everything in flight, which
    /// the driver ignores where it already has it.
    async fn welcome(&self, job: JobId, reg: Option<&pb::Register>) -> Result<()> {
        if let Some(r) = reg {
            let attempt = Attempt(r.attempt);
            if !r.app_id.is_empty() {
                let _ = self
                    .core
                    .execute(
                        job,
                        Origin::Driver,
                        Command::AppIdentified {
                            attempt,
                            app_id: r.app_id.clone(),
                            spark_ui_url: Some(r.spark_ui_url.clone()).filter(|u| !u.is_empty()),
                        },
                    )
                    .await;
            }
            self.core
                .execute(job, Origin::Driver, Command::SessionReady { attempt })
                .await?;
            tracing::info!(
                job = job.0,
                attempt = attempt.0,
                "session driver registered"
            );
        }
        let known = reg.map(|r| r.known_statements.as_slice()).unwrap_or(&[]);
        self.resend(job, known).await
    }

    /// Resends what the driver should be working on: statements still waiting or running
    /// that it does not know, and cancels it may have missed.
    async fn resend(&self, job: JobId, known: &[u64]) -> Result<()> {
        self.core.catch_up().await;
        let statements = self.core.projections.statements(job, 0, usize::MAX).await?;
        for s in statements.items {
            match s.state {
                StatementState::Waiting | StatementState::Running if !known.contains(&s.id.0) => {
                    self.run(job, s.id, s.kind, s.code).await
                }
                StatementState::Cancelling => self.cancel(job, s.id).await,
                _ => {}
            }
        }
        Ok(())
    }

    /// The driver on link `conn` of `job` was heard from just now (any message counts as a
    /// heartbeat).
    pub(super) fn heard(&self, job: JobId, conn: u64) {
        if let Some(l) = self.links.lock().unwrap().get_mut(&job) {
            if l.conn == conn {
                l.last_seen = Instant::now();
            }
        }
    }

    async fn handle(&self, job: JobId, m: pb::DriverMessage) -> Result<()> {
        use pb::driver_message::Body;
        let Some(body) = m.body else { return Ok(()) };
        match body {
            Body::Register(_) | Body::Heartbeat(_) => {}
            Body::Started(s) => {
                self.core
                    .execute(
                        job,
                        Origin::Driver,
                        Command::StatementStarted {
                            statement: StatementId(s.statement_id),
                        },
                    )
                    .await?;
            }
            Body::Result(r) => {
                let statement = StatementId(r.statement_id);
                let out = r.output.unwrap_or_default();
                let output = to_output(statement, out);
                let recorded = self
                    .core
                    .execute(
                        job,
                        Origin::Driver,
                        Command::CompleteStatement {
                            statement,
                            output,
                            cancelled: r.cancelled,
                        },
                    )
                    .await;
                match recorded {
                    Ok(_) | Err(Error::Domain(_)) => {
                        if let Some(at) = self.dispatched.lock().unwrap().remove(&(job, statement))
                        {
                            metrics::statement_latency(at.elapsed());
                        }
                        if let Some(tx) = self.sender(job) {
                            let _ = tx
                                .send(Ok(msg(pb::node_message::Body::Ack(pb::ResultAck {
                                    statement_id: statement.0,
                                }))))
                                .await;
                        }
                    }
                    // Not durable: no ack, the driver resends after reconnecting.
                    Err(e) => return Err(e),
                }
            }
            Body::Completion(c) => {
                if let Some(done) = self.completions.lock().unwrap().remove(&c.request_id) {
                    let _ = done.send(c.candidates);
                }
            }
        }
        Ok(())
    }

    async fn disconnected(&self, job: JobId, conn: u64) {
        let Some(link) = self.unlink(job, conn) else {
            return;
        };
        tracing::info!(job = job.0, "session driver disconnected");
        if let Ok(j) = self.core.job(job).await {
            if matches!(j.state, JobState::Idle | JobState::Busy) && !j.kill_requested {
                let _ = self
                    .core
                    .execute(
                        job,
                        Origin::Driver,
                        Command::SessionRecovering {
                            attempt: link.attempt,
                            reason: "the driver's link to the node was lost; waiting for it to reconnect".into(),
                        },
                    )
                    .await;
            }
        }
    }
}

/// Livy's output, with `execution_count` set to the statement id as Livy does.
fn to_output(statement: StatementId, o: pb::StatementOutput) -> StatementOutput {
    if o.status == "ok" {
        StatementOutput::Ok {
            execution_count: statement.0,
            data_json: if o.data_json.is_empty() {
                "{}".into()
            } else {
                o.data_json
            },
        }
    } else {
        StatementOutput::Error {
            execution_count: statement.0,
            ename: o.ename,
            evalue: o.evalue,
            traceback: o.traceback,
        }
    }
}
