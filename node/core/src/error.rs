//! The core's error type, and what kind of failure each is ([`Error::code`]), which decides
//! what the API and the driver gateway answer.

use crate::error_code::ErrorCode;
use kindling_events::{DomainError, JobId};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("session '{0}' not found")]
    NotFound(JobId),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] kindling_store::StoreError),
    #[error(transparent)]
    Member(#[from] crate::leadership::MemberError),
    /// The request is wrong; the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// The request is right but cannot be served now (e.g. a session whose driver is not
    /// connected); retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A new job named like an active one of its kind: Livy refuses the second (with 400;
    /// this is a conflict with the state, 409, as the API's other conflicts are).
    #[error(
        "Duplicate {kind} name: '{name}' is the name of {kind} {holder}, which is still \
         active; choose another name, or end that {kind} first"
    )]
    DuplicateName {
        kind: &'static str,
        name: String,
        holder: JobId,
    },
    /// Only the leader decides commands on existing jobs; this node does not lead (now).
    #[error("{}", not_leader(*.0))]
    NotLeader(Option<kindling_events::NodeId>),
}

fn not_leader(leader: Option<kindling_events::NodeId>) -> String {
    match leader {
        Some(l) => format!(
            "this node does not lead the cluster (node {} does); retry",
            l.0
        ),
        None => "the cluster is electing a leader; retry in a moment".into(),
    }
}

impl Error {
    /// Why a request answered [`ErrorCode::Unavailable`] could not be served, for the
    /// operator's metric: no leader to decide it, the log store, or this node not ready.
    pub fn unavailable_cause(&self) -> &'static str {
        match self {
            Error::NotLeader(_) | Error::Member(_) => "no_leader",
            Error::Store(_) => "store",
            _ => "not_ready",
        }
    }

    /// What kind of failure this is, for the transports to tell their clients.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::BadRequest(_) => ErrorCode::BadRequest,
            // Livy answers 400; the request is well formed and only the state refuses it,
            // as with the other conflicts this API reports.
            Error::DuplicateName { .. } => ErrorCode::Conflict,
            Error::Domain(d) => match d {
                DomainError::UnknownJob(_)
                | DomainError::UnknownStatement { .. }
                | DomainError::UnknownCluster(_)
                | DomainError::UnknownToken(_) => ErrorCode::NotFound,
                DomainError::NotASession { .. } => ErrorCode::BadRequest,
                DomainError::Decode(_) => ErrorCode::Internal,
                DomainError::JobExists(_)
                | DomainError::SessionNotAccepting { .. }
                | DomainError::StatementIllegal { .. }
                | DomainError::IllegalTransition { .. }
                | DomainError::JobIllegal { .. }
                | DomainError::ClusterExists(_)
                | DomainError::BuiltInCluster(_)
                | DomainError::ClusterBusy { .. }
                | DomainError::TokenExists(_)
                | DomainError::TooManyTokens { .. } => ErrorCode::Conflict,
            },
            Error::Unavailable(_) | Error::NotLeader(_) => ErrorCode::Unavailable,
            // No leader to lease job ids from (an election, no quorum): retrying will work.
            Error::Member(m) if m.retryable => ErrorCode::Unavailable,
            // A closed log (the node stops) or a fenced writer (a newer leader): ask again,
            // another node or the new leader answers.
            Error::Store(
                kindling_store::StoreError::Closed | kindling_store::StoreError::Fenced(_),
            ) => ErrorCode::Unavailable,
            // An event the log does not take in one record: nothing was written.
            Error::Store(kindling_store::StoreError::TooLarge { .. }) => ErrorCode::PayloadTooLarge,
            Error::Store(_) | Error::Member(_) => ErrorCode::Internal,
        }
    }
}
