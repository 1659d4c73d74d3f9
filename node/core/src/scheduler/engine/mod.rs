//! The scheduler's decisions, as a pure engine: state plus an input gives the next state and
//! the [`Action`]s for the runtime to carry out, the way openraft's `Engine` emits commands
//! that its `RaftCore` runs. No I/O, no clock, no awaiting here: the runtime reads the log,
//! the write model, the gateway and the time, and hands them in; what an action brings back
//! comes in through the method the action names.
//!
//! What it decides: the queue and what runs where (from the log it is handed, fenced), what
//! `plan` launches under each cluster's capacity and why the others wait ([`launch`]), how a
//! take-over settles the jobs that were active and how a cluster's change is followed
//! ([`recovery`]), what a backend's report means ([`reports`]), and session lifetimes
//! ([`sessions`]).

mod action;
mod launch;
mod recovery;
mod reports;
mod running;
mod sessions;
#[cfg(test)]
mod tests;

pub use action::{Action, Confirm, LaneOp, LaunchError, Loaded, Need, Round, SessionRoute};
pub use running::{Disconnected, Phase, Running};
pub use sessions::{ended_outcome, with_cause};

use kindling_events::job::Applied;
use kindling_events::{
    Aggregate, Cluster, Envelope, Event, JobId, JobSpec, LeaderFence, Registry, Term,
    DEFAULT_CLUSTER,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a driver that could not be looked up waits before it is looked up again.
pub const FIND_RETRY: Duration = Duration::from_secs(5);

/// What the engine is told once, by the node.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The node's built-in cluster (`local`, from its flags; not in the log).
    pub builtin: Cluster,
    /// A silent session driver is declared dead after this long.
    pub heartbeat_timeout: Duration,
    /// How long a session's driver may take to reconnect.
    pub recovery_grace: Duration,
    /// Key from which session secrets derive, so a re-issued launch can recreate its secret.
    pub secret_key: Vec<u8>,
    /// Whether the driver gateways serve TLS, and what drivers trust then.
    pub gateway_tls: Option<kindling_backend::GatewayTls>,
}

#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    /// The registry as of the log the engine was handed: loaded on taking over, then folded.
    registry: Registry,
    queued: BTreeMap<JobId, JobSpec>,
    /// Jobs taken from the queue whose `JobScheduled` is being appended: back to the queue
    /// if the append fails (a broker away), so they are tried again, not forgotten.
    scheduling: BTreeMap<JobId, JobSpec>,
    running: BTreeMap<JobId, Running>,
    /// The wait reason last recorded for each queued job, so it is recorded once.
    shown: BTreeMap<JobId, String>,
    /// When each job not yet launched was submitted (wall clock, from the log): how long
    /// the queue has kept it, for the operator.
    submitted_ms: BTreeMap<JobId, i64>,
    /// Queued jobs whose failed attempt's retry waits: not planned before this time (wall
    /// clock, from the log).
    not_before_ms: BTreeMap<JobId, i64>,
    /// The leader fence over the log the engine was handed: a deposed leader's late write (a
    /// kill, a registry change) is no event to react to.
    fence: LeaderFence,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        Engine {
            cfg,
            registry: Registry::default(),
            queued: BTreeMap::new(),
            scheduling: BTreeMap::new(),
            running: BTreeMap::new(),
            shown: BTreeMap::new(),
            submitted_ms: BTreeMap::new(),
            not_before_ms: BTreeMap::new(),
            fence: LeaderFence::default(),
        }
    }

    /// The jobs waiting for a driver.
    pub fn queued(&self) -> impl Iterator<Item = JobId> + '_ {
        self.queued.keys().copied()
    }

    /// The drivers counted as running, and where each stands.
    pub fn running(&self) -> &BTreeMap<JobId, Running> {
        &self.running
    }

    /// The cluster called `name`, as of the log the engine was handed.
    pub fn cluster(&self, name: &str) -> Option<Cluster> {
        if name == DEFAULT_CLUSTER {
            return Some(self.cfg.builtin.clone());
        }
        self.registry.get(name).cloned()
    }

    /// Reacts to one event of the log, in log order: new jobs, kills, ends, registry changes.
    pub fn on_log(&mut self, env: &Envelope) -> Vec<Action> {
        if !self.fence.admit(env) {
            return vec![];
        }
        if env.aggregate == Aggregate::Registry {
            if self.registry.apply(env) == Applied::Yes {
                return self.on_registry_change(&env.event);
            }
            return vec![];
        }
        let Some(id) = env.job() else {
            return vec![];
        };
        match &env.event {
            Event::JobSubmitted { spec } => {
                self.queued.insert(id, spec.clone());
                self.submitted_ms.insert(id, env.at_ms);
                vec![]
            }
            Event::KillRequested { .. } => {
                self.queued.remove(&id);
                self.submitted_ms.remove(&id);
                self.not_before_ms.remove(&id);
                self.scheduling.remove(&id);
                self.shown.remove(&id);
                self.kill(id)
            }
            Event::JobFinished { attempt, .. } => {
                self.queued.remove(&id);
                self.submitted_ms.remove(&id);
                self.not_before_ms.remove(&id);
                self.scheduling.remove(&id);
                self.shown.remove(&id);
                // Ended by a decision, not by the process: stop the driver too. (A finish of
                // the attempt that runs ends the job: the aggregate applies it.)
                match self.running.get(&id) {
                    Some(r) if r.attempt == *attempt => {
                        let r = self.running.remove(&id).expect("just seen");
                        self.lane_kill(id, &r.cluster, r.driver_name)
                    }
                    _ => vec![],
                }
            }
            Event::AttemptFailed { attempt, .. } => {
                // The driver of that attempt has ended; the job waits for its next one.
                if self.running.get(&id).is_some_and(|r| r.attempt == *attempt) {
                    self.running.remove(&id);
                }
                self.shown.remove(&id);
                vec![Action::Load {
                    job: id,
                    need: Need::Retry,
                }]
            }
            _ => vec![],
        }
    }

    /// Stops the driver of `id` (once), telling it first if it is a session's.
    fn kill(&mut self, id: JobId) -> Vec<Action> {
        let Some(r) = self.running.get_mut(&id) else {
            return vec![];
        };
        if r.killing {
            return vec![];
        }
        r.killing = true;
        let (cluster, driver_name) = (r.cluster.clone(), r.driver_name.clone());
        let mut out = vec![Action::ShutdownLink {
            job: id,
            reason: "the session was stopped",
        }];
        out.extend(self.lane_kill(id, &cluster, driver_name));
        out
    }

    /// Kills a driver the scheduler gave up on, recording why.
    fn doom(&mut self, id: JobId, reason: String) -> Vec<Action> {
        let mut lost = vec![];
        if let Some(r) = self.running.get_mut(&id) {
            if r.doomed.is_none() {
                lost.push(Action::CountLostDriver {
                    cluster: r.cluster.clone(),
                });
                tracing::warn!(job = id.0, %reason, "stopping driver");
                r.doomed = Some(reason);
            }
        }
        lost.extend(self.kill(id));
        lost
    }

    fn lane_kill(&self, job: JobId, cluster: &str, driver_name: String) -> Vec<Action> {
        match self.cluster(cluster) {
            Some(cluster) => vec![Action::Lane {
                cluster,
                op: LaneOp::Kill { job, driver_name },
            }],
            None => vec![],
        }
    }

    /// Starts a new term of leadership: the fence starts at `term`; nothing is queued or
    /// running until [`Engine::start`] settles what was active.
    fn reset(&mut self, term: Term, registry: Registry) {
        self.fence = LeaderFence::new(term);
        self.registry = registry;
        self.queued.clear();
        self.scheduling.clear();
        self.running.clear();
        self.shown.clear();
        self.submitted_ms.clear();
        self.not_before_ms.clear();
    }
}
