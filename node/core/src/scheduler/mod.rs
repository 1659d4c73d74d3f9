//! The scheduler: on the leader only, it follows the event log, keeps the queue and the
//! cluster registry, launches on each job's cluster under its capacity, turns what the
//! backends report into events and enforces session lifetimes. Every decision is the pure
//! [`engine`]'s; this module is its runtime: it reads the log, the write model, the gateway
//! and the clock, hands them to the engine, and carries out the actions it returns.
//!
//! Backend calls run on one lane per cluster ([`lanes`]) and come back as messages: the loop
//! never waits on a backend, so a slow or unreachable cluster holds up none of the others.
//!
//! On taking over (node start or election) it catches up with the log, then settles every
//! job that was active ([`Engine::start`]): drivers still running are watched again, drivers
//! that ended while no one watched are recorded as ended, and launches that provably did not
//! happen are re-issued.

pub mod engine;
mod lanes;

use crate::core::Core;
use crate::driver_links::DriverLinks;
use crate::leadership::LeaderState;
use crate::metrics;
use engine::{Action, Engine, EngineConfig, Loaded, SessionRoute};
use kindling_backend::{BackendEvent, Backends};
use kindling_events::{Cluster, Command, LogPosition, Origin, Term};
use kindling_store::EventLog;
use lanes::{Lanes, Reply};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often sessions are checked and failed lookups retried.
const TICK: Duration = Duration::from_millis(500);

pub struct SchedulerConfig {
    /// The driver gateways a session driver may connect to, `host:port,...`, as of now.
    pub driver_endpoints: Arc<dyn Fn() -> String + Send + Sync>,
    pub heartbeat_timeout: Duration,
    pub recovery_grace: Duration,
    /// Key from which session secrets derive, so a re-issued launch can recreate its secret.
    pub secret_key: Vec<u8>,
    /// Whether the driver gateways serve TLS, and what drivers trust then.
    pub gateway_tls: Option<kindling_backend::GatewayTls>,
}

pub struct Scheduler {
    core: Arc<Core>,
    log: Arc<dyn EventLog>,
    links: Arc<dyn DriverLinks>,
    backends: Arc<Backends>,
    driver_endpoints: Arc<dyn Fn() -> String + Send + Sync>,
    events: mpsc::UnboundedReceiver<BackendEvent>,
    lanes: Lanes,
    replies: mpsc::UnboundedReceiver<lanes::Tagged>,
    engine: Engine,
    term: Term,
    /// The next log position the engine has not been handed.
    next: LogPosition,
    /// The clusters whose load this node reported as leader, to zero when it steps down.
    reported: BTreeSet<String>,
}

impl Scheduler {
    /// A scheduler that follows `log`, launches on `backends`, reaches session drivers through
    /// `links` and hears from the backends on `events`. `builtin` is the node's own cluster.
    pub fn new(
        core: Arc<Core>,
        log: Arc<dyn EventLog>,
        builtin: Cluster,
        backends: Arc<Backends>,
        links: Arc<dyn DriverLinks>,
        cfg: SchedulerConfig,
        events: mpsc::UnboundedReceiver<BackendEvent>,
    ) -> Self {
        let (replies_tx, replies) = mpsc::unbounded_channel();
        Scheduler {
            core,
            log,
            links,
            lanes: Lanes::new(backends.clone(), replies_tx),
            backends,
            driver_endpoints: cfg.driver_endpoints,
            events,
            replies,
            engine: Engine::new(EngineConfig {
                builtin,
                heartbeat_timeout: cfg.heartbeat_timeout,
                recovery_grace: cfg.recovery_grace,
                secret_key: cfg.secret_key,
                gateway_tls: cfg.gateway_tls,
            }),
            term: Term(0),
            next: LogPosition(0),
            reported: BTreeSet::new(),
        }
    }

    pub async fn run(
        mut self,
        mut leadership: watch::Receiver<LeaderState>,
        shutdown: CancellationToken,
    ) {
        loop {
            let st = *leadership.borrow_and_update();
            if st.is_leader {
                self.term = st.term;
                let started = Instant::now();
                match self.core.take_over(st.term).await {
                    Ok(barrier) => {
                        tracing::info!(
                            term = st.term.0,
                            barrier = barrier.0,
                            "scheduling as leader"
                        );
                        metrics::takeover(started.elapsed());
                        self.lead(&mut leadership, &shutdown).await;
                    }
                    Err(e) => {
                        tracing::warn!(term = st.term.0, error = %e, "cannot take over as leader")
                    }
                }
                self.lanes.clear();
                self.core.step_down();
                self.links.release_all();
                // Only the leader schedules: a follower's load is nothing, not its last.
                for cluster in std::mem::take(&mut self.reported) {
                    metrics::cluster_load(&cluster, 0, 0, None);
                }
                if shutdown.is_cancelled() {
                    return;
                }
                let now = *leadership.borrow();
                if now.is_leader && now.term == st.term {
                    // Still the leader: the barrier failed on a storage error; try again
                    // shortly rather than waiting for the next election.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
                }
                if now.is_leader {
                    // Elected again, in a newer term, while leading: `lead` saw the change
                    // and returned; no further change may come to wait for.
                    continue;
                }
            }
            tokio::select! {
                r = leadership.changed() => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn lead(
        &mut self,
        leadership: &mut watch::Receiver<LeaderState>,
        shutdown: &CancellationToken,
    ) {
        self.next = self.log.end();
        self.links.resume_routes().await;
        // Recovery rebuilds the queue and finds the running drivers; a leader that went on
        // without it would leave every job queued before the election waiting (the hour-long
        // chaos run saw a thousand batches stay not_started after such failures). It is
        // retried until it succeeds or this node stops leading.
        loop {
            match self.recover().await {
                Ok(actions) => {
                    self.execute(actions).await;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "recovery after election failed; retrying");
                    if *self.core.leading().borrow() != Some(self.term) {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
        let generation = self.lanes.generation();
        let mut end = self.log.subscribe();
        let mut leading = self.core.leading();
        if *leading.borrow_and_update() != Some(self.term) {
            return;
        }
        let mut tick = tokio::time::interval(TICK);
        loop {
            self.follow_log().await;
            let round = self.engine.plan_round(self.core.clock.now_ms());
            self.execute(round).await;
            tokio::select! {
                _ = end.changed() => {}
                Some(ev) = self.events.recv() => {
                    let actions = self.engine.on_backend_event(ev);
                    self.execute(actions).await;
                }
                Some((g, reply)) = self.replies.recv() => {
                    if g == generation {
                        self.on_reply(reply).await;
                    }
                }
                _ = tick.tick() => {
                    let actions = self.engine.on_tick(now(), self.core.clock.now_ms());
                    self.execute(actions).await;
                }
                // A newer leader fenced this node's writer (or an append failed in doubt)
                // before Raft told it: take over again or stand down.
                r = leading.changed() => {
                    if r.is_err() || *leading.borrow() != Some(self.term) { return; }
                }
                r = leadership.changed() => {
                    let now = *leadership.borrow();
                    if r.is_err() || !now.is_leader || now.term != self.term { return; }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Reads what a take-over settles: every active job (behind one read barrier) and the
    /// registry; the engine decides what becomes of them.
    async fn recover(&mut self) -> crate::error::Result<Vec<Action>> {
        let jobs = self.core.active_jobs().await?;
        // The projections reflect the log up to `next` now (and maybe beyond: folding an
        // event twice is a no-op).
        let registry = self.core.reads().registry().await?;
        Ok(self.engine.start(self.term, jobs, registry))
    }

    /// Hands the engine the events appended since the last look, in log order.
    async fn follow_log(&mut self) {
        loop {
            let batch = match self.log.read(self.next, 1024).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read the log");
                    return;
                }
            };
            let Some(last) = batch.last() else { return };
            self.next = last.position.next();
            for env in batch {
                let actions = self.engine.on_log(&env);
                self.execute(actions).await;
            }
        }
    }

    async fn on_reply(&mut self, reply: Reply) {
        let actions = match reply {
            Reply::Launched {
                job,
                attempt,
                result,
            } => self.engine.on_launched(job, attempt, result, now()),
            Reply::Found {
                job,
                attempt,
                result,
            } => self.engine.on_found(job, attempt, result, now()),
        };
        self.execute(actions).await;
    }

    /// Carries out `actions` in order; what an action brings back goes to the engine, and
    /// the actions it returns run before the rest.
    async fn execute(&mut self, actions: Vec<Action>) {
        let mut todo: VecDeque<Action> = actions.into();
        while let Some(action) = todo.pop_front() {
            let next = self.carry_out(action).await;
            for a in next.into_iter().rev() {
                todo.push_front(a);
            }
        }
    }

    async fn carry_out(&mut self, action: Action) -> Vec<Action> {
        let origin = Origin::Scheduler { term: self.term };
        match action {
            Action::Command { job, cmd } => {
                if let Err(e) = self.core.execute(job, origin, cmd).await {
                    tracing::warn!(job = job.0, error = %e, "scheduler command refused");
                }
                vec![]
            }
            Action::Schedule {
                job,
                driver_name,
                secret_digest,
            } => {
                let cmd = Command::Schedule {
                    driver_name,
                    secret_digest,
                };
                let scheduled = self.core.execute(job, origin, cmd).await.map(|(j, _)| j);
                if let Ok(j) = &scheduled {
                    let waited = self.waited_ms(j.submitted_at_ms);
                    metrics::queue_wait(j.spec.cluster(), waited);
                }
                self.engine.on_scheduled(job, scheduled)
            }
            Action::Load { job, need } => {
                let loaded = self.core.job(job).await.map(|j| Loaded {
                    last_seen: self.links.last_seen(job, j.attempt),
                    job: j,
                });
                self.engine.on_loaded(job, need, loaded)
            }
            Action::ConfirmLeadership(confirm) => {
                let confirmed = self.core.confirm_leading().await.is_ok();
                self.engine.on_confirmed(confirm, confirmed)
            }
            Action::OpenRoute { job, cluster } => {
                let route = self
                    .links
                    .open_route(job.id, job.attempt)
                    .await
                    .map(|kafka| SessionRoute {
                        endpoints: (self.driver_endpoints)(),
                        kafka,
                    });
                self.engine.on_route_opened(job, cluster, route)
            }
            Action::Lane { cluster, op } => {
                self.lanes.send(&cluster, op);
                vec![]
            }
            Action::ShutdownLink { job, reason } => {
                self.links.shutdown(job, reason).await;
                vec![]
            }
            Action::ForgetCluster { name } => {
                self.reported.remove(&name);
                metrics::cluster_load(&name, 0, 0, None);
                self.lanes.close(&name);
                self.backends.forget(&name);
                vec![]
            }
            Action::ClusterLoad {
                cluster,
                drivers,
                waiting,
                oldest_submitted_ms,
            } => {
                let capacity = self.engine.cluster(&cluster).map(|c| c.config.capacity);
                if self.reported.insert(cluster.clone()) {
                    metrics::cluster_counters(&cluster);
                }
                let oldest_wait = oldest_submitted_ms.map(|at| self.waited_ms(at));
                metrics::cluster_load(&cluster, drivers, waiting, oldest_wait);
                metrics::cluster_capacity(&cluster, capacity.and_then(|c| c.max_drivers));
                vec![]
            }
            Action::CountLaunch { cluster, ok } => {
                metrics::launch(&cluster, ok);
                vec![]
            }
            Action::CountLostDriver { cluster } => {
                metrics::driver_lost(&cluster);
                vec![]
            }
            Action::CountRetry { cluster } => {
                metrics::retry(&cluster);
                vec![]
            }
        }
    }
}

impl Scheduler {
    /// How long ago `at_ms` (wall clock) was, never negative.
    fn waited_ms(&self, at_ms: i64) -> u64 {
        u64::try_from(self.core.clock.now_ms().saturating_sub(at_ms)).unwrap_or(0)
    }
}

/// The engine's clock: tokio's, so a paused test clock moves it too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}
