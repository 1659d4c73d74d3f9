//! Session lifetimes, enforced on the drivers the scheduler watches: heartbeats, the reconnect
//! grace after a restart, Livy's `ttl` and `idleTimeout`; and how a driver's exit reads as a
//! job outcome.

use super::{Action, Engine, Loaded, Need};
use kindling_events::{Command, Job, JobState, Outcome};
use std::time::Instant;

impl Engine {
    /// A tick: every running driver's session is looked at (its job read first), then the
    /// lookups that failed a while ago are tried again.
    pub fn on_tick(&mut self, now: Instant, now_ms: i64) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .running
            .keys()
            .map(|id| Action::Load {
                job: *id,
                need: Need::SessionCheck { now, now_ms },
            })
            .collect();
        out.extend(self.retry_finds(now));
        out
    }

    /// Heartbeats, reconnect grace, ttl and idle timeout of one running session.
    pub(super) fn check_session(
        &mut self,
        loaded: Loaded,
        now: Instant,
        now_ms: i64,
    ) -> Vec<Action> {
        let Loaded { job, last_seen } = loaded;
        let id = job.id;
        let Some(session) = job.spec.session().cloned() else {
            return vec![];
        };
        if job.kill_requested || job.state.is_terminal() {
            return vec![];
        }
        if let Some(ttl) = &session.ttl {
            if now_ms - job.last_activity_ms > ttl.millis as i64 {
                let reason = format!("the session's ttl of {} passed without activity", ttl.text);
                return vec![kill(id, reason)];
            }
        }
        if let (Some(idle), Some(since), JobState::Idle) =
            (&session.idle_timeout, job.idle_since_ms, job.state)
        {
            if now_ms - since > idle.millis as i64 {
                let reason = format!("the session was idle for longer than {}", idle.text);
                return vec![kill(id, reason)];
            }
        }
        let Some(r) = self.running.get_mut(&id) else {
            return vec![];
        };
        let away = r
            .disconnected
            .observe(job.state == JobState::Recovering, now);
        let (heartbeat, grace) = (self.cfg.heartbeat_timeout, self.cfg.recovery_grace);
        match job.state {
            JobState::Idle | JobState::Busy => match last_seen {
                Some(seen) if now.saturating_duration_since(seen) > heartbeat => {
                    let reason =
                        format!("the driver sent no heartbeat for {} s", heartbeat.as_secs());
                    self.doom(id, reason)
                }
                Some(_) => vec![],
                None => vec![Action::Command {
                    job: id,
                    cmd: Command::SessionRecovering {
                        attempt: job.attempt,
                        reason: "the driver is not connected; waiting for it to reconnect".into(),
                    },
                }],
            },
            JobState::Recovering if away > Some(grace) => {
                let reason = format!("the driver did not reconnect within {} s", grace.as_secs());
                self.doom(id, reason)
            }
            _ => vec![],
        }
    }
}

fn kill(job: kindling_events::JobId, reason: String) -> Action {
    Action::Command {
        job,
        cmd: Command::Kill { reason },
    }
}

/// A failed or errored outcome with the cluster's own word on the end appended (e.g.
/// `OOMKilled`), so the job's reason says why the driver died, not only its exit code.
pub fn with_cause(outcome: Outcome, cause: Option<String>) -> Outcome {
    let Some(cause) = cause else { return outcome };
    match outcome {
        Outcome::Failed { reason } => Outcome::Failed {
            reason: format!("{reason} ({cause})"),
        },
        Outcome::Error { reason } => Outcome::Error {
            reason: format!("{reason} ({cause})"),
        },
        other => other,
    }
}

/// How a driver's exit reads, given what the job knew.
pub fn ended_outcome(job: &Job, exit_code: Option<i32>, when: Option<&str>) -> Outcome {
    let when = when.map(|w| format!(" {w}")).unwrap_or_default();
    if job.kill_requested {
        return Outcome::Killed {
            reason: job
                .reason
                .clone()
                .unwrap_or_else(|| "killed by a client".into()),
        };
    }
    let code = exit_code
        .map(|c| format!("code {c}"))
        .unwrap_or_else(|| "an unknown status".into());
    if job.is_session() {
        if job.state == JobState::Starting {
            return Outcome::Error {
                reason: format!("the session's driver exited with {code} before it was ready{when}; see the session log"),
            };
        }
        return Outcome::Failed {
            reason: format!("the session's driver exited with {code}{when}"),
        };
    }
    match exit_code {
        Some(0) => Outcome::Succeeded,
        _ => Outcome::Failed {
            reason: format!("the driver exited with {code}{when}"),
        },
    }
}
