//! The driver gateway: the gRPC service session drivers connect to. It checks a driver's
//! secret, records what the driver reports (ready, statement started and finished) as events,
//! and carries statements, cancels and completion requests to it. Each result is recorded
//! exactly once (the aggregate refuses a second completion) and acknowledged only after it
//! is durable, so a driver resends whatever a broken link may have lost.

use crate::core::Core;
use crate::error::{Error, Result};
use crate::metrics;
use kindling_events::{
    Attempt, Command, JobId, JobState, Origin, SessionKind, StatementId, StatementOutput,
    StatementState,
};
use kindling_proto::driver::v1 as pb;
use pb::driver_link_server::DriverLink;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::{wrappers::ReceiverStream, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

struct Link {
    attempt: Attempt,
    conn: u64,
    tx: mpsc::Sender<Result<pb::NodeMessage, Status>>,
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
        }
    }

    fn sender(&self, job: JobId) -> Option<mpsc::Sender<Result<pb::NodeMessage, Status>>> {
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
    /// each reconnects, to whichever member leads now.
    pub fn release_all(&self) {
        let links: Vec<Link> = self.links.lock().unwrap().drain().map(|(_, l)| l).collect();
        for l in links {
            let _ = l.tx.try_send(Err(Status::unavailable(
                "this node no longer leads the cluster; reconnect",
            )));
        }
        metrics::drivers_connected(self.connected());
    }

    /// Asks the driver to stop Spark and exit, and forgets the link.
    pub async fn shutdown(&self, job: JobId, reason: &str) {
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

    async fn register(&self, r: &pb::Register) -> Result<(), Status> {
        let job = JobId(r.job_id);
        let state = self
            .core
            .job(job)
            .await
            .map_err(|_| Status::unauthenticated("unknown session"))?;
        if state.secret_digest.is_empty() || secret_digest(&r.secret) != state.secret_digest {
            return Err(Status::unauthenticated("bad session secret"));
        }
        if state.attempt != Attempt(r.attempt) || state.state.is_terminal() || state.kill_requested
        {
            return Err(Status::failed_precondition(format!(
                "session {job} attempt {} is not wanted (state {})",
                r.attempt, state.state
            )));
        }
        Ok(())
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

    async fn handle(&self, job: JobId, conn: u64, m: pb::DriverMessage) -> Result<()> {
        use pb::driver_message::Body;
        let Some(body) = m.body else { return Ok(()) };
        if let Some(l) = self.links.lock().unwrap().get_mut(&job) {
            if l.conn == conn {
                l.last_seen = Instant::now();
            }
        }
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
        let removed = {
            let mut links = self.links.lock().unwrap();
            match links.get(&job) {
                Some(l) if l.conn == conn => links.remove(&job),
                _ => None,
            }
        };
        metrics::drivers_connected(self.connected());
        let Some(link) = removed else { return };
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

/// The tonic service: a thin shell over [`Gateway`].
pub struct DriverService(pub Arc<Gateway>);

type NodeStream = Pin<Box<dyn Stream<Item = Result<pb::NodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl DriverLink for DriverService {
    type ConnectStream = NodeStream;

    async fn connect(
        &self,
        request: Request<Streaming<pb::DriverMessage>>,
    ) -> Result<Response<NodeStream>, Status> {
        let gw = self.0.clone();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.next())
            .await
            .map_err(|_| Status::deadline_exceeded("no Register within 10 s"))?;
        let reg = match first {
            Some(Ok(pb::DriverMessage {
                body: Some(pb::driver_message::Body::Register(r)),
            })) => r,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be Register",
                ))
            }
        };
        if gw.core.leading_term().is_none() {
            // Only the leader records what drivers report. The runner tries the next
            // endpoint; the hint lets it go straight to the leader.
            return Err(Status::unavailable(gw.leader_hint()));
        }
        gw.register(&reg).await?;
        let job = JobId(reg.job_id);
        let attempt = Attempt(reg.attempt);
        let conn = gw.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(1024);
        let _ = tx
            .send(Ok(msg(pb::node_message::Body::Registered(
                pb::Registered {
                    heartbeat_interval_ms: gw.heartbeat_interval.as_millis() as u32,
                },
            ))))
            .await;
        gw.links.lock().unwrap().insert(
            job,
            Link {
                attempt,
                conn,
                tx,
                last_seen: Instant::now(),
            },
        );
        metrics::drivers_connected(gw.connected());
        if !reg.app_id.is_empty() {
            let _ = gw
                .core
                .execute(
                    job,
                    Origin::Driver,
                    Command::AppIdentified {
                        attempt,
                        app_id: reg.app_id.clone(),
                        spark_ui_url: Some(reg.spark_ui_url.clone()).filter(|u| !u.is_empty()),
                    },
                )
                .await;
        }
        gw.core
            .execute(job, Origin::Driver, Command::SessionReady { attempt })
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        tracing::info!(
            job = job.0,
            attempt = attempt.0,
            "session driver registered"
        );
        gw.resend(job, &reg.known_statements)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tokio::spawn(async move {
            while let Some(m) = inbound.next().await {
                match m {
                    Ok(m) => {
                        if let Err(e) = gw.handle(job, conn, m).await {
                            tracing::warn!(job = job.0, error = %e, "driver message not recorded");
                        }
                    }
                    Err(_) => break,
                }
            }
            gw.disconnected(job, conn).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
