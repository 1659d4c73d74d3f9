//! Events: every change to a job, a session, a statement or the cluster registry, as appended
//! to the log. An event
//! is a fact; `apply` never rejects one. New variants are only ever appended at the end of an
//! enum, and existing ones never change shape: the golden files in `tests/golden/` hold the
//! encoded form of every variant and must keep decoding.

use crate::cluster::ClusterConfig;
use crate::ids::{Attempt, JobId, LogPosition, NodeId, StatementId, Term};
use crate::spec::{JobSpec, SessionKind};
use crate::tokens::IssuedToken;
use serde::{Deserialize, Serialize};

/// The current envelope format. Bump it (and keep a decoder for the old one) on any change.
/// Format 2 added the actor; format 1 envelopes decode with none.
pub const FORMAT_VERSION: u16 = 2;

/// What an event is about: one job (with its statements), the Kindling cluster as a whole
/// (scheduler markers), or the registry of Spark clusters jobs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Aggregate {
    Job(JobId),
    Cluster,
    Registry,
    /// The API tokens issued to users.
    Tokens,
}

/// Who wrote an event, and for events the leader decided, the Raft term it led in. Every
/// reader of the log ignores a leader's event that comes after an event of a newer term
/// ([`crate::fence::LeaderFence`]): that is how a deposed leader's late writes are fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// A client request that any node may write: a new job (its id is the node's own, leased
    /// through Raft). Logs written before commands carried terms hold clients' commands
    /// under it too.
    Api,
    /// The scheduler or driver tracker of the leader of `term`.
    Scheduler { term: Term },
    /// A driver's report, as logs written before commands carried terms hold it.
    Driver,
    /// A client's command on an existing job or the registry, decided by the leader of `term`.
    ApiDecided { term: Term },
    /// A driver's report, decided by the leader of `term`.
    DriverDecided { term: Term },
}

impl Origin {
    /// The term of the leader that wrote an event of this origin, if a leader did.
    pub fn leader_term(self) -> Option<Term> {
        match self {
            Origin::Scheduler { term }
            | Origin::ApiDecided { term }
            | Origin::DriverDecided { term } => Some(term),
            Origin::Api | Origin::Driver => None,
        }
    }

    /// This origin as decided by the leader of `term`: a client's or a driver's request gets
    /// the term; the scheduler's events already carry their own.
    pub fn decided_in(self, term: Term) -> Origin {
        match self {
            Origin::Api | Origin::ApiDecided { .. } => Origin::ApiDecided { term },
            Origin::Driver | Origin::DriverDecided { .. } => Origin::DriverDecided { term },
            Origin::Scheduler { .. } => self,
        }
    }

    /// Who asked: `api`, `scheduler` or `driver` (the leader's term aside).
    pub fn source(self) -> &'static str {
        match self {
            Origin::Api | Origin::ApiDecided { .. } => "api",
            Origin::Scheduler { .. } => "scheduler",
            Origin::Driver | Origin::DriverDecided { .. } => "driver",
        }
    }
}

/// How a driver's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed {
        reason: String,
    },
    Killed {
        reason: String,
    },
    /// The driver never came up (a session that never registered, a launch that failed).
    Error {
        reason: String,
    },
}

/// Livy's statement output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatementOutput {
    /// `status: "ok"`; `data_json` is the JSON object mime type -> value.
    Ok {
        execution_count: u64,
        data_json: String,
    },
    /// `status: "error"`.
    Error {
        execution_count: u64,
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
}

// Boxing `JobSubmitted`'s spec would change every constructor of the event for one
// allocation saved per small event; events are short-lived, so keep the plain shape.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A batch or session was accepted.
    JobSubmitted {
        spec: JobSpec,
    },
    /// The scheduler decided to launch attempt `attempt`. `driver_name` derives from (job,
    /// attempt) so a re-issued launch finds the driver that exists.
    JobScheduled {
        attempt: Attempt,
        driver_name: String,
        /// SHA-256 (hex) of the session's driver secret; empty for batches.
        secret_digest: String,
    },
    /// The backend started the driver; `driver_id` is the backend's handle for it.
    DriverLaunched {
        attempt: Attempt,
        driver_id: String,
    },
    /// Spark reported its application id.
    AppIdentified {
        attempt: Attempt,
        app_id: String,
        spark_ui_url: Option<String>,
    },
    /// A session's driver registered and is ready for statements.
    SessionReady {
        attempt: Attempt,
    },
    /// A session's driver lost its link; it is expected back.
    SessionRecovering {
        attempt: Attempt,
        reason: String,
    },
    /// A client asked to stop the job.
    KillRequested {
        reason: String,
    },
    /// The job is gone from Livy's view (DELETE); its history stays in the native API.
    JobDeleted,
    /// The driver of `attempt` ended.
    JobFinished {
        attempt: Attempt,
        outcome: Outcome,
        exit_code: Option<i32>,
    },
    StatementSubmitted {
        statement: StatementId,
        kind: SessionKind,
        code: String,
    },
    StatementStarted {
        statement: StatementId,
    },
    StatementCompleted {
        statement: StatementId,
        output: StatementOutput,
    },
    StatementCancelRequested {
        statement: StatementId,
    },
    StatementCancelled {
        statement: StatementId,
    },
    /// A catch-up barrier: the scheduler of `term` has seen everything before this marker.
    SchedulerMarker {
        nonce: u64,
    },
    /// Informational: the job was touched by a client (Livy's `ttl` counts from here).
    /// Not written for reads; only for statement and completion requests.
    SessionActivity,
    /// A Spark cluster was added to the registry (aggregate `Registry`).
    ClusterRegistered {
        name: String,
        config: ClusterConfig,
    },
    /// A registered cluster's configuration was replaced (aggregate `Registry`).
    ClusterUpdated {
        name: String,
        config: ClusterConfig,
    },
    /// A cluster left the registry (aggregate `Registry`).
    ClusterRemoved {
        name: String,
    },
    /// Informational: why a job that has not started yet is still waiting (its cluster is
    /// full, ...). Written by the scheduler when the reason changes, not on every look.
    JobQueued {
        reason: String,
    },
    /// An API token was issued (aggregate `Tokens`); its secret is not in it.
    TokenIssued {
        token: IssuedToken,
    },
    /// An API token was revoked (aggregate `Tokens`): no node takes it from now on.
    TokenRevoked {
        id: String,
    },
    /// The driver of `attempt` ended with `outcome`, and the job's restart policy launches
    /// another after `backoff_ms` (counted from this event's time): the job waits again.
    AttemptFailed {
        attempt: Attempt,
        outcome: Outcome,
        exit_code: Option<i32>,
        backoff_ms: u64,
    },
    /// How a cluster shares its capacity was set (aggregate `Registry`); the built-in
    /// cluster's too. Empty queues without a per-user limit: back to the defaults.
    ClusterQueuesSet {
        name: String,
        queues: crate::queues::Queues,
    },
}

impl Event {
    /// The statement this event is about, if any.
    pub fn statement(&self) -> Option<StatementId> {
        match self {
            Event::StatementSubmitted { statement, .. }
            | Event::StatementStarted { statement }
            | Event::StatementCompleted { statement, .. }
            | Event::StatementCancelRequested { statement }
            | Event::StatementCancelled { statement } => Some(*statement),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Event::JobSubmitted { .. } => "JobSubmitted",
            Event::JobScheduled { .. } => "JobScheduled",
            Event::DriverLaunched { .. } => "DriverLaunched",
            Event::AppIdentified { .. } => "AppIdentified",
            Event::SessionReady { .. } => "SessionReady",
            Event::SessionRecovering { .. } => "SessionRecovering",
            Event::KillRequested { .. } => "KillRequested",
            Event::JobDeleted => "JobDeleted",
            Event::JobFinished { .. } => "JobFinished",
            Event::StatementSubmitted { .. } => "StatementSubmitted",
            Event::StatementStarted { .. } => "StatementStarted",
            Event::StatementCompleted { .. } => "StatementCompleted",
            Event::StatementCancelRequested { .. } => "StatementCancelRequested",
            Event::StatementCancelled { .. } => "StatementCancelled",
            Event::SchedulerMarker { .. } => "SchedulerMarker",
            Event::SessionActivity => "SessionActivity",
            Event::ClusterRegistered { .. } => "ClusterRegistered",
            Event::ClusterUpdated { .. } => "ClusterUpdated",
            Event::ClusterRemoved { .. } => "ClusterRemoved",
            Event::JobQueued { .. } => "JobQueued",
            Event::TokenIssued { .. } => "TokenIssued",
            Event::TokenRevoked { .. } => "TokenRevoked",
            Event::AttemptFailed { .. } => "AttemptFailed",
            Event::ClusterQueuesSet { .. } => "ClusterQueuesSet",
        }
    }
}

/// An event about to be appended: everything but its log position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    pub aggregate: Aggregate,
    /// The aggregate's version after this event (1 for the first event of a job).
    pub version: u64,
    pub origin: Origin,
    pub node: NodeId,
    /// Who asked for it: the authenticated user of the request that caused the event; `None`
    /// for the scheduler's and drivers' events and for requests without a user.
    pub actor: Option<String>,
    /// Wall-clock milliseconds since the epoch: informational only, never used for ordering.
    pub at_ms: i64,
    pub event: Event,
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub format: u16,
    pub position: LogPosition,
    pub aggregate: Aggregate,
    pub version: u64,
    pub origin: Origin,
    pub node: NodeId,
    /// See [`NewEvent::actor`].
    pub actor: Option<String>,
    pub at_ms: i64,
    pub event: Event,
}

impl Envelope {
    pub fn new(position: LogPosition, e: NewEvent) -> Self {
        Envelope {
            format: FORMAT_VERSION,
            position,
            aggregate: e.aggregate,
            version: e.version,
            origin: e.origin,
            node: e.node,
            actor: e.actor,
            at_ms: e.at_ms,
            event: e.event,
        }
    }

    pub fn job(&self) -> Option<JobId> {
        match self.aggregate {
            Aggregate::Job(j) => Some(j),
            Aggregate::Cluster | Aggregate::Registry | Aggregate::Tokens => None,
        }
    }

    /// Whether this event is new to a one-document aggregate of kind `aggregate` (the
    /// registry, the tokens) that counts `version` events applied, the last at `applied`;
    /// if it is, it is counted.
    pub fn advances(
        &self,
        aggregate: Aggregate,
        version: &mut u64,
        applied: &mut LogPosition,
    ) -> bool {
        if self.aggregate != aggregate || (*version > 0 && self.position <= *applied) {
            return false;
        }
        *version += 1;
        *applied = self.position;
        true
    }

    /// The Raft term of the leader that wrote this event, if a leader did: what fences it.
    pub fn leader_term(&self) -> Option<Term> {
        self.origin.leader_term()
    }
}
