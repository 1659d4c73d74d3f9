//! What comes back to the engine: a backend's report on a driver, a job the runtime read, a
//! confirmation of the leadership. Each goes to the decision that asked for it.

use super::sessions::{ended_outcome, with_cause};
use super::{Action, Confirm, Engine, Loaded, Need, Phase};
use crate::error::Result;
use kindling_backend::BackendEvent;
use kindling_events::{Command, JobId, Outcome};

impl Engine {
    /// What a backend reported about a driver. Reports on a driver whose launch has not been
    /// answered yet wait for that answer: it records the driver they are about.
    pub fn on_backend_event(&mut self, ev: BackendEvent) -> Vec<Action> {
        let job = match &ev {
            BackendEvent::AppIdentified { job, .. } | BackendEvent::Exited { job, .. } => *job,
        };
        if let Some(r) = self.running.get_mut(&job) {
            if let Phase::Launching { early } = &mut r.phase {
                early.push(ev);
                return vec![];
            }
        }
        match ev {
            BackendEvent::AppIdentified {
                job,
                attempt,
                app_id,
                spark_ui_url,
            } => vec![Action::Command {
                job,
                cmd: Command::AppIdentified {
                    attempt,
                    app_id,
                    spark_ui_url,
                },
            }],
            BackendEvent::Exited {
                job,
                attempt,
                exit_code,
                reason: cause,
            } => {
                let doomed = match self.running.get(&job) {
                    Some(r) if r.attempt == attempt => {
                        self.running.remove(&job).and_then(|r| r.doomed)
                    }
                    _ => None,
                };
                vec![
                    Action::ShutdownLink {
                        job,
                        reason: "the driver exited",
                    },
                    Action::Load {
                        job,
                        need: Need::Exited {
                            attempt,
                            exit_code,
                            cause,
                            doomed,
                        },
                    },
                ]
            }
        }
    }

    /// The answer to [`Action::Load`]. A job that cannot be read is decided on no further,
    /// except a launch's, which goes back in the queue.
    pub fn on_loaded(&mut self, id: JobId, need: Need, loaded: Result<Loaded>) -> Vec<Action> {
        if let Need::Launch { spec } = need {
            return self.launch_loaded(id, spec, loaded);
        }
        let Ok(loaded) = loaded else {
            return vec![];
        };
        match need {
            Need::Launch { .. } => unreachable!("handled above"),
            Need::Exited {
                attempt,
                exit_code,
                cause,
                doomed,
            } => {
                let job = &loaded.job;
                let outcome = match doomed {
                    Some(reason) if !job.kill_requested => Outcome::Failed { reason },
                    _ => with_cause(ended_outcome(job, exit_code, None), cause),
                };
                vec![Action::Command {
                    job: id,
                    cmd: Command::Finish {
                        attempt,
                        outcome,
                        exit_code,
                    },
                }]
            }
            Need::Found {
                attempt,
                found,
                now,
            } => self.found(loaded, attempt, found, now),
            Need::SessionCheck { now, now_ms } => self.check_session(loaded, now, now_ms),
            Need::Retry => {
                self.wait_for_retry(&loaded.job);
                vec![Action::CountRetry {
                    cluster: loaded.job.spec.cluster().to_string(),
                }]
            }
        }
    }

    /// The answer to [`Action::ConfirmLeadership`].
    pub fn on_confirmed(&mut self, confirm: Confirm, confirmed: bool) -> Vec<Action> {
        match confirm {
            Confirm::Round(round) => self.carry_out(round, confirmed),
            Confirm::Reissue { job, now } => self.reissue(job, confirmed, now),
        }
    }
}
