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

mod links;
pub mod metrics;
mod status;

use kafka_route::KafkaRoutes;
use kindling_core::driver_secret::secret_digest;
use kindling_core::{Core, DriverLinks, Error, ErrorCode, Result};
use kindling_events::{
    Attempt, Command, JobId, JobState, Origin, SessionKind, StatementId, StatementOutput,
    StatementState,
};
use kindling_proto::driver::v1 as pb;
use parking_lot::Mutex;
use status::status;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    dispatched: Mutex<HashMap<(JobId, StatementId), (Instant, SessionKind)>>,
    /// Kafka mode: the sessions' topic pairs. `None` in gRPC mode.
    routes: Option<Arc<KafkaRoutes>>,
    /// This gateway, for the routes' tasks it hands itself to.
    me: std::sync::Weak<Gateway>,
}

fn msg(body: pb::node_message::Body) -> pb::NodeMessage {
    pb::NodeMessage { body: Some(body) }
}

impl Gateway {
    /// A gateway whose drivers are told to send heartbeats every `heartbeat_interval`;
    /// `leader_endpoint` names the leader's gateway for drivers that reach a follower. In
    /// Kafka mode (`routes`), sessions are launched with, and reached through, their own
    /// topic pair.
    pub fn new(
        core: Arc<Core>,
        heartbeat_interval: Duration,
        leader_endpoint: Box<dyn Fn() -> Option<String> + Send + Sync>,
        routes: Option<Arc<KafkaRoutes>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Gateway {
            core,
            leader_endpoint,
            heartbeat_interval,
            links: Mutex::default(),
            next_conn: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            completions: Mutex::default(),
            dispatched: Mutex::default(),
            routes,
            me: me.clone(),
        })
    }

    /// Publishes the age of the stalest heartbeat among the connected drivers (for the
    /// node's periodic gauges).
    pub fn report_heartbeats(&self) {
        let oldest = self
            .links
            .lock()
            .values()
            .map(|l| l.last_seen.elapsed())
            .max();
        metrics::oldest_heartbeat(oldest);
    }

    fn sender(&self, job: JobId) -> Option<mpsc::Sender<Outgoing>> {
        self.links.lock().get(&job).map(|l| l.tx.clone())
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
            Err(Error::NotFound(_)) => {
                return Ok(Err(status(ErrorCode::Unauthenticated, "unknown session")))
            }
            Err(e) => return Err(e),
        };
        if state.secret_digest.is_empty() || secret_digest(&r.secret) != state.secret_digest {
            return Ok(Err(status(
                ErrorCode::Unauthenticated,
                "bad session secret",
            )));
        }
        if state.attempt != Attempt(r.attempt) || state.state.is_terminal() || state.kill_requested
        {
            return Ok(Err(status(
                ErrorCode::Conflict,
                format!(
                    "session {job} attempt {} is not wanted (state {})",
                    r.attempt, state.state
                ),
            )));
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
        self.links.lock().insert(
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
            let mut links = self.links.lock();
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
        let statements = self.core.reads().statements(job, 0, usize::MAX).await?;
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
    pub(crate) fn heard(&self, job: JobId, conn: u64) {
        if let Some(l) = self.links.lock().get_mut(&job) {
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
                        if let Some((at, kind)) = self.dispatched.lock().remove(&(job, statement)) {
                            metrics::statement_latency(kind, at.elapsed());
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
                if let Some(done) = self.completions.lock().remove(&c.request_id) {
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
