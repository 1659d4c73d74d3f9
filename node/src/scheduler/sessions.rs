//! Session lifetimes, enforced by the scheduler on the drivers it watches: heartbeats, the
//! reconnect grace after a restart, Livy's `ttl` and `idleTimeout`; and how a driver's exit
//! reads as a job outcome.

use super::Scheduler;
use kindling_events::{Command, Job, JobId, JobState, Outcome};
use std::time::Duration;
use tokio::time::Instant;

impl Scheduler {
    /// Heartbeats, reconnect grace, ttl and idle timeout of running sessions.
    pub(super) async fn check_sessions(&mut self) {
        let now_ms = self.core.clock.now_ms();
        let ids: Vec<JobId> = self.running.keys().copied().collect();
        for id in ids {
            let Ok(job) = self.core.job(id).await else {
                continue;
            };
            let Some(session) = job.spec.session().cloned() else {
                continue;
            };
            if job.kill_requested || job.state.is_terminal() {
                continue;
            }
            if let Some(ttl) = &session.ttl {
                if now_ms - job.last_activity_ms > ttl.millis as i64 {
                    self.exec(
                        id,
                        Command::Kill {
                            reason: format!(
                                "the session's ttl of {} passed without activity",
                                ttl.text
                            ),
                        },
                    )
                    .await;
                    continue;
                }
            }
            if let (Some(idle), Some(since), JobState::Idle) =
                (&session.idle_timeout, job.idle_since_ms, job.state)
            {
                if now_ms - since > idle.millis as i64 {
                    self.exec(
                        id,
                        Command::Kill {
                            reason: format!("the session was idle for longer than {}", idle.text),
                        },
                    )
                    .await;
                    continue;
                }
            }
            let Some(r) = self.running.get_mut(&id) else {
                continue;
            };
            let away = r
                .disconnected
                .observe(job.state == JobState::Recovering, Instant::now());
            match job.state {
                JobState::Idle | JobState::Busy => match self.gateway.last_seen(id, job.attempt) {
                    Some(seen) if seen.elapsed() > self.cfg.heartbeat_timeout => {
                        let reason = format!(
                            "the driver sent no heartbeat for {} s",
                            self.cfg.heartbeat_timeout.as_secs()
                        );
                        self.doom(id, reason).await;
                    }
                    Some(_) => {}
                    None => {
                        self.exec(
                            id,
                            Command::SessionRecovering {
                                attempt: job.attempt,
                                reason: "the driver is not connected; waiting for it to reconnect"
                                    .into(),
                            },
                        )
                        .await;
                    }
                },
                JobState::Recovering if away > Some(self.cfg.recovery_grace) => {
                    let reason = format!(
                        "the driver did not reconnect within {} s",
                        self.cfg.recovery_grace.as_secs()
                    );
                    self.doom(id, reason).await;
                }
                _ => {}
            }
        }
    }
}

/// How long a session's driver has been away, as this scheduler saw it: from the first check
/// that found the session recovering until one that finds it otherwise. A driver that
/// reconnected gets the whole grace again when it next loses its link.
#[derive(Debug, Default)]
pub(super) struct Disconnected {
    since: Option<Instant>,
}

impl Disconnected {
    /// One check's view at `now`: while `recovering`, how long the driver has been away;
    /// otherwise (it reconnected, or never lost its link) `None`, and the count starts over.
    fn observe(&mut self, recovering: bool, now: Instant) -> Option<Duration> {
        if !recovering {
            self.since = None;
            return None;
        }
        Some(now.saturating_duration_since(*self.since.get_or_insert(now)))
    }
}

/// A failed or errored outcome with the cluster's own word on the end appended (e.g.
/// `OOMKilled`), so the job's reason says why the driver died, not only its exit code.
pub(super) fn with_cause(outcome: Outcome, cause: Option<String>) -> Outcome {
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
pub(super) fn ended_outcome(job: &Job, exit_code: Option<i32>, when: Option<&str>) -> Outcome {
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
            reason: format!("the driver exited with {code}{when}; see the batch log"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_that_reconnected_gets_the_whole_grace_when_it_is_next_away() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut d = Disconnected::default();
        assert_eq!(d.observe(false, at(0)), None);
        assert_eq!(d.observe(true, at(10)), Some(Duration::ZERO));
        assert_eq!(d.observe(true, at(25)), Some(Duration::from_secs(15)));
        // Back (idle) at 30 s; away again two minutes later: counted from then, not from 10 s.
        assert_eq!(d.observe(false, at(30)), None);
        assert_eq!(d.observe(false, at(100)), None);
        assert_eq!(d.observe(true, at(150)), Some(Duration::ZERO));
        assert_eq!(d.observe(true, at(151)), Some(Duration::from_secs(1)));
    }
}
