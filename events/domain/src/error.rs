//! Errors of the domain: a command that the current state does not allow.

use crate::ids::{JobId, StatementId};
use crate::state::{JobState, StatementState};

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("job {0} does not exist")]
    UnknownJob(JobId),
    #[error("job {0} already exists")]
    JobExists(JobId),
    #[error("job {job} is a batch, not an interactive session")]
    NotASession { job: JobId },
    #[error("session {job} is {state} and does not accept statements")]
    SessionNotAccepting { job: JobId, state: JobState },
    #[error("statement {statement} of session {job} does not exist")]
    UnknownStatement { job: JobId, statement: StatementId },
    #[error("statement {statement} of session {job} is {state}: {action} is not possible")]
    StatementIllegal {
        job: JobId,
        statement: StatementId,
        state: StatementState,
        action: &'static str,
    },
    #[error("job {job} cannot move from {from} to {to}")]
    IllegalTransition {
        job: JobId,
        from: JobState,
        to: JobState,
    },
    #[error("job {job} is {state}: {action} is not possible")]
    JobIllegal {
        job: JobId,
        state: JobState,
        action: &'static str,
    },
    #[error("cannot decode event: {0}")]
    Decode(String),
    #[error("cluster '{0}' does not exist")]
    UnknownCluster(String),
    #[error("cluster '{0}' already exists")]
    ClusterExists(String),
    #[error(
        "cluster '{0}' is built in (the node's local backend, set by its flags) and cannot be \
         created, changed or deleted through the API"
    )]
    BuiltInCluster(String),
    #[error(
        "cluster '{name}' cannot {action}: {active} job(s) on it have not ended yet (queued, \
         starting or running); kill them or wait for them to end first"
    )]
    ClusterBusy {
        name: String,
        active: usize,
        action: &'static str,
    },
    #[error("token '{0}' does not exist")]
    UnknownToken(String),
    #[error("token '{0}' already exists")]
    TokenExists(String),
    #[error(
        "user '{user}' holds {max} live tokens, the most one user may; revoke one or let one \
         expire first"
    )]
    TooManyTokens { user: String, max: usize },
}
