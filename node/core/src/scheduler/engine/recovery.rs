//! Taking over: every job that was active when this scheduler took over is settled (drivers
//! still running are watched again, drivers that ended are recorded as ended, launches that
//! provably did not happen are issued again), and so are the drivers of a cluster whose
//! configuration changed, which its rebuilt backend must watch.

use super::sessions::ended_outcome;
use super::{Action, Confirm, Engine, LaneOp, Loaded, Need, Phase, Running, FIND_RETRY};
use kindling_backend::Found;
use kindling_events::{Attempt, Command, Event, Job, JobId, JobState, Outcome, Registry, Term};
use std::time::Instant;

impl Engine {
    /// Takes over in `term`, with every job that was active (as the write model holds them,
    /// behind one read barrier) and the registry as the projections hold it: queues the jobs
    /// that wait and looks up the drivers of the others.
    pub fn start(&mut self, term: Term, active: Vec<Job>, registry: Registry) -> Vec<Action> {
        self.reset(term, registry);
        let mut out = vec![];
        for job in active {
            // A failed attempt's driver has ended: the job waits for its retry.
            if job.waits_for_retry() {
                self.wait_for_retry(&job);
                continue;
            }
            if job.state == JobState::NotStarted {
                if !job.kill_requested {
                    self.queued.insert(job.id, job.spec.clone());
                    self.submitted_ms.insert(job.id, job.submitted_at_ms);
                }
                continue;
            }
            let Some(name) = job.driver_name.clone() else {
                continue;
            };
            let Some(cluster) = self.cluster(job.spec.cluster()) else {
                let reason = format!(
                    "the driver's cluster '{}' no longer exists; it cannot be found or stopped",
                    job.spec.cluster()
                );
                out.push(finish(job.id, job.attempt, Outcome::Error { reason }));
                continue;
            };
            let phase = Phase::Finding { retry_at: None };
            self.running
                .insert(job.id, Running::new(&job, &cluster, name.clone(), phase));
            out.push(Action::Lane {
                cluster,
                op: LaneOp::Find {
                    job: job.id,
                    attempt: job.attempt,
                    driver_name: name,
                },
            });
        }
        out
    }

    /// A lookup's answer: the job is read before it is decided on.
    pub fn on_found(
        &mut self,
        id: JobId,
        attempt: Attempt,
        found: Result<Found, String>,
        now: Instant,
    ) -> Vec<Action> {
        match self.running.get(&id) {
            Some(r) if r.attempt == attempt && matches!(r.phase, Phase::Finding { .. }) => {
                vec![Action::Load {
                    job: id,
                    need: Need::Found {
                        attempt,
                        found,
                        now,
                    },
                }]
            }
            _ => vec![],
        }
    }

    /// What a lookup found, for a job being recovered (or whose cluster changed).
    pub(super) fn found(
        &mut self,
        loaded: Loaded,
        attempt: Attempt,
        found: Result<Found, String>,
        now: Instant,
    ) -> Vec<Action> {
        let Loaded { job, last_seen } = loaded;
        let id = job.id;
        match found {
            Ok(Found::Running { driver_id }) => {
                tracing::info!(job = id.0, "driver still runs; watching it again");
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Watched;
                }
                let mut out = vec![Action::Command {
                    job: id,
                    cmd: Command::DriverLaunched { attempt, driver_id },
                }];
                if job.kill_requested || job.state.is_terminal() {
                    out.extend(self.kill(id));
                } else if job.is_session()
                    && matches!(job.state, JobState::Idle | JobState::Busy)
                    && last_seen.is_none()
                {
                    out.push(Action::Command {
                        job: id,
                        cmd: Command::SessionRecovering {
                            attempt,
                            reason: "the node restarted; waiting for the driver to reconnect"
                                .into(),
                        },
                    });
                }
                out
            }
            Ok(Found::Ended { exit_code }) => {
                self.running.remove(&id);
                let outcome = ended_outcome(&job, exit_code, Some("while no node was watching it"));
                vec![Action::Command {
                    job: id,
                    cmd: Command::Finish {
                        attempt,
                        outcome,
                        exit_code,
                    },
                }]
            }
            Ok(Found::Never) => {
                if job.state.is_terminal() {
                    self.running.remove(&id);
                    return vec![];
                }
                if job.kill_requested {
                    self.running.remove(&id);
                    // Killed before its driver started: no driver will ever report an end.
                    tracing::info!(job = id.0, "killed before its launch happened");
                    return vec![finish(id, attempt, ended_outcome(&job, None, None))];
                }
                // The launch provably did not happen: issue it again, same attempt, once a
                // quorum confirms this node still leads; if none does, look again later.
                vec![Action::ConfirmLeadership(Confirm::Reissue {
                    job: Box::new(job),
                    now,
                })]
            }
            Err(e) => {
                tracing::warn!(job = id.0, error = %e, "cannot look for the driver; trying again");
                self.find_later(id, now);
                vec![]
            }
        }
    }

    /// Re-issues a launch that never happened, once this node is confirmed to lead.
    pub(super) fn reissue(&mut self, job: Box<Job>, confirmed: bool, now: Instant) -> Vec<Action> {
        if !confirmed {
            self.find_later(job.id, now);
            return vec![];
        }
        self.running.remove(&job.id);
        tracing::info!(job = job.id.0, "re-issuing a launch that never happened");
        self.start_driver(&job)
    }

    /// Looks `id`'s driver up again once `FIND_RETRY` has passed.
    pub(super) fn find_later(&mut self, id: JobId, now: Instant) {
        if let Some(r) = self.running.get_mut(&id) {
            r.phase = Phase::Finding {
                retry_at: Some(now + FIND_RETRY),
            };
        }
    }

    /// Looks up again the drivers whose lookup failed a while ago.
    pub(super) fn retry_finds(&mut self, now: Instant) -> Vec<Action> {
        let due: Vec<(JobId, Attempt, String, String)> = self
            .running
            .iter_mut()
            .filter_map(|(id, r)| match &mut r.phase {
                Phase::Finding { retry_at } if retry_at.is_some_and(|t| t <= now) => {
                    *retry_at = None;
                    Some((*id, r.attempt, r.cluster.clone(), r.driver_name.clone()))
                }
                _ => None,
            })
            .collect();
        due.into_iter()
            .filter_map(|(job, attempt, cluster, driver_name)| {
                let cluster = self.cluster(&cluster)?;
                Some(Action::Lane {
                    cluster,
                    op: LaneOp::Find {
                        job,
                        attempt,
                        driver_name,
                    },
                })
            })
            .collect()
    }

    /// A cluster changed: its next call builds a backend for the new configuration, and the
    /// drivers it runs are looked up there, so the new backend watches them.
    pub(super) fn on_registry_change(&mut self, event: &Event) -> Vec<Action> {
        match event {
            Event::ClusterUpdated { name, .. } => {
                let Some(cluster) = self.cluster(name) else {
                    return vec![];
                };
                let mine: Vec<JobId> = self
                    .running
                    .iter()
                    .filter(|(_, r)| r.cluster == *name && matches!(r.phase, Phase::Watched))
                    .map(|(id, _)| *id)
                    .collect();
                tracing::info!(cluster = %name, drivers = mine.len(), "cluster updated; watching its drivers with the new configuration");
                let mut out = vec![];
                for id in mine {
                    let Some(r) = self.running.get_mut(&id) else {
                        continue;
                    };
                    r.phase = Phase::Finding { retry_at: None };
                    out.push(Action::Lane {
                        cluster: cluster.clone(),
                        op: LaneOp::Find {
                            job: id,
                            attempt: r.attempt,
                            driver_name: r.driver_name.clone(),
                        },
                    });
                }
                out
            }
            Event::ClusterRemoved { name } => {
                tracing::info!(cluster = %name, "cluster removed");
                vec![Action::ForgetCluster { name: name.clone() }]
            }
            _ => vec![],
        }
    }
}

/// Records the end of `attempt` with `outcome` (no exit code).
pub(super) fn finish(job: JobId, attempt: Attempt, outcome: Outcome) -> Action {
    Action::Command {
        job,
        cmd: Command::Finish {
            attempt,
            outcome,
            exit_code: None,
        },
    }
}
