//! Taking over: every job that was active when this scheduler took over is settled (drivers
//! still running are watched again, drivers that ended are recorded as ended, launches that
//! provably did not happen are issued again), and so are the drivers of a cluster whose
//! configuration changed, which its rebuilt backend must watch.

use super::lanes::Op;
use super::sessions::ended_outcome;
use super::{Phase, Running, Scheduler, FIND_RETRY};
use crate::backend::Found;
use crate::metrics;
use kindling_events::{Attempt, Command, Event, JobId, JobState, Outcome};
use tokio::time::Instant;

impl Scheduler {
    /// Settles every job that was active when this scheduler took over.
    pub(super) async fn recover(&mut self) -> crate::error::Result<()> {
        let jobs = self.core.active_jobs().await?;
        // The projections reflect the log up to `next` now (and maybe beyond: folding an
        // event twice is a no-op).
        self.registry = self.core.projections.registry().await?;
        for job in jobs {
            if job.state == JobState::NotStarted {
                if !job.kill_requested {
                    self.queued.insert(job.id, job.spec.clone());
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
                self.finish(job.id, job.attempt, Outcome::Error { reason })
                    .await;
                continue;
            };
            self.running.insert(
                job.id,
                Running::new(
                    &job,
                    &cluster,
                    name.clone(),
                    Phase::Finding { retry_at: None },
                ),
            );
            self.lanes.send(
                &cluster,
                Op::Find {
                    job: job.id,
                    attempt: job.attempt,
                    driver_name: name,
                },
            );
        }
        Ok(())
    }

    /// What a lookup found, for a job being recovered (or whose cluster changed).
    pub(super) async fn on_found(
        &mut self,
        id: JobId,
        attempt: Attempt,
        found: Result<Found, String>,
    ) {
        match self.running.get(&id) {
            Some(r) if r.attempt == attempt && matches!(r.phase, Phase::Finding { .. }) => {}
            _ => return,
        }
        let Ok(job) = self.core.job(id).await else {
            return;
        };
        match found {
            Ok(Found::Running { driver_id }) => {
                tracing::info!(job = id.0, "driver still runs; watching it again");
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Watched;
                }
                self.exec(id, Command::DriverLaunched { attempt, driver_id })
                    .await;
                if job.kill_requested || job.state.is_terminal() {
                    self.kill(id).await;
                } else if job.is_session()
                    && matches!(job.state, JobState::Idle | JobState::Busy)
                    && self.gateway.last_seen(id, attempt).is_none()
                {
                    self.exec(
                        id,
                        Command::SessionRecovering {
                            attempt,
                            reason: "the node restarted; waiting for the driver to reconnect"
                                .into(),
                        },
                    )
                    .await;
                }
            }
            Ok(Found::Ended { exit_code }) => {
                self.running.remove(&id);
                let outcome = ended_outcome(&job, exit_code, Some("while no node was watching it"));
                self.exec(
                    id,
                    Command::Finish {
                        attempt,
                        outcome,
                        exit_code,
                    },
                )
                .await;
            }
            Ok(Found::Never) => {
                if job.state.is_terminal() {
                    self.running.remove(&id);
                    return;
                }
                if job.kill_requested {
                    self.running.remove(&id);
                    // Killed before its driver started: no driver will ever report an end.
                    tracing::info!(job = id.0, "killed before its launch happened");
                    self.finish(id, attempt, ended_outcome(&job, None, None))
                        .await;
                    return;
                }
                // The launch provably did not happen: issue it again, same attempt, once a
                // quorum confirms this node still leads; if none does, look again later.
                if self.core.confirm_leading().await.is_err() {
                    self.find_later(id);
                    return;
                }
                self.running.remove(&id);
                tracing::info!(job = id.0, "re-issuing a launch that never happened");
                self.start_driver(&job).await;
            }
            Err(e) => {
                tracing::warn!(job = id.0, error = %e, "cannot look for the driver; trying again");
                self.find_later(id);
            }
        }
    }

    /// Looks `id`'s driver up again once `FIND_RETRY` has passed.
    pub(super) fn find_later(&mut self, id: JobId) {
        if let Some(r) = self.running.get_mut(&id) {
            r.phase = Phase::Finding {
                retry_at: Some(Instant::now() + FIND_RETRY),
            };
        }
    }

    /// Looks up again the drivers whose lookup failed a while ago.
    pub(super) fn retry_finds(&mut self) {
        let now = Instant::now();
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
        for (job, attempt, cluster, driver_name) in due {
            if let Some(c) = self.cluster(&cluster) {
                let op = Op::Find {
                    job,
                    attempt,
                    driver_name,
                };
                self.lanes.send(&c, op);
            }
        }
    }

    /// A cluster changed: its next call builds a backend for the new configuration, and the
    /// drivers it runs are looked up there, so the new backend watches them.
    pub(super) fn on_registry_change(&mut self, event: &Event) {
        match event {
            Event::ClusterUpdated { name, .. } => {
                let Some(cluster) = self.cluster(name) else {
                    return;
                };
                let mine: Vec<JobId> = self
                    .running
                    .iter()
                    .filter(|(_, r)| r.cluster == *name && matches!(r.phase, Phase::Watched))
                    .map(|(id, _)| *id)
                    .collect();
                tracing::info!(cluster = %name, drivers = mine.len(), "cluster updated; watching its drivers with the new configuration");
                for id in mine {
                    let Some(r) = self.running.get_mut(&id) else {
                        continue;
                    };
                    r.phase = Phase::Finding { retry_at: None };
                    let op = Op::Find {
                        job: id,
                        attempt: r.attempt,
                        driver_name: r.driver_name.clone(),
                    };
                    self.lanes.send(&cluster, op);
                }
            }
            Event::ClusterRemoved { name } => {
                tracing::info!(cluster = %name, "cluster removed");
                metrics::cluster_load(name, 0, 0);
                self.lanes.close(name);
                self.backends.forget(name);
            }
            _ => {}
        }
    }
}
