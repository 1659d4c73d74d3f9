//! What a standalone driver's state means to Kindling: its phase and, once it has ended, the
//! exit code reported for it. Pure; no I/O.

/// Exit code reported for FAILED: the master records only that the exit was non-zero.
pub const EXIT_FAILED: i32 = 1;
/// Exit code reported for KILLED: the worker stops a killed driver with SIGTERM (128 + 15).
pub const EXIT_KILLED: i32 = 143;

/// What Kindling makes of a standalone driver state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverPhase {
    /// Not running on a worker yet: SUBMITTED (queued for a worker), UNKNOWN (a recovered
    /// master waiting for the driver's worker to come back).
    Pending,
    Running,
    /// RELAUNCHING: the worker of a supervised driver (`spark.driver.supervise`) was lost. This
    /// id is over; the master submitted the same driver again under a new id.
    Replaced,
    Ended {
        exit_code: Option<i32>,
    },
}

impl DriverPhase {
    /// Whether this driver id can still run.
    pub(crate) fn live(self) -> bool {
        matches!(self, DriverPhase::Pending | DriverPhase::Running)
    }
}

/// Maps a driver state (Spark's `DriverState`) to a phase and, once ended, an exit code:
/// - FINISHED: exited with 0 → `Some(0)`;
/// - FAILED: exited non-zero → `Some(EXIT_FAILED)` (the master keeps no code);
/// - KILLED: stopped on request (REST kill, UI) → `Some(EXIT_KILLED)`;
/// - ERROR: the worker could not start the driver (e.g. `appResource` unreadable) or was lost
///   while the driver ran unsupervised; no process exit status exists → `None`;
/// - RELAUNCHING: not an end; the driver lives on under another id (see [`DriverPhase`]).
///
/// An unrecognised state counts as pending: only a state known to be final ends a driver.
pub fn driver_phase(state: &str) -> DriverPhase {
    let ended = |exit_code| DriverPhase::Ended { exit_code };
    match state {
        "RUNNING" => DriverPhase::Running,
        "RELAUNCHING" => DriverPhase::Replaced,
        "FINISHED" => ended(Some(0)),
        "FAILED" => ended(Some(EXIT_FAILED)),
        "KILLED" => ended(Some(EXIT_KILLED)),
        "ERROR" => ended(None),
        _ => DriverPhase::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_states_map_to_phases_and_exit_codes() {
        let ended = |exit_code| DriverPhase::Ended { exit_code };
        for (state, phase) in [
            ("SUBMITTED", DriverPhase::Pending),
            ("RELAUNCHING", DriverPhase::Replaced),
            ("UNKNOWN", DriverPhase::Pending),
            ("RUNNING", DriverPhase::Running),
            ("FINISHED", ended(Some(0))),
            ("FAILED", ended(Some(EXIT_FAILED))),
            ("KILLED", ended(Some(EXIT_KILLED))),
            ("ERROR", ended(None)),
            ("SOMETHING_NEW", DriverPhase::Pending),
        ] {
            assert_eq!(driver_phase(state), phase, "{state}");
        }
    }
}
