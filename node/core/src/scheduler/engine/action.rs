//! What the engine asks of the runtime, and the continuations it is answered with. Every
//! action that has an answer names the engine method the runtime calls with it; the runtime
//! runs the follow-up actions of an answer before the next action of the batch, so a chain
//! (load the job, schedule it, open its route, launch it) runs in one piece, as it did when
//! the scheduler awaited each step inline.

use kindling_backend::{Found, KafkaRoute, LaunchSpec};
use kindling_events::plan::Refusal;
use kindling_events::{Attempt, Cluster, Command, Job, JobId, JobSpec};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Decide `cmd` on the job as the scheduler of this term and append what it decided.
    /// Nothing comes back: a refused command is logged.
    Command { job: JobId, cmd: Command },
    /// Decide `Command::Schedule` (the job's next attempt); answer with
    /// [`Engine::on_scheduled`](super::Engine::on_scheduled).
    Schedule {
        job: JobId,
        driver_name: String,
        secret_digest: String,
    },
    /// Read the job's current state (the leader's write model) and when its driver was last
    /// heard from; answer with [`Engine::on_loaded`](super::Engine::on_loaded).
    Load { job: JobId, need: Need },
    /// Confirm with a quorum that this node still leads before acting outside the log;
    /// answer with [`Engine::on_confirmed`](super::Engine::on_confirmed).
    ConfirmLeadership(Confirm),
    /// Open a session driver's route before its launch; answer with
    /// [`Engine::on_route_opened`](super::Engine::on_route_opened).
    OpenRoute { job: Box<Job>, cluster: Cluster },
    /// A call on the cluster's lane; launches and lookups are answered with
    /// [`Engine::on_launched`](super::Engine::on_launched) and
    /// [`Engine::on_found`](super::Engine::on_found).
    Lane { cluster: Cluster, op: LaneOp },
    /// Tell the driver of `job` to stop and forget its link.
    ShutdownLink { job: JobId, reason: &'static str },
    /// A cluster left the registry: close its lane, stop its backend, zero its gauges.
    ForgetCluster { name: String },
    /// What a cluster runs and how many jobs wait for it, as of this round's plan, and
    /// when the longest-waiting of them was submitted (wall clock, from the log).
    ClusterLoad {
        cluster: String,
        drivers: usize,
        waiting: usize,
        oldest_submitted_ms: Option<i64>,
    },
    /// A launch on `cluster` was answered, well or not.
    CountLaunch { cluster: String, ok: bool },
    /// The scheduler gave up on a driver of `cluster` it had counted as running (no
    /// heartbeat, no reconnect).
    CountLostDriver { cluster: String },
    /// A failed attempt of a job on `cluster` waits to be launched again.
    CountRetry { cluster: String },
}

/// A backend call, run on its cluster's lane in order with the cluster's other calls.
#[derive(Debug, Clone, PartialEq)]
pub enum LaneOp {
    Launch(Box<LaunchSpec>),
    Find {
        job: JobId,
        attempt: Attempt,
        driver_name: String,
    },
    Kill {
        job: JobId,
        driver_name: String,
    },
}

/// Why a launch failed, and whether the driver may exist anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchError {
    pub cause: String,
    /// The driver certainly did not start (the backend refused, or was never reached).
    pub certain: bool,
}

/// Why the engine asked for a job: what it decides once it has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// A launch the plan chose. `spec` goes back in the queue if the job cannot be read now.
    Launch { spec: Option<Box<JobSpec>> },
    /// A driver's exit, reported by its backend.
    Exited {
        attempt: Attempt,
        exit_code: Option<i32>,
        cause: Option<String>,
        /// Set when the scheduler itself stopped the driver: the reason it is dead.
        doomed: Option<String>,
    },
    /// What a lookup after a take-over (or a change of the cluster) found.
    Found {
        attempt: Attempt,
        found: Result<Found, String>,
        now: Instant,
    },
    /// A tick's look at a running session: heartbeats, reconnect grace, ttl, idle timeout.
    SessionCheck { now: Instant, now_ms: i64 },
    /// An attempt failed and the restart policy retries it: the job waits again.
    Retry,
}

/// A job as the runtime read it for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub job: Job,
    /// When the job's driver (of its current attempt) was last heard from, if it is linked.
    pub last_seen: Option<Instant>,
}

/// Why the engine asked for the leadership to be confirmed.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    /// A planning round that writes (launches, refusals, wait reasons).
    Round(Round),
    /// Re-issuing a launch that provably never happened.
    Reissue { job: Box<Job>, now: Instant },
}

/// What one planning round decided, to be carried out once the leadership is confirmed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Round {
    pub refused: Vec<(JobId, Refusal)>,
    /// Wait reasons not recorded yet.
    pub reasons: Vec<(JobId, String)>,
    pub launches: Vec<JobId>,
}

impl Round {
    pub fn is_empty(&self) -> bool {
        self.refused.is_empty() && self.reasons.is_empty() && self.launches.is_empty()
    }
}

/// How a session driver will reach the node, once its route is open.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRoute {
    /// The driver gateways, `host:port,...`, the leader's first.
    pub endpoints: String,
    /// In Kafka mode, the session's topic pair.
    pub kafka: Option<KafkaRoute>,
}
