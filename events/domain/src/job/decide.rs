//! What a command does to a job: [`Job::decide`] checks it against the job's state and
//! returns the events it causes, or refuses it with a [`DomainError`] naming the illegal move.

use super::{Command, Job};
use crate::error::{DomainError, Result};
use crate::event::{Event, Outcome, StatementOutput};
use crate::ids::Attempt;
use crate::restart::RestartPolicy;
use crate::state::{JobState, StatementState};

impl Job {
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
                // A retry's next attempt: the job keeps the state it had (it never goes back).
                if !self.waits_for_retry() {
                    self.ensure_move(JobState::Starting)?;
                }
                Ok(vec![Event::JobScheduled {
                    attempt: self.attempt.next(),
                    driver_name,
                    secret_digest,
                }])
            }
            C::DriverLaunched { attempt, driver_id } => {
                // Attempt 0 was never scheduled: no driver of it can exist.
                if !self.is_current(attempt) || attempt == Attempt(0) || self.state.is_terminal() {
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
                if !self.is_current(attempt)
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
                if self.state == JobState::NotStarted || self.waits_for_retry() {
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
                // An attempt whose retry waits has ended already.
                if attempt != self.attempt || self.state.is_terminal() || self.retry_at_ms.is_some()
                {
                    return Ok(vec![]);
                }
                if let Some(backoff_ms) = self.retry_after(attempt, &outcome, exit_code) {
                    return Ok(vec![Event::AttemptFailed {
                        attempt,
                        outcome,
                        exit_code,
                        backoff_ms,
                    }]);
                }
                Ok(self.finish_events(attempt, outcome, exit_code))
            }
            C::Refuse { reason } => {
                if !self.waits_for_driver() || self.kill_requested {
                    return Ok(vec![]);
                }
                Ok(self.finish_events(self.attempt, Outcome::Error { reason }, None))
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
                if !self.waits_for_driver()
                    || self.kill_requested
                    || self.reason.as_deref() == Some(reason.as_str())
                {
                    return Ok(vec![]);
                }
                Ok(vec![Event::JobQueued { reason }])
            }
        }
    }

    /// Whether a failed attempt's retry waits: no driver exists until the next is scheduled.
    pub fn waits_for_retry(&self) -> bool {
        self.retry_at_ms.is_some() && !self.state.is_terminal()
    }

    /// Whether the job waits for the scheduler to launch a driver: never launched yet, or a
    /// failed attempt's retry waits.
    pub fn waits_for_driver(&self) -> bool {
        self.state == JobState::NotStarted || self.waits_for_retry()
    }

    /// Whether `attempt` is the job's driver now: the last one scheduled, unless it failed
    /// and its retry waits (a late report of the failed driver changes nothing).
    fn is_current(&self, attempt: Attempt) -> bool {
        attempt == self.attempt && self.retry_at_ms.is_none()
    }

    /// How long before the next attempt, if the job's restart policy retries `attempt`
    /// after it ended with `outcome`. Sessions, and jobs a client asked to stop, never are.
    fn retry_after(
        &self,
        attempt: Attempt,
        outcome: &Outcome,
        exit_code: Option<i32>,
    ) -> Option<u64> {
        if self.is_session() || self.kill_requested {
            return None;
        }
        // A policy that cannot be read was refused at submission; none applies here.
        let policy = RestartPolicy::of(&self.spec.resources.conf)
            .ok()
            .flatten()?;
        policy.retry_after(attempt, outcome, exit_code)
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
}
