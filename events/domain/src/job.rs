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

    /// Decides what `cmd` does to this job. An empty list means "already done" (commands
    /// are idempotent where a retry is expected: finishing, completing a statement).
    pub fn decide(&self, cmd: Command) -> Result<Vec<Event>> {
        use Command as C;
        match cmd {
            C::Schedule {
                driver_name,
                secret_digest,
            } => {
                if self.kill_requested {
                    return Err(self.illegal("schedule after a kill"));
                }
                self.ensure_move(JobState::Starting)?;
                Ok(vec![Event::JobScheduled {
                    attempt: self.attempt.next(),
                    driver_name,
                    secret_digest,
                }])
            }
            C::DriverLaunched { attempt, driver_id } => {
                // Attempt 0 was never scheduled: no driver of it can exist.
                if attempt != self.attempt || attempt == Attempt(0) || self.state.is_terminal() {
                    return Ok(vec![]);
                }
                if self.driver_id.as_deref() == Some(driver_id.as_str()) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::DriverLaunched { attempt, driver_id }])
            }
            C::AppIdentified {
                attempt,
                app_id,
                spark_ui_url,
            } => {
                if attempt != self.attempt
                    || attempt == Attempt(0)
                    || self.app_id.as_deref() == Some(app_id.as_str())
                {
                    return Ok(vec![]);
                }
                Ok(vec![Event::AppIdentified {
                    attempt,
                    app_id,
                    spark_ui_url,
                }])
            }
            C::SessionReady { attempt } => {
                self.require_session()?;
                if attempt != self.attempt || matches!(self.state, JobState::Idle | JobState::Busy)
                {
                    return Ok(vec![]);
                }
                self.ensure_move(JobState::Idle)?;
                Ok(vec![Event::SessionReady { attempt }])
            }
            C::SessionRecovering { attempt, reason } => {
                self.require_session()?;
                if attempt != self.attempt || self.state == JobState::Recovering {
                    return Ok(vec![]);
                }
                self.ensure_move(JobState::Recovering)?;
                Ok(vec![Event::SessionRecovering { attempt, reason }])
            }
            C::Kill { reason } => {
                if self.state.is_terminal() {
                    return Ok(vec![]);
                }
                if self.kill_requested {
                    return Ok(vec![]);
                }
                let mut events = vec![Event::KillRequested {
                    reason: reason.clone(),
                }];
                if self.state == JobState::NotStarted {
                    // No driver exists: the job ends here.
                    events.extend(self.finish_events(
                        self.attempt,
                        Outcome::Killed { reason },
                        None,
                    ));
                }
                Ok(events)
            }
            C::Delete => {
                if self.deleted {
                    return Ok(vec![]);
                }
                let mut events = self.decide(C::Kill {
                    reason: "deleted by a client".into(),
                })?;
                events.push(Event::JobDeleted);
                Ok(events)
            }
            C::Finish {
                attempt,
                outcome,
                exit_code,
            } => {
                if attempt != self.attempt || self.state.is_terminal() {
                    return Ok(vec![]);
                }
                Ok(self.finish_events(attempt, outcome, exit_code))
            }
            C::SubmitStatement { kind, code } => {
                self.require_session()?;
                if self.kill_requested
                    || !matches!(
                        self.state,
                        JobState::NotStarted
                            | JobState::Starting
                            | JobState::Idle
                            | JobState::Busy
                            | JobState::Recovering
                    )
                {
                    return Err(DomainError::SessionNotAccepting {
                        job: self.id,
                        state: self.state,
                    });
                }
                Ok(vec![Event::StatementSubmitted {
                    statement: self.next_statement_id(),
                    kind,
                    code,
                }])
            }
            C::StatementStarted { statement } => {
                let s = self.statement_state(statement)?;
                if s != StatementState::Waiting {
                    return Ok(vec![]);
                }
                Ok(vec![Event::StatementStarted { statement }])
            }
            C::CompleteStatement {
                statement,
                output,
                cancelled,
            } => {
                let s = self.statement_state(statement)?;
                if s.is_terminal() {
                    return Ok(vec![]);
                }
                Ok(vec![if cancelled {
                    Event::StatementCancelled { statement }
                } else {
                    Event::StatementCompleted { statement, output }
                }])
            }
            C::CancelStatement { statement } => {
                let s = self.statement_state(statement)?;
                match s {
                    StatementState::Waiting | StatementState::Running => {
                        Ok(vec![Event::StatementCancelRequested { statement }])
                    }
                    StatementState::Cancelling => Ok(vec![]),
                    StatementState::Available | StatementState::Cancelled => {
                        Err(DomainError::StatementIllegal {
                            job: self.id,
                            statement,
                            state: s,
                            action: "cancel",
                        })
                    }
                }
            }
            C::Touch => {
                self.require_session()?;
                if self.state.is_terminal() {
                    return Err(self.illegal("use"));
                }
                Ok(vec![Event::SessionActivity])
            }
            C::Queue { reason } => {
                if self.state != JobState::NotStarted
                    || self.kill_requested
                    || self.reason.as_deref() == Some(reason.as_str())
                {
                    return Ok(vec![]);
                }
                Ok(vec![Event::JobQueued { reason }])
            }
        }
    }

    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::JobIllegal {
            job: self.id,
            state: self.state,
            action,
        }
    }

    /// Ending a driver also ends every statement still in flight, with an error that says so.
    fn finish_events(
        &self,
        attempt: Attempt,
        outcome: Outcome,
        exit_code: Option<i32>,
    ) -> Vec<Event> {
        let reason = match &outcome {
            Outcome::Succeeded => "the session ended".to_string(),
            Outcome::Failed { reason } | Outcome::Killed { reason } | Outcome::Error { reason } => {
                reason.clone()
            }
        };
        let mut events: Vec<Event> = self
            .active_statements()
            .map(|statement| Event::StatementCompleted {
                statement,
                output: StatementOutput::Error {
                    execution_count: statement.0,
                    ename: "SessionTerminated".into(),
                    evalue: format!(
                        "the session's driver ended before the statement finished: {reason}"
                    ),
                    traceback: vec![],
                },
            })
            .collect();
        events.push(Event::JobFinished {
            attempt,
            outcome,
            exit_code,
        });
        events
    }

    /// Folds one event into the job. Facts are never refused: an event that would be an
    /// illegal move (it can only come from an older writer) leaves the state unchanged.
    pub fn apply(&mut self, env: &Envelope) -> Applied {
        if env.position <= self.applied && self.version > 0 {
            return Applied::AlreadyApplied;
        }
        if let Some(term) = env.leader_term() {
            if term < self.max_term {
                self.applied = env.position;
                return Applied::Fenced;
            }
            self.max_term = term;
        }
        self.applied = env.position;
        self.version += 1;
        let at = env.at_ms;
        match &env.event {
            Event::JobSubmitted { .. } | Event::SchedulerMarker { .. } => {}
            Event::JobScheduled {
                attempt,
                driver_name,
                secret_digest,
            } => {
                self.attempt = *attempt;
                self.driver_name = Some(driver_name.clone());
                self.secret_digest = secret_digest.clone();
                self.driver_id = None;
                if !self.kill_requested {
                    // The reason it waited, if one was recorded, is over.
                    self.reason = None;
                }
                self.move_to(JobState::Starting);
            }
            Event::DriverLaunched { attempt, driver_id } if *attempt == self.attempt => {
                self.driver_id = Some(driver_id.clone());
                self.started_at_ms.get_or_insert(at);
                if !self.is_session() {
                    self.move_to(JobState::Running);
                }
            }
            Event::AppIdentified {
                attempt,
                app_id,
                spark_ui_url,
            } if *attempt == self.attempt => {
                self.app_id = Some(app_id.clone());
                self.spark_ui_url = spark_ui_url.clone();
            }
            Event::SessionReady { attempt } if *attempt == self.attempt => {
                self.reason = None;
                let to = self.ready_state();
                self.move_to(to);
                if to == JobState::Idle {
                    self.idle_since_ms = Some(at);
                }
            }
            Event::SessionRecovering { attempt, reason } if *attempt == self.attempt => {
                self.reason = Some(reason.clone());
                self.move_to(JobState::Recovering);
            }
            Event::KillRequested { reason } => {
                self.kill_requested = true;
                self.reason = Some(reason.clone());
                if self.is_session() && self.state.is_active() {
                    self.move_to(JobState::ShuttingDown);
                }
            }
            Event::JobDeleted => self.deleted = true,
            Event::JobFinished {
                attempt,
                outcome,
                exit_code,
            } if *attempt == self.attempt => {
                let to = match outcome {
                    Outcome::Succeeded if self.can_move_to(JobState::Success) => JobState::Success,
                    // A session's driver that ended without being asked to is dead (as in Livy),
                    // and a job that never started cannot have succeeded.
                    Outcome::Succeeded => JobState::Dead,
                    Outcome::Failed { .. } => JobState::Dead,
                    Outcome::Killed { .. } => JobState::Killed,
                    Outcome::Error { .. } if self.is_session() => JobState::Error,
                    Outcome::Error { .. } => JobState::Dead,
                };
                // A kill that raced a normal exit still ends as killed (Livy does the same).
                let to = if self.kill_requested && to != JobState::Success {
                    JobState::Killed
                } else {
                    to
                };
                match outcome {
                    Outcome::Succeeded => {}
                    Outcome::Failed { reason }
                    | Outcome::Killed { reason }
                    | Outcome::Error { reason } => {
                        if !(self.kill_requested && self.reason.is_some()) {
                            self.reason = Some(reason.clone());
                        }
                    }
                }
                self.exit_code = *exit_code;
                self.finished_at_ms = Some(at);
                self.idle_since_ms = None;
                self.move_to(to);
            }
            // A duplicate id (a racing writer) is no new statement: it must not make us busy.
            Event::StatementSubmitted { statement, .. }
                if statement.0 as usize == self.statements.len() =>
            {
                self.statements.push(StatementState::Waiting);
                self.last_activity_ms = at;
                self.idle_since_ms = None;
                if self.state == JobState::Idle {
                    self.move_to(JobState::Busy);
                }
            }
            Event::StatementStarted { statement } => {
                self.set_statement(*statement, StatementState::Running)
            }
            Event::StatementCompleted { statement, .. } => {
                self.set_statement(*statement, StatementState::Available);
                self.settle(at);
            }
            Event::StatementCancelRequested { statement } => {
                self.set_statement(*statement, StatementState::Cancelling)
            }
            Event::StatementCancelled { statement } => {
                self.set_statement(*statement, StatementState::Cancelled);
                self.settle(at);
            }
            Event::SessionActivity => self.last_activity_ms = at,
            Event::JobQueued { reason }
                if self.state == JobState::NotStarted && !self.kill_requested =>
            {
                self.reason = Some(reason.clone());
            }
            // Events of an older attempt, and duplicate statement submissions.
            Event::StatementSubmitted { .. }
            | Event::DriverLaunched { .. }
            | Event::AppIdentified { .. }
            | Event::SessionReady { .. }
            | Event::SessionRecovering { .. }
            | Event::JobFinished { .. }
            | Event::JobQueued { .. } => {}
            // Not job events: a job's history never holds them.
            Event::ClusterRegistered { .. }
            | Event::ClusterUpdated { .. }
            | Event::ClusterRemoved { .. } => {}
        }
        Applied::Yes
    }

    fn set_statement(&mut self, id: StatementId, to: StatementState) {
        if let Some(s) = self.statements.get_mut(id.0 as usize) {
            if s.can_move_to(to) {
                *s = to;
            }
        }
    }

    /// A busy session whose last statement ended goes idle.
    fn settle(&mut self, at: i64) {
        if self.state == JobState::Busy && self.ready_state() == JobState::Idle {
            self.move_to(JobState::Idle);
            self.idle_since_ms = Some(at);
        }
    }

    fn move_to(&mut self, to: JobState) {
        if self.state != to && self.can_move_to(to) {
            self.state = to;
        }
    }
}
