//! Livy's state strings, exactly, and the legal moves between them. A job's state only moves
//! forward; the one cycle is a ready session going idle <-> busy (and through `recovering`
//! while its driver reconnects).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    NotStarted,
    Starting,
    Recovering,
    Idle,
    Running,
    Busy,
    ShuttingDown,
    Error,
    Dead,
    Killed,
    Success,
}

impl JobState {
    pub const ALL: [JobState; 11] = [
        JobState::NotStarted,
        JobState::Starting,
        JobState::Recovering,
        JobState::Idle,
        JobState::Running,
        JobState::Busy,
        JobState::ShuttingDown,
        JobState::Error,
        JobState::Dead,
        JobState::Killed,
        JobState::Success,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::NotStarted => "not_started",
            JobState::Starting => "starting",
            JobState::Recovering => "recovering",
            JobState::Idle => "idle",
            JobState::Running => "running",
            JobState::Busy => "busy",
            JobState::ShuttingDown => "shutting_down",
            JobState::Error => "error",
            JobState::Dead => "dead",
            JobState::Killed => "killed",
            JobState::Success => "success",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Error | JobState::Dead | JobState::Killed | JobState::Success
        )
    }

    /// Whether a driver may exist for a job in this state.
    pub fn is_active(self) -> bool {
        !self.is_terminal() && self != JobState::NotStarted
    }

    /// The legal moves of a batch.
    pub fn batch_can_move_to(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (NotStarted, Starting | Killed | Dead)
                | (Starting, Running | Success | Dead | Killed)
                | (Running, Success | Dead | Killed)
        )
    }

    /// The legal moves of an interactive session.
    pub fn session_can_move_to(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (NotStarted, Starting | Killed | Dead | Error)
                | (Starting, Idle | Busy | ShuttingDown | Error | Dead | Killed)
                | (
                    Idle,
                    Busy | Recovering | ShuttingDown | Dead | Error | Killed
                )
                | (
                    Busy,
                    Idle | Recovering | ShuttingDown | Dead | Error | Killed
                )
                | (
                    Recovering,
                    Idle | Busy | ShuttingDown | Dead | Error | Killed
                )
                | (ShuttingDown, Killed | Dead | Success | Error)
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Livy's statement states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatementState {
    Waiting,
    Running,
    Available,
    Cancelling,
    Cancelled,
}

impl StatementState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatementState::Waiting => "waiting",
            StatementState::Running => "running",
            StatementState::Available => "available",
            StatementState::Cancelling => "cancelling",
            StatementState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, StatementState::Available | StatementState::Cancelled)
    }

    pub fn can_move_to(self, to: StatementState) -> bool {
        use StatementState::*;
        matches!(
            (self, to),
            (Waiting, Running | Cancelling | Cancelled | Available)
                | (Running, Available | Cancelling | Cancelled)
                | (Cancelling, Cancelled | Available)
        )
    }
}

impl fmt::Display for StatementState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_livys() {
        let all: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            all,
            [
                "not_started",
                "starting",
                "recovering",
                "idle",
                "running",
                "busy",
                "shutting_down",
                "error",
                "dead",
                "killed",
                "success"
            ]
        );
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn terminal_states_never_move() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in JobState::ALL {
                assert!(!from.batch_can_move_to(to), "{from} -> {to}");
                assert!(!from.session_can_move_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn batches_never_go_back() {
        assert!(!JobState::Running.batch_can_move_to(JobState::Starting));
        assert!(!JobState::Starting.batch_can_move_to(JobState::NotStarted));
        assert!(!JobState::Running.batch_can_move_to(JobState::Idle));
    }

    #[test]
    fn statements_only_move_forward() {
        use StatementState::*;
        assert!(Waiting.can_move_to(Running));
        assert!(!Running.can_move_to(Waiting));
        assert!(!Available.can_move_to(Running));
        assert!(!Cancelled.can_move_to(Available));
    }
}
