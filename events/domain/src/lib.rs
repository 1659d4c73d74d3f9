//! Kindling's domain core: what a job, a session and a statement are, which events change
//! them, and which changes are legal. Everything here is a pure function of its inputs: no
//! clock, no I/O, no async. Adapters (`kindling-store`) persist what this crate decides and the
//! node's runtime executes it.
//!
//! - [`ids`]: typed identifiers and log positions.
//! - [`spec`]: what a user asked for (a batch or a session, with Spark settings), and
//!   [`spec_check`]: what a spec may hold.
//! - [`state`]: Livy's state strings and the legal moves between them.
//! - [`event`]: the events and their envelope; [`codec`] their versioned binary form.
//! - [`fence`]: the rule by which every reader ignores a deposed leader's late writes.
//! - [`job`]: the job aggregate, with `decide` (command -> events) and `apply` (event -> state).
//! - [`statement`]: statement documents as the read side shows them.
//! - [`cluster`]: the Spark clusters jobs run on; [`registry`]: the aggregate that holds
//!   them, with its own `decide`/`apply`.
//! - [`plan`]: the scheduler's placement decision over a snapshot, under per-cluster capacity.
//! - [`queues`]: how a cluster shares its capacity between queues and users.
//! - [`restart`]: a batch's restart policy: which failed drivers are launched again, and when.
//! - [`units`]: the one reading of memory sizes and durations; [`patterns`]: the regular
//!   expressions that say, in the API's document, what they and the other checks accept.

pub mod cluster;
pub mod codec;
pub mod error;
pub mod event;
pub mod fence;
pub mod ids;
pub mod job;
pub mod patterns;
pub mod plan;
pub mod queues;
pub mod registry;
pub mod restart;
pub mod spec;
pub mod spec_check;
pub mod state;
pub mod statement;
pub mod tokens;
pub mod units;

pub use cluster::{
    Capacity, Cluster, ClusterConfig, ClusterKind, Credentials, Registry, RegistryCommand,
    CLUSTER_CONF_KEY, DEFAULT_CLUSTER,
};
pub use error::{DomainError, Result};
pub use event::{Aggregate, Envelope, Event, NewEvent, Origin, Outcome, StatementOutput};
pub use fence::LeaderFence;
pub use ids::{Attempt, JobId, LogPosition, NodeId, StatementId, Term};
pub use job::{AttemptEnd, Command, Job};
pub use queues::{QueueConfig, Queues};
pub use restart::RestartPolicy;
pub use spec::{BatchSpec, JobKind, JobSpec, SessionKind, SessionSpec, SparkResources};
pub use state::{JobState, StatementState};
pub use statement::Statement;
pub use tokens::{IssuedToken, Token, TokenCommand, Tokens};
pub use units::{parse_duration, MemorySize};
