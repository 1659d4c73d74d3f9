//! The job aggregate: a batch or a session with its driver attempts and (for sessions) the
//! states of its statements. `decide` turns a command into events or refuses it; `apply`
//! folds an event into the state and never refuses a fact. The same type is the write model
//! a node keeps in memory and the job document a projection stores.

use crate::error::{DomainError, Result};
use crate::event::{Envelope, Event, Outcome, StatementOutput};
use crate::ids::{Attempt, JobId, LogPosition, StatementId, Term};
use crate::spec::{JobSpec, SessionKind};
use crate::state::{JobState, StatementState};
use serde::{Deserialize, Serialize};

mod apply;
mod decide;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub spec: JobSpec,
    pub state: JobState,
    /// Number of events applied (the aggregate version).
    pub version: u64,
    /// The last log position reflected in this document.
    pub applied: LogPosition,
    /// The highest leader term applied: a leader's events from older terms are ignored.
    pub max_term: Term,
    /// The current driver attempt; 0 before the first launch.
    pub attempt: Attempt,
    pub driver_name: Option<String>,
    pub secret_digest: String,
    pub driver_id: Option<String>,
    pub app_id: Option<String>,
    pub spark_ui_url: Option<String>,
    pub submitted_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Why the job is dead, killed or in error, why a session is recovering, or why a job
    /// that has not started is still waiting (cleared when it is scheduled).
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub kill_requested: bool,
    pub deleted: bool,
    /// State of each statement, indexed by statement id.
    pub statements: Vec<StatementState>,
    /// Last client activity (statements, completions), for Livy's `ttl`.
    pub last_activity_ms: i64,
    /// When the session last became idle, for `idleTimeout`.
    pub idle_since_ms: Option<i64>,
    /// The attempts that failed and were retried under the restart policy, oldest first
    /// (the last attempt's end is the job's own `state`, `reason` and `exit_code`).
    pub retried: Vec<AttemptEnd>,
    /// While a failed attempt's retry waits: when the next attempt may start.
    pub retry_at_ms: Option<i64>,
}

/// How one retried attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptEnd {
    pub attempt: Attempt,
    pub driver_name: Option<String>,
    pub app_id: Option<String>,
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
}

/// What a command asks of a job. Creating a job is `Job::submit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Launch the next attempt (the scheduler).
    Schedule {
        driver_name: String,
        secret_digest: String,
    },
    DriverLaunched {
        attempt: Attempt,
        driver_id: String,
    },
    AppIdentified {
        attempt: Attempt,
        app_id: String,
        spark_ui_url: Option<String>,
    },
    SessionReady {
        attempt: Attempt,
    },
    SessionRecovering {
        attempt: Attempt,
        reason: String,
    },
    Kill {
        reason: String,
    },
    Delete,
    Finish {
        attempt: Attempt,
        outcome: Outcome,
        exit_code: Option<i32>,
    },
    SubmitStatement {
        kind: SessionKind,
        code: String,
    },
    StatementStarted {
        statement: StatementId,
    },
    CompleteStatement {
        statement: StatementId,
        output: StatementOutput,
        cancelled: bool,
    },
    CancelStatement {
        statement: StatementId,
    },
    /// A client used the session (keeps Livy's `ttl` from expiring).
    Touch,
    /// Record why a job that has not started waits (the scheduler, when the reason changes).
    Queue {
        reason: String,
    },
    /// End a job that waits for a driver and can never get one (its cluster is gone, or is
    /// smaller than the driver): the scheduler. No restart policy applies.
    Refuse {
        reason: String,
    },
}

/// Whether `apply` changed the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Yes,
    /// The envelope's position is already reflected.
    AlreadyApplied,
    /// A leader's event from a term older than one already applied: ignored.
    Fenced,
}

impl Job {
    /// The events that create a job.
    pub fn submit(spec: JobSpec) -> Vec<Event> {
        vec![Event::JobSubmitted { spec }]
    }

    /// Builds a job from its first event.
    pub fn created(env: &Envelope) -> Option<Job> {
        let (Some(id), Event::JobSubmitted { spec }) = (env.job(), &env.event) else {
            return None;
        };
        Some(Job {
            id,
            spec: spec.clone(),
            state: JobState::NotStarted,
            version: 1,
            applied: env.position,
            max_term: env.leader_term().unwrap_or_default(),
            attempt: Attempt(0),
            driver_name: None,
            secret_digest: String::new(),
            driver_id: None,
            app_id: None,
            spark_ui_url: None,
            submitted_at_ms: env.at_ms,
            started_at_ms: None,
            finished_at_ms: None,
            reason: None,
            exit_code: None,
            kill_requested: false,
            deleted: false,
            statements: Vec::new(),
            last_activity_ms: env.at_ms,
            idle_since_ms: None,
            retried: Vec::new(),
            retry_at_ms: None,
        })
    }

    pub fn is_session(&self) -> bool {
        self.spec.is_session()
    }

    fn can_move_to(&self, to: JobState) -> bool {
        if self.is_session() {
            self.state.session_can_move_to(to)
        } else {
            self.state.batch_can_move_to(to)
        }
    }

    fn ensure_move(&self, to: JobState) -> Result<()> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            Err(DomainError::IllegalTransition {
                job: self.id,
                from: self.state,
                to,
            })
        }
    }

    fn require_session(&self) -> Result<()> {
        if self.is_session() {
            Ok(())
        } else {
            Err(DomainError::NotASession { job: self.id })
        }
    }

    fn statement_state(&self, id: StatementId) -> Result<StatementState> {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.statements.get(i).copied())
            .ok_or(DomainError::UnknownStatement {
                job: self.id,
                statement: id,
            })
    }

    /// Statements not yet available or cancelled.
    pub fn active_statements(&self) -> impl Iterator<Item = StatementId> + '_ {
        self.statements
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_terminal())
            .map(|(i, _)| StatementId(i as u64))
    }

    pub fn next_statement_id(&self) -> StatementId {
        StatementId(self.statements.len() as u64)
    }

    /// The state a ready session shows: busy while any statement is waiting or running.
    fn ready_state(&self) -> JobState {
        if self.active_statements().next().is_some() {
            JobState::Busy
        } else {
            JobState::Idle
        }
    }
}
