//! The scheduler runtime: on the leader only, it follows the event log, keeps the queue and
//! the cluster registry, asks the pure `plan` what to launch under each cluster's capacity,
//! launches on the job's cluster, and turns what the backends report into events. It also
//! enforces session lifetimes ([`sessions`]).
//!
//! Backend calls run on one lane per cluster ([`lanes`]) and come back as messages: the loop
//! never waits on a backend, so a slow or unreachable cluster holds up none of the others.
//! A job whose cluster is full waits with its reason recorded (`JobQueued`, when the reason
//! changes); a job that can never run (its cluster was removed, or it needs more than the
//! cluster has) ends in error with that reason.
//!
//! On taking over (node start or election) it catches up with the log, then settles every
//! job that was active: drivers still running are watched again, drivers that ended while no
//! one watched are recorded as ended, and launches that provably did not happen are re-issued.

mod lanes;
mod sessions;

use crate::backend::{driver_name, BackendEvent, Found, LaunchSpec, SessionLink};
use crate::clusters::backends::Backends;
use crate::core::Core;
use crate::gateway::{secret_digest, Gateway};
use crate::metrics;
use kindling_events::plan::{plan, Demand, QueuedJob, RunningJob, Snapshot};
use kindling_events::spec::JobSpec;
use kindling_events::{
    Attempt, Cluster, Command, Event, Job, JobId, JobState, LogPosition, Origin, Outcome, Registry,
    Term, DEFAULT_CLUSTER,
};
use kindling_raft::LeaderState;
use lanes::{Lanes, Op, Reply};
use sessions::ended_outcome;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
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
    recovering_since: Option<Instant>,
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
    running: HashMap<JobId, Running>,
    /// The wait reason last recorded for each queued job, so it is recorded once.
    shown: HashMap<JobId, String>,
    next: LogPosition,
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
            running: HashMap::new(),
            shown: HashMap::new(),
            next: LogPosition(0),
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
                if leadership.borrow().is_leader && leadership.borrow().term == st.term {
                    // Still the leader: the barrier failed on a storage error; try again
                    // shortly rather than waiting for the next election.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.cancelled() => return,
                    }
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
        self.queued.clear();
        self.running.clear();
        self.shown.clear();
        self.next = self.core.log.end();
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "recovery after election failed");
        }
        let generation = self.lanes.generation();
        let mut end = self.core.log.subscribe();
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

    /// Settles every job that was active when this scheduler took over.
    async fn recover(&mut self) -> crate::error::Result<()> {
        let jobs = self.core.active_jobs().await?;
        // The projections reflect the log up to `next` now (and maybe beyond: folding an
        // event twice is a no-op).
        self.registry = self.core.projections.registry().await?;
        for job in jobs {
            if job.state == JobState::NotStarted {
                if !job.kill_requested {
                    self.queued.insert(job.id, job.spec.clone());
                }
                continue;
            }
            let Some(name) = job.driver_name.clone() else {
                continue;
            };
            let Some(cluster) = self.cluster(job.spec.cluster()) else {
                let reason = format!(
                    "the driver's cluster '{}' no longer exists; it cannot be found or stopped",
                    job.spec.cluster()
                );
                self.finish(job.id, job.attempt, Outcome::Error { reason })
                    .await;
                continue;
            };
            self.running.insert(
                job.id,
                Running::new(
                    &job,
                    &cluster,
                    name.clone(),
                    Phase::Finding { retry_at: None },
                ),
            );
            self.lanes.send(
                &cluster,
                Op::Find {
                    job: job.id,
                    attempt: job.attempt,
                    driver_name: name,
                },
            );
        }
        Ok(())
    }

    /// What a lookup found, for a job being recovered (or whose cluster changed).
    async fn on_found(&mut self, id: JobId, attempt: Attempt, found: Result<Found, String>) {
        match self.running.get(&id) {
            Some(r) if r.attempt == attempt && matches!(r.phase, Phase::Finding { .. }) => {}
            _ => return,
        }
        let Ok(job) = self.core.job(id).await else {
            return;
        };
        match found {
            Ok(Found::Running { driver_id }) => {
                tracing::info!(job = id.0, "driver still runs; watching it again");
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Watched;
                }
                self.exec(id, Command::DriverLaunched { attempt, driver_id })
                    .await;
                if job.kill_requested || job.state.is_terminal() {
                    self.kill(id).await;
                } else if job.is_session()
                    && matches!(job.state, JobState::Idle | JobState::Busy)
                    && self.gateway.last_seen(id, attempt).is_none()
                {
                    self.exec(
                        id,
                        Command::SessionRecovering {
                            attempt,
                            reason: "the node restarted; waiting for the driver to reconnect"
                                .into(),
                        },
                    )
                    .await;
                }
            }
            Ok(Found::Ended { exit_code }) => {
                self.running.remove(&id);
                let outcome = ended_outcome(&job, exit_code, Some("while no node was watching it"));
                self.exec(
                    id,
                    Command::Finish {
                        attempt,
                        outcome,
                        exit_code,
                    },
                )
                .await;
            }
            Ok(Found::Never) => {
                // The launch provably did not happen: issue it again, same attempt.
                tracing::info!(job = id.0, "re-issuing a launch that never happened");
                self.running.remove(&id);
                if job.state.is_terminal() || job.kill_requested {
                    return;
                }
                self.start_driver(&job).await;
            }
            Err(e) => {
                tracing::warn!(job = id.0, error = %e, "cannot look for the driver; trying again");
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Finding {
                        retry_at: Some(Instant::now() + FIND_RETRY),
                    };
                }
            }
        }
    }

    /// Looks up again the drivers whose lookup failed a while ago.
    fn retry_finds(&mut self) {
        let now = Instant::now();
        let due: Vec<(JobId, Attempt, String, String)> = self
            .running
            .iter_mut()
            .filter_map(|(id, r)| match &mut r.phase {
                Phase::Finding { retry_at } if retry_at.is_some_and(|t| t <= now) => {
                    *retry_at = None;
                    Some((*id, r.attempt, r.cluster.clone(), r.driver_name.clone()))
                }
                _ => None,
            })
            .collect();
        for (job, attempt, cluster, driver_name) in due {
            if let Some(c) = self.cluster(&cluster) {
                let op = Op::Find {
                    job,
                    attempt,
                    driver_name,
                };
                self.lanes.send(&c, op);
            }
        }
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

    /// A cluster changed: its next call builds a backend for the new configuration, and the
    /// drivers it runs are looked up there, so the new backend watches them.
    fn on_registry_change(&mut self, event: &Event) {
        match event {
            Event::ClusterUpdated { name, .. } => {
                let Some(cluster) = self.cluster(name) else {
                    return;
                };
                let mine: Vec<JobId> = self
                    .running
                    .iter()
                    .filter(|(_, r)| r.cluster == *name && matches!(r.phase, Phase::Watched))
                    .map(|(id, _)| *id)
                    .collect();
                tracing::info!(cluster = %name, drivers = mine.len(), "cluster updated; watching its drivers with the new configuration");
                for id in mine {
                    let Some(r) = self.running.get_mut(&id) else {
                        continue;
                    };
                    r.phase = Phase::Finding { retry_at: None };
                    let op = Op::Find {
                        job: id,
                        attempt: r.attempt,
                        driver_name: r.driver_name.clone(),
                    };
                    self.lanes.send(&cluster, op);
                }
            }
            Event::ClusterRemoved { name } => {
                tracing::info!(cluster = %name, "cluster removed");
                self.lanes.close(name);
                self.backends.forget(name);
            }
            _ => {}
        }
    }

    async fn launch_planned(&mut self) {
        let mut clusters = BTreeMap::new();
        clusters.insert(self.builtin.name.clone(), self.builtin.config.capacity);
        for (name, c) in &self.registry.clusters {
            clusters.insert(name.clone(), c.config.capacity);
        }
        let demand = |spec: &JobSpec| {
            let conf = match spec.cluster() {
                DEFAULT_CLUSTER => &self.builtin.config.spark_conf,
                name => match self.registry.get(name) {
                    Some(c) => &c.config.spark_conf,
                    None => &self.builtin.config.spark_conf,
                },
            };
            Demand::of(spec, conf)
        };
        let snapshot = Snapshot {
            queued: self
                .queued
                .iter()
                .map(|(id, spec)| QueuedJob {
                    id: *id,
                    owner: spec.owner.clone(),
                    cluster: spec.cluster().to_string(),
                    demand: demand(spec),
                })
                .collect(),
            running: self
                .running
                .values()
                .map(|r| RunningJob {
                    owner: r.owner.clone(),
                    cluster: r.cluster.clone(),
                    demand: r.demand,
                })
                .collect(),
            clusters,
            max_per_owner: None,
        };
        let decided = plan(&snapshot);
        for (id, refusal) in decided.refused {
            self.queued.remove(&id);
            self.shown.remove(&id);
            tracing::warn!(job = id.0, reason = %refusal, "job cannot run");
            let reason = refusal.to_string();
            self.finish(id, Attempt(0), Outcome::Error { reason }).await;
        }
        for (id, reason) in decided.waiting {
            let reason = reason.to_string();
            if self.shown.get(&id) == Some(&reason) {
                continue;
            }
            self.exec(
                id,
                Command::Queue {
                    reason: reason.clone(),
                },
            )
            .await;
            self.shown.insert(id, reason);
        }
        for launch in decided.launches {
            self.queued.remove(&launch.job);
            self.shown.remove(&launch.job);
            let job = match self.core.job(launch.job).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(job = launch.job.0, error = %e, "queued job vanished");
                    continue;
                }
            };
            if job.state != JobState::NotStarted || job.kill_requested {
                continue;
            }
            let name = driver_name(job.id, job.attempt.next());
            let digest = if job.is_session() {
                secret_digest(&self.secret(&name))
            } else {
                String::new()
            };
            let scheduled = self
                .core
                .execute(
                    job.id,
                    self.origin(),
                    Command::Schedule {
                        driver_name: name,
                        secret_digest: digest,
                    },
                )
                .await;
            match scheduled {
                Ok((job, _)) => self.start_driver(&job).await,
                Err(e) => tracing::warn!(job = job.id.0, error = %e, "cannot schedule"),
            }
        }
    }

    fn secret(&self, driver_name: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.cfg.secret_key);
        h.update(driver_name.as_bytes());
        hex::encode(h.finalize())
    }

    /// Asks the job's cluster to launch the driver of its current attempt; the answer comes
    /// back as a reply.
    async fn start_driver(&mut self, job: &Job) {
        let Some(name) = job.driver_name.clone() else {
            return;
        };
        let Some(cluster) = self.cluster(job.spec.cluster()) else {
            let reason = format!(
                "cluster '{}' does not exist (it was deleted after the job was submitted)",
                job.spec.cluster()
            );
            self.finish(job.id, job.attempt, Outcome::Error { reason })
                .await;
            return;
        };
        let session = job.is_session().then(|| SessionLink {
            endpoints: (self.cfg.driver_endpoints)(),
            secret: self.secret(&name),
        });
        let phase = Phase::Launching { early: vec![] };
        self.running
            .insert(job.id, Running::new(job, &cluster, name.clone(), phase));
        let spec = LaunchSpec {
            job: job.id,
            attempt: job.attempt,
            driver_name: name,
            spec: job.spec.clone(),
            session,
        };
        self.lanes.send(&cluster, Op::Launch(Box::new(spec)));
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

    async fn on_launched(
        &mut self,
        id: JobId,
        attempt: Attempt,
        result: Result<String, lanes::LaunchError>,
    ) {
        let early = match self.running.get_mut(&id) {
            Some(r) if r.attempt == attempt => match &mut r.phase {
                Phase::Launching { early } => std::mem::take(early),
                _ => return,
            },
            _ => return,
        };
        metrics::launch(result.is_ok());
        match result {
            Ok(driver_id) => {
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Watched;
                }
                self.exec(id, Command::DriverLaunched { attempt, driver_id })
                    .await;
                // What the backend reported while the launch was being answered.
                for ev in early {
                    self.on_backend_event(ev).await;
                }
            }
            Err(e) => {
                let cluster = self.running.remove(&id).map(|r| (r.cluster, r.driver_name));
                tracing::warn!(job = id.0, error = %e.cause, certain = e.certain, "launch failed");
                let reason = format!("the driver could not be launched: {}", e.cause);
                self.finish(id, attempt, Outcome::Error { reason }).await;
                if !e.certain {
                    // It may have started anyway: make sure nothing of it keeps running.
                    if let Some((c, driver_name)) = cluster {
                        if let Some(c) = self.cluster(&c) {
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
                    _ => ended_outcome(&j, exit_code, None),
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
            recovering_since: None,
        }
    }
}
