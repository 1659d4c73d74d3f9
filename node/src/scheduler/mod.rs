//! The scheduler runtime: on the leader only, it follows the event log, keeps the queue and
//! the cluster registry, asks the pure `plan` what to launch under each cluster's capacity,
//! launches on the job's cluster ([`launch`]), and turns what the backends report into
//! events. It also enforces session lifetimes ([`sessions`]).
//!
//! Backend calls run on one lane per cluster ([`lanes`]) and come back as messages: the loop
//! never waits on a backend, so a slow or unreachable cluster holds up none of the others.
//! A job whose cluster is full waits with its reason recorded (`JobQueued`, when the reason
//! changes); a job that can never run (its cluster was removed, or it needs more than the
//! cluster has) ends in error with that reason.
//!
//! On taking over (node start or election) it catches up with the log, then settles every
//! job that was active ([`recovery`]): drivers still running are watched again, drivers that
//! ended while no one watched are recorded as ended, and launches that provably did not
//! happen are re-issued.

mod lanes;
mod launch;
mod recovery;
mod sessions;

use crate::backend::BackendEvent;
use crate::clusters::backends::Backends;
use crate::core::Core;
use crate::gateway::Gateway;
use crate::metrics;
use kindling_events::plan::Demand;
use kindling_events::spec::JobSpec;
use kindling_events::{
    Attempt, Cluster, Command, Event, Job, JobId, LeaderFence, LogPosition, Origin, Outcome,
    Registry, Term, DEFAULT_CLUSTER,
};
use kindling_raft::LeaderState;
use lanes::{Lanes, Op, Reply};
use sessions::{ended_outcome, with_cause};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a driver that could not be looked up waits before it is looked up again.
const FIND_RETRY: Duration = Duration::from_secs(5);

pub struct SchedulerConfig {
    /// The driver gateways a session driver may connect to, `host:port,...`, as of now.
    pub driver_endpoints: Arc<dyn Fn() -> String + Send + Sync>,
    pub heartbeat_timeout: Duration,
    pub recovery_grace: Duration,
    /// Key from which session secrets derive, so a re-issued launch can recreate its secret.
    pub secret_key: Vec<u8>,
}

/// Where a driver the scheduler counts as running stands with its backend.
enum Phase {
    /// The launch is under way; what the backend reports meanwhile waits for its answer.
    Launching { early: Vec<BackendEvent> },
    /// Being looked up after a take-over or a change of its cluster; looked up again at
    /// `retry_at` if the lookup failed.
    Finding { retry_at: Option<Instant> },
    /// Launched or found: the backend watches it and reports its end.
    Watched,
}

struct Running {
    attempt: Attempt,
    owner: Option<String>,
    cluster: String,
    demand: Demand,
    driver_name: String,
    phase: Phase,
    killing: bool,
    /// Set when the scheduler itself stops the driver: the reason it is dead.
    doomed: Option<String>,
    /// How long a session's driver has been away, for the reconnect grace.
    disconnected: sessions::Disconnected,
}

pub struct Scheduler {
    core: Arc<Core>,
    gateway: Arc<Gateway>,
    cfg: SchedulerConfig,
    /// The node's built-in cluster (not in the log).
    builtin: Cluster,
    backends: Arc<Backends>,
    events: mpsc::UnboundedReceiver<BackendEvent>,
    lanes: Lanes,
    replies: mpsc::UnboundedReceiver<lanes::Tagged>,
    term: Term,
    /// The registry as of `next`: loaded on taking over, then folded from the log.
    registry: Registry,
    queued: BTreeMap<JobId, JobSpec>,
    running: BTreeMap<JobId, Running>,
    /// The wait reason last recorded for each queued job, so it is recorded once.
    shown: BTreeMap<JobId, String>,
    next: LogPosition,
    /// The leader fence over what `follow_log` read: a deposed leader's late write (a kill,
    /// a registry change) is no event to react to.
    fence: LeaderFence,
}

impl Scheduler {
    pub fn new(
        core: Arc<Core>,
        builtin: Cluster,
        backends: Arc<Backends>,
        gateway: Arc<Gateway>,
        cfg: SchedulerConfig,
        events: mpsc::UnboundedReceiver<BackendEvent>,
    ) -> Self {
        let (replies_tx, replies) = mpsc::unbounded_channel();
        Scheduler {
            core,
            gateway,
            cfg,
            builtin,
            lanes: Lanes::new(backends.clone(), replies_tx),
            backends,
            events,
            replies,
            term: Term(0),
            registry: Registry::default(),
            queued: BTreeMap::new(),
            running: BTreeMap::new(),
            shown: BTreeMap::new(),
            next: LogPosition(0),
            fence: LeaderFence::default(),
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
                self.gateway.release_all();
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

    fn origin(&self) -> Origin {
        Origin::Scheduler { term: self.term }
    }

    async fn lead(
        &mut self,
        leadership: &mut watch::Receiver<LeaderState>,
        shutdown: &CancellationToken,
    ) {
        self.next = self.core.log.end();
        self.fence = LeaderFence::new(self.term);
        self.gateway.resume_routes().await;
        // Recovery rebuilds the queue and finds the running drivers; a leader that went on
        // without it would leave every job queued before the election waiting (the hour-long
        // chaos run saw a thousand batches stay not_started after such failures). It is
        // retried until it succeeds or this node stops leading.
        loop {
            self.queued.clear();
            self.running.clear();
            self.shown.clear();
            match self.recover().await {
                Ok(()) => break,
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
        let mut end = self.core.log.subscribe();
        let mut leading = self.core.leading();
        if *leading.borrow_and_update() != Some(self.term) {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            self.follow_log().await;
            self.launch_planned().await;
            tokio::select! {
                _ = end.changed() => {}
                Some(ev) = self.events.recv() => self.on_backend_event(ev).await,
                Some((g, reply)) = self.replies.recv() => {
                    if g == generation {
                        self.on_reply(reply).await;
                    }
                }
                _ = tick.tick() => {
                    self.check_sessions().await;
                    self.retry_finds();
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

    /// The cluster called `name`, as of the log position the scheduler has reached.
    fn cluster(&self, name: &str) -> Option<Cluster> {
        if name == DEFAULT_CLUSTER {
            return Some(self.builtin.clone());
        }
        self.registry.get(name).cloned()
    }

    /// Reacts to events appended since the last look: new jobs, kills, ends, registry changes.
    async fn follow_log(&mut self) {
        loop {
            let batch = match self.core.log.read(self.next, 1024).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read the log");
                    return;
                }
            };
            let Some(last) = batch.last() else { return };
            self.next = last.position.next();
            for env in batch {
                if !self.fence.admit(&env) {
                    continue;
                }
                if env.aggregate == kindling_events::Aggregate::Registry {
                    if self.registry.apply(&env) == kindling_events::job::Applied::Yes {
                        self.on_registry_change(&env.event);
                    }
                    continue;
                }
                let Some(id) = env.job() else { continue };
                match &env.event {
                    Event::JobSubmitted { spec } => {
                        self.queued.insert(id, spec.clone());
                    }
                    Event::KillRequested { .. } => {
                        self.queued.remove(&id);
                        self.shown.remove(&id);
                        if self.running.contains_key(&id) {
                            self.kill(id).await;
                        }
                    }
                    Event::JobFinished { .. } => {
                        self.queued.remove(&id);
                        self.shown.remove(&id);
                        if let Some(r) = self.running.get(&id) {
                            if let Ok(j) = self.core.job(id).await {
                                if j.attempt == r.attempt && j.state.is_terminal() {
                                    // Ended by a decision, not by the process: stop it too.
                                    let (cluster, driver_name) =
                                        (r.cluster.clone(), r.driver_name.clone());
                                    self.running.remove(&id);
                                    if let Some(c) = self.cluster(&cluster) {
                                        self.lanes.send(
                                            &c,
                                            Op::Kill {
                                                job: id,
                                                driver_name,
                                            },
                                        );
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    async fn on_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Launched {
                job,
                attempt,
                result,
            } => self.on_launched(job, attempt, result).await,
            Reply::Found {
                job,
                attempt,
                result,
            } => self.on_found(job, attempt, result).await,
        }
    }

    async fn kill(&mut self, id: JobId) {
        let Some(r) = self.running.get_mut(&id) else {
            return;
        };
        if r.killing {
            return;
        }
        r.killing = true;
        let (cluster, driver_name) = (r.cluster.clone(), r.driver_name.clone());
        self.gateway.shutdown(id, "the session was stopped").await;
        if let Some(c) = self.cluster(&cluster) {
            self.lanes.send(
                &c,
                Op::Kill {
                    job: id,
                    driver_name,
                },
            );
        }
    }

    /// Kills a driver the scheduler gave up on, recording why.
    async fn doom(&mut self, id: JobId, reason: String) {
        if let Some(r) = self.running.get_mut(&id) {
            if r.doomed.is_none() {
                tracing::warn!(job = id.0, %reason, "stopping driver");
                r.doomed = Some(reason);
            }
        }
        self.kill(id).await;
    }

    async fn on_backend_event(&mut self, ev: BackendEvent) {
        let job = match &ev {
            BackendEvent::AppIdentified { job, .. } | BackendEvent::Exited { job, .. } => *job,
        };
        if let Some(Running {
            phase: Phase::Launching { early },
            ..
        }) = self.running.get_mut(&job)
        {
            // The launch's answer comes first: it records the driver this is about.
            early.push(ev);
            return;
        }
        match ev {
            BackendEvent::AppIdentified {
                job,
                attempt,
                app_id,
                spark_ui_url,
            } => {
                self.exec(
                    job,
                    Command::AppIdentified {
                        attempt,
                        app_id,
                        spark_ui_url,
                    },
                )
                .await;
            }
            BackendEvent::Exited {
                job,
                attempt,
                exit_code,
                reason: cause,
            } => {
                let doomed = match self.running.get(&job) {
                    Some(r) if r.attempt == attempt => {
                        let d = r.doomed.clone();
                        self.running.remove(&job);
                        d
                    }
                    _ => None,
                };
                self.gateway.shutdown(job, "the driver exited").await;
                let Ok(j) = self.core.job(job).await else {
                    return;
                };
                let outcome = match doomed {
                    Some(reason) if !j.kill_requested => Outcome::Failed { reason },
                    _ => with_cause(ended_outcome(&j, exit_code, None), cause),
                };
                self.exec(
                    job,
                    Command::Finish {
                        attempt,
                        outcome,
                        exit_code,
                    },
                )
                .await;
            }
        }
    }

    async fn finish(&self, id: JobId, attempt: Attempt, outcome: Outcome) {
        self.exec(
            id,
            Command::Finish {
                attempt,
                outcome,
                exit_code: None,
            },
        )
        .await;
    }

    async fn exec(&self, id: JobId, cmd: Command) {
        if let Err(e) = self.core.execute(id, self.origin(), cmd).await {
            tracing::warn!(job = id.0, error = %e, "scheduler command refused");
        }
    }
}

impl Running {
    fn new(job: &Job, cluster: &Cluster, driver_name: String, phase: Phase) -> Self {
        Running {
            attempt: job.attempt,
            owner: job.spec.owner.clone(),
            cluster: cluster.name.clone(),
            demand: Demand::of(&job.spec, &cluster.config.spark_conf),
            driver_name,
            phase,
            killing: false,
            doomed: None,
            disconnected: Default::default(),
        }
    }
}
