//! How an event changes a job: [`Job::apply`] folds a fact into the state; it never
//! refuses one, and an event a newer state has passed leaves the job as it is.

use super::{Applied, AttemptEnd, Job};
use crate::event::{Envelope, Event, Outcome};
use crate::ids::StatementId;
use crate::state::{JobState, StatementState};

impl Job {
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
                self.retry_at_ms = None;
                if !self.kill_requested {
                    // The reason it waited, if one was recorded, is over.
                    self.reason = None;
                }
                self.move_to(JobState::Starting);
            }
            Event::DriverLaunched { attempt, driver_id }
                if *attempt == self.attempt && self.retry_at_ms.is_none() =>
            {
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
            } if *attempt == self.attempt && self.retry_at_ms.is_none() => {
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
                self.retry_at_ms = None;
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
            Event::JobQueued { reason } if self.waits_for_driver() && !self.kill_requested => {
                self.reason = Some(reason.clone());
            }
            Event::AttemptFailed {
                attempt,
                outcome,
                exit_code,
                backoff_ms,
            } if *attempt == self.attempt
                && !self.state.is_terminal()
                && self.retry_at_ms.is_none() =>
            {
                self.retried.push(AttemptEnd {
                    attempt: *attempt,
                    driver_name: self.driver_name.clone(),
                    app_id: self.app_id.take(),
                    started_at_ms: self.started_at_ms,
                    ended_at_ms: at,
                    outcome: outcome.clone(),
                    exit_code: *exit_code,
                });
                let why = match outcome {
                    Outcome::Failed { reason }
                    | Outcome::Error { reason }
                    | Outcome::Killed { reason } => reason.as_str(),
                    Outcome::Succeeded => "it ended",
                };
                self.reason = Some(format!(
                    "attempt {} failed ({why}); the restart policy starts attempt {} after {} ms",
                    attempt.0,
                    attempt.0 + 1,
                    backoff_ms
                ));
                self.retry_at_ms =
                    Some(at.saturating_add(i64::try_from(*backoff_ms).unwrap_or(i64::MAX)));
                self.driver_id = None;
                self.spark_ui_url = None;
                // The state stays as it was (starting, or running): as a client sees it,
                // the job is under way until its last attempt ends; it never goes back.
            }
            // Events of an older attempt, and duplicate statement submissions.
            Event::StatementSubmitted { .. }
            | Event::DriverLaunched { .. }
            | Event::AppIdentified { .. }
            | Event::SessionReady { .. }
            | Event::SessionRecovering { .. }
            | Event::JobFinished { .. }
            | Event::JobQueued { .. }
            | Event::AttemptFailed { .. } => {}
            // Not job events: a job's history never holds them.
            Event::ClusterRegistered { .. }
            | Event::ClusterUpdated { .. }
            | Event::ClusterRemoved { .. }
            | Event::TokenIssued { .. }
            | Event::TokenRevoked { .. }
            | Event::ClusterQueuesSet { .. } => {}
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
