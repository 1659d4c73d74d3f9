//! The scheduler runtime: on the leader only, it follows the event log, keeps the queue,
//! asks the pure `plan` what to launch, launches through the backend, and turns what the
//! backend reports into events. It also enforces session lifetimes: driver heartbeats, the
//! reconnect grace after a restart, Livy's `ttl` and `idleTimeout`.
//!
//! On taking over (node start or election) it catches up with the log, then settles every
//! job that was active: drivers still running are watched again, drivers that ended while no
//! one watched are recorded as ended, and launches that provably did not happen are re-issued.

use crate::backend::{driver_name, BackendEvent, ClusterBackend, Found, LaunchSpec, SessionLink};
use crate::core::Core;
use crate::gateway::{secret_digest, Gateway};
use crate::metrics;
use kindling_events::plan::{plan, QueuedJob, RunningJob, Snapshot};
use kindling_events::{
    Attempt, Command, Event, Job, JobId, JobState, LogPosition, Origin, Outcome, Term,
};
use kindling_raft::LeaderState;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub struct SchedulerConfig {
    pub max_drivers: usize,
    /// The driver gateways a session driver may connect to, `host:port,...`, as of now.
    pub driver_endpoints: Arc<dyn Fn() -> String + Send + Sync>,
    pub heartbeat_timeout: Duration,
    pub recovery_grace: Duration,
    /// Key from which session secrets derive, so a re-issued launch can recreate its secret.
    pub secret_key: Vec<u8>,
}

struct Running {
    attempt: Attempt,
    owner: Option<String>,
    driver_name: String,
    killing: bool,
    /// Set when the scheduler itself stops the driver: the reason it is dead.
    doomed: Option<String>,
    recovering_since: Option<Instant>,
}

impl Running {
    fn new(job: &Job, driver_name: String) -> Self {
        Running {
            attempt: job.attempt,
            owner: job.spec.owner.clone(),
            driver_name,
            killing: false,
            doomed: None,
            recovering_since: None,
        }
    }
}

pub struct Scheduler {
    core: Arc<Core>,
    backend: Arc<dyn ClusterBackend>,
    gateway: Arc<Gateway>,
    cfg: SchedulerConfig,
    events: mpsc::UnboundedReceiver<BackendEvent>,
    term: Term,
    queued: BTreeMap<JobId, Option<String>>,
    running: HashMap<JobId, Running>,
    next: LogPosition,
}

impl Scheduler {
    pub fn new(
        core: Arc<Core>,
        backend: Arc<dyn ClusterBackend>,
        gateway: Arc<Gateway>,
        cfg: SchedulerConfig,
        events: mpsc::UnboundedReceiver<BackendEvent>,
    ) -> Self {
        Scheduler {
            core,
            backend,
            gateway,
            cfg,
            events,
            term: Term(0),
            queued: BTreeMap::new(),
            running: HashMap::new(),
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
        self.next = self.core.log.end();
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "recovery after election failed");
        }
        let mut end = self.core.log.subscribe();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            self.follow_log().await;
            self.launch_planned().await;
            tokio::select! {
                _ = end.changed() => {}
                Some(ev) = self.events.recv() => self.on_backend_event(ev).await,
                _ = tick.tick() => self.check_sessions().await,
                r = leadership.changed() => {
                    let now = *leadership.borrow();
                    if r.is_err() || !now.is_leader || now.term != self.term { return; }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Settles every job that was active when this scheduler took over.
    async fn recover(&mut self) -> crate::error::Result<()> {
        for job in self.core.active_jobs().await? {
            if job.state == JobState::NotStarted {
                if !job.kill_requested {
                    self.queued.insert(job.id, job.spec.owner.clone());
                }
                continue;
            }
            let Some(name) = job.driver_name.clone() else {
                continue;
            };
            let found = self.backend.find(job.id, job.attempt, &name).await;
            match found {
                Ok(Found::Running { driver_id }) => {
                    tracing::info!(job = job.id.0, driver = %name, "driver still runs; watching it again");
                    self.exec(
                        job.id,
                        Command::DriverLaunched {
                            attempt: job.attempt,
                            driver_id,
                        },
                    )
                    .await;
                    self.running
                        .insert(job.id, Running::new(&job, name.clone()));
                    if job.kill_requested {
                        self.kill(job.id).await;
                    } else if job.is_session()
                        && matches!(job.state, JobState::Idle | JobState::Busy)
                        && self.gateway.last_seen(job.id, job.attempt).is_none()
                    {
                        self.exec(
                            job.id,
                            Command::SessionRecovering {
                                attempt: job.attempt,
                                reason: "the node restarted; waiting for the driver to reconnect"
                                    .into(),
                            },
                        )
                        .await;
                    }
                }
                Ok(Found::Ended { exit_code }) => {
                    let outcome =
                        ended_outcome(&job, exit_code, Some("while no node was watching it"));
                    self.exec(
                        job.id,
                        Command::Finish {
                            attempt: job.attempt,
                            outcome,
                            exit_code,
                        },
                    )
                    .await;
                }
                Ok(Found::Never) => {
                    // The launch provably did not happen: issue it again, same attempt.
                    tracing::info!(job = job.id.0, "re-issuing a launch that never happened");
                    self.start_driver(&job).await;
                }
                Err(e) => tracing::warn!(job = job.id.0, error = %e, "cannot look for the driver"),
            }
        }
        Ok(())
    }

    /// Reacts to events appended since the last look: new jobs, kills, ends.
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
                let Some(id) = env.job() else { continue };
                match &env.event {
                    Event::JobSubmitted { spec } => {
                        self.queued.insert(id, spec.owner.clone());
                    }
                    Event::KillRequested { .. } => {
                        self.queued.remove(&id);
                        if self.running.contains_key(&id) {
                            self.kill(id).await;
                        }
                    }
                    Event::JobFinished { .. } => {
                        self.queued.remove(&id);
                        if let Some(r) = self.running.get(&id) {
                            if let Ok(j) = self.core.job(id).await {
                                if j.attempt == r.attempt && j.state.is_terminal() {
                                    // Ended by a decision, not by the process: stop it too.
                                    self.backend.kill(&r.driver_name).await.ok();
                                    self.running.remove(&id);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    async fn launch_planned(&mut self) {
        // One cluster, the local backend, until the cluster registry is wired.
        let local = kindling_events::DEFAULT_CLUSTER.to_string();
        let snapshot = Snapshot {
            queued: self
                .queued
                .iter()
                .map(|(id, owner)| QueuedJob {
                    id: *id,
                    owner: owner.clone(),
                    cluster: local.clone(),
                    demand: Default::default(),
                })
                .collect(),
            running: self
                .running
                .values()
                .map(|r| RunningJob {
                    owner: r.owner.clone(),
                    cluster: local.clone(),
                    demand: Default::default(),
                })
                .collect(),
            clusters: [(
                local.clone(),
                kindling_events::Capacity {
                    max_drivers: Some(self.cfg.max_drivers as u32),
                    ..Default::default()
                },
            )]
            .into(),
            max_per_owner: None,
        };
        for launch in plan(&snapshot).launches {
            self.queued.remove(&launch.job);
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

    /// Launches the driver of the job's current attempt.
    async fn start_driver(&mut self, job: &Job) {
        let Some(name) = job.driver_name.clone() else {
            return;
        };
        let session = job.is_session().then(|| SessionLink {
            endpoints: (self.cfg.driver_endpoints)(),
            secret: self.secret(&name),
        });
        self.running.insert(job.id, Running::new(job, name.clone()));
        let launched = self
            .backend
            .launch(LaunchSpec {
                job: job.id,
                attempt: job.attempt,
                driver_name: name,
                spec: job.spec.clone(),
                session,
            })
            .await;
        metrics::launch(launched.is_ok());
        match launched {
            Ok(driver_id) => {
                self.exec(
                    job.id,
                    Command::DriverLaunched {
                        attempt: job.attempt,
                        driver_id,
                    },
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(job = job.id.0, error = %e, "launch failed");
                self.running.remove(&job.id);
                self.exec(
                    job.id,
                    Command::Finish {
                        attempt: job.attempt,
                        outcome: Outcome::Error {
                            reason: format!("the driver could not be launched: {e}"),
                        },
                        exit_code: None,
                    },
                )
                .await;
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
        let name = r.driver_name.clone();
        self.gateway.shutdown(id, "the session was stopped").await;
        if let Err(e) = self.backend.kill(&name).await {
            tracing::warn!(job = id.0, error = %e, "kill failed");
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

    /// Heartbeats, reconnect grace, ttl and idle timeout of running sessions.
    async fn check_sessions(&mut self) {
        let now_ms = self.core.clock.now_ms();
        let ids: Vec<JobId> = self.running.keys().copied().collect();
        for id in ids {
            let Ok(job) = self.core.job(id).await else {
                continue;
            };
            let Some(session) = job.spec.session().cloned() else {
                continue;
            };
            if job.kill_requested || job.state.is_terminal() {
                continue;
            }
            if let Some(ttl) = &session.ttl {
                if now_ms - job.last_activity_ms > ttl.millis as i64 {
                    self.exec(
                        id,
                        Command::Kill {
                            reason: format!(
                                "the session's ttl of {} passed without activity",
                                ttl.text
                            ),
                        },
                    )
                    .await;
                    continue;
                }
            }
            if let (Some(idle), Some(since), JobState::Idle) =
                (&session.idle_timeout, job.idle_since_ms, job.state)
            {
                if now_ms - since > idle.millis as i64 {
                    self.exec(
                        id,
                        Command::Kill {
                            reason: format!("the session was idle for longer than {}", idle.text),
                        },
                    )
                    .await;
                    continue;
                }
            }
            match job.state {
                JobState::Idle | JobState::Busy => match self.gateway.last_seen(id, job.attempt) {
                    Some(seen) if seen.elapsed() > self.cfg.heartbeat_timeout => {
                        let reason = format!(
                            "the driver sent no heartbeat for {} s",
                            self.cfg.heartbeat_timeout.as_secs()
                        );
                        self.doom(id, reason).await;
                    }
                    Some(_) => {}
                    None => {
                        self.exec(
                            id,
                            Command::SessionRecovering {
                                attempt: job.attempt,
                                reason: "the driver is not connected; waiting for it to reconnect"
                                    .into(),
                            },
                        )
                        .await;
                    }
                },
                JobState::Recovering => {
                    let grace = self.cfg.recovery_grace;
                    let r = self.running.get_mut(&id);
                    let since = match r {
                        Some(r) => *r.recovering_since.get_or_insert_with(Instant::now),
                        None => continue,
                    };
                    if since.elapsed() > grace {
                        self.doom(
                            id,
                            format!("the driver did not reconnect within {} s", grace.as_secs()),
                        )
                        .await;
                    }
                }
                _ => {
                    if let Some(r) = self.running.get_mut(&id) {
                        r.recovering_since = None;
                    }
                }
            }
        }
    }

    async fn exec(&self, id: JobId, cmd: Command) {
        if let Err(e) = self.core.execute(id, self.origin(), cmd).await {
            tracing::warn!(job = id.0, error = %e, "scheduler command refused");
        }
    }
}

/// How a driver's exit reads, given what the job knew.
fn ended_outcome(job: &Job, exit_code: Option<i32>, when: Option<&str>) -> Outcome {
    let when = when.map(|w| format!(" {w}")).unwrap_or_default();
    if job.kill_requested {
        return Outcome::Killed {
            reason: job
                .reason
                .clone()
                .unwrap_or_else(|| "killed by a client".into()),
        };
    }
    let code = exit_code
        .map(|c| format!("code {c}"))
        .unwrap_or_else(|| "an unknown status".into());
    if job.is_session() {
        if job.state == JobState::Starting {
            return Outcome::Error {
                reason: format!("the session's driver exited with {code} before it was ready{when}; see the session log"),
            };
        }
        return Outcome::Failed {
            reason: format!("the session's driver exited with {code}{when}"),
        };
    }
    match exit_code {
        Some(0) => Outcome::Succeeded,
        _ => Outcome::Failed {
            reason: format!("the driver exited with {code}{when}; see the batch log"),
        },
    }
}
