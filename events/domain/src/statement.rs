//! A statement as the read side shows it: code, state, output. Statement documents are
//! projections of the statement events of one session.

use crate::event::{Envelope, Event, StatementOutput};
use crate::ids::{JobId, LogPosition, StatementId};
use crate::spec::SessionKind;
use crate::state::StatementState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub job: JobId,
    pub id: StatementId,
    pub kind: SessionKind,
    pub code: String,
    pub state: StatementState,
    pub output: Option<StatementOutput>,
    pub submitted_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    /// The last log position reflected in this document.
    pub applied: LogPosition,
}

impl Statement {
    /// Applies one statement event. Returns false when the envelope is already reflected or
    /// does not concern a statement; a missing document is created by `StatementSubmitted`.
    pub fn apply(doc: &mut Option<Statement>, env: &Envelope) -> bool {
        let Some(job) = env.job() else { return false };
        if let Some(d) = doc.as_ref() {
            if env.position <= d.applied {
                return false;
            }
        }
        match (&env.event, doc.as_mut()) {
            (
                Event::StatementSubmitted {
                    statement,
                    kind,
                    code,
                },
                None,
            ) => {
                *doc = Some(Statement {
                    job,
                    id: *statement,
                    kind: *kind,
                    code: code.clone(),
                    state: StatementState::Waiting,
                    output: None,
                    submitted_at_ms: env.at_ms,
                    started_at_ms: None,
                    completed_at_ms: None,
                    applied: env.position,
                });
                true
            }
            (Event::StatementStarted { .. }, Some(d)) => {
                d.move_to(StatementState::Running);
                d.started_at_ms.get_or_insert(env.at_ms);
                d.applied = env.position;
                true
            }
            (Event::StatementCompleted { output, .. }, Some(d)) => {
                // A completion that lost a race with a cancel leaves the cancelled statement be.
                if d.move_to(StatementState::Available) {
                    d.output = Some(output.clone());
                    d.completed_at_ms = Some(env.at_ms);
                }
                d.applied = env.position;
                true
            }
            (Event::StatementCancelRequested { .. }, Some(d)) => {
                d.move_to(StatementState::Cancelling);
                d.applied = env.position;
                true
            }
            (Event::StatementCancelled { .. }, Some(d)) => {
                d.move_to(StatementState::Cancelled);
                d.completed_at_ms = Some(env.at_ms);
                d.applied = env.position;
                true
            }
            _ => false,
        }
    }

    /// Moves to `to` if that is a legal move; returns whether it did.
    fn move_to(&mut self, to: StatementState) -> bool {
        let legal = self.state.can_move_to(to);
        if legal {
            self.state = to;
        }
        legal
    }

    /// Livy's `progress`: 0.0 until the statement ends, then 1.0.
    pub fn progress(&self) -> f64 {
        if self.state.is_terminal() {
            1.0
        } else {
            0.0
        }
    }
}
