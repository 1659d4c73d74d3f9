//! Launching: what `plan` decides under each cluster's capacity (launch, wait with a
//! recorded reason, or end a job that can never run), the launch request on the job's
//! cluster's lane, and what its answer means.

use super::lanes::{LaunchError, Op};
use super::{Phase, Running, Scheduler};
use crate::backend::{driver_name, LaunchSpec, SessionLink};
use crate::gateway::secret_digest;
use crate::metrics;
use kindling_events::plan::{plan, Demand, QueuedJob, RunningJob, Snapshot};
use kindling_events::spec::JobSpec;
use kindling_events::{Attempt, Command, Job, JobId, JobState, Outcome, DEFAULT_CLUSTER};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

impl Scheduler {
    pub(super) async fn launch_planned(&mut self) {
        let mut clusters = BTreeMap::new();
        clusters.insert(self.builtin.name.clone(), self.builtin.config.capacity);
        for (name, c) in &self.registry.clusters {
            clusters.insert(name.clone(), c.config.capacity);
        }
        let demand = |spec: &JobSpec| {
            let conf = match spec.cluster() {
                DEFAULT_CLUSTER => &self.builtin.config.spark_conf,
                name => match self.registry.get(name) {
                    Some(c) => &c.config.spark_conf,
                    None => &self.builtin.config.spark_conf,
                },
            };
            Demand::of(spec, conf)
        };
        let snapshot = Snapshot {
            queued: self
                .queued
                .iter()
                .map(|(id, spec)| QueuedJob {
                    id: *id,
                    owner: spec.owner.clone(),
                    cluster: spec.cluster().to_string(),
                    demand: demand(spec),
                })
                .collect(),
            running: self
                .running
                .values()
                .map(|r| RunningJob {
                    owner: r.owner.clone(),
                    cluster: r.cluster.clone(),
                    demand: r.demand,
                })
                .collect(),
            clusters,
            max_per_owner: None,
        };
        let decided = plan(&snapshot);
        let mut load: BTreeMap<&str, (usize, usize)> = snapshot
            .clusters
            .keys()
            .map(|c| (c.as_str(), (0, 0)))
            .collect();
        for r in &snapshot.running {
            load.entry(&r.cluster).or_default().0 += 1;
        }
        let cluster_of: HashMap<JobId, &str> = snapshot
            .queued
            .iter()
            .map(|q| (q.id, q.cluster.as_str()))
            .collect();
        for l in &decided.launches {
            if let Some(c) = cluster_of.get(&l.job) {
                load.entry(c).or_default().0 += 1;
            }
        }
        for (id, _) in &decided.waiting {
            if let Some(c) = cluster_of.get(id) {
                load.entry(c).or_default().1 += 1;
            }
        }
        for (cluster, (drivers, waiting)) in load {
            metrics::cluster_load(cluster, drivers, waiting);
        }
        // Wait reasons not recorded yet: each is recorded once.
        let reasons: Vec<(JobId, String)> = decided
            .waiting
            .into_iter()
            .map(|(id, reason)| (id, reason.to_string()))
            .filter(|(id, reason)| self.shown.get(id) != Some(reason))
            .collect();
        let writes =
            !decided.launches.is_empty() || !decided.refused.is_empty() || !reasons.is_empty();
        if writes && self.core.confirm_leading().await.is_err() {
            // Not confirmed (a newer term exists, or no quorum answered): decide nothing now;
            // Raft's watch moves on, or the next round confirms.
            return;
        }
        for (id, refusal) in decided.refused {
            self.queued.remove(&id);
            self.shown.remove(&id);
            tracing::warn!(job = id.0, reason = %refusal, "job cannot run");
            let reason = refusal.to_string();
            self.finish(id, Attempt(0), Outcome::Error { reason }).await;
        }
        for (id, reason) in reasons {
            self.exec(
                id,
                Command::Queue {
                    reason: reason.clone(),
                },
            )
            .await;
            self.shown.insert(id, reason);
        }
        for launch in decided.launches {
            let spec = self.queued.remove(&launch.job);
            self.shown.remove(&launch.job);
            let job = match self.core.job(launch.job).await {
                Ok(j) => j,
                Err(e @ crate::error::Error::NotFound(_)) => {
                    tracing::warn!(job = launch.job.0, error = %e, "queued job vanished");
                    continue;
                }
                Err(e) => {
                    // Not loadable now (the read barrier could not reach the log, or this node
                    // stopped leading): it stays queued for the next round, not forgotten until
                    // some later leader rebuilds its queue.
                    tracing::warn!(job = launch.job.0, error = %e, "cannot load a queued job; it stays queued");
                    if let Some(spec) = spec {
                        self.queued.insert(launch.job, spec);
                    }
                    continue;
                }
            };
            if job.state != JobState::NotStarted || job.kill_requested {
                continue;
            }
            let name = driver_name(job.id, job.attempt.next());
            let digest = if job.is_session() {
                secret_digest(&self.secret(&name))
            } else {
                String::new()
            };
            let scheduled = self
                .core
                .execute(
                    job.id,
                    self.origin(),
                    Command::Schedule {
                        driver_name: name,
                        secret_digest: digest,
                    },
                )
                .await;
            match scheduled {
                Ok((job, _)) => self.start_driver(&job).await,
                Err(e) => tracing::warn!(job = job.id.0, error = %e, "cannot schedule"),
            }
        }
    }

    pub(super) fn secret(&self, driver_name: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.cfg.secret_key);
        h.update(driver_name.as_bytes());
        hex::encode(h.finalize())
    }

    /// Asks the job's cluster to launch the driver of its current attempt; the answer comes
    /// back as a reply.
    pub(super) async fn start_driver(&mut self, job: &Job) {
        let Some(name) = job.driver_name.clone() else {
            return;
        };
        let Some(cluster) = self.cluster(job.spec.cluster()) else {
            let reason = format!(
                "cluster '{}' does not exist (it was deleted after the job was submitted)",
                job.spec.cluster()
            );
            self.finish(job.id, job.attempt, Outcome::Error { reason })
                .await;
            return;
        };
        let session = match job.is_session() {
            false => None,
            true => match self.gateway.open_route(job.id, job.attempt).await {
                Ok(kafka) => Some(SessionLink {
                    endpoints: (self.cfg.driver_endpoints)(),
                    secret: self.secret(&name),
                    kafka,
                }),
                Err(e) => {
                    let reason = format!("the session's driver route could not be opened: {e}");
                    self.finish(job.id, job.attempt, Outcome::Error { reason })
                        .await;
                    return;
                }
            },
        };
        let phase = Phase::Launching { early: vec![] };
        self.running
            .insert(job.id, Running::new(job, &cluster, name.clone(), phase));
        let spec = LaunchSpec {
            job: job.id,
            attempt: job.attempt,
            driver_name: name,
            spec: job.spec.clone(),
            session,
        };
        self.lanes.send(&cluster, Op::Launch(Box::new(spec)));
    }

    pub(super) async fn on_launched(
        &mut self,
        id: JobId,
        attempt: Attempt,
        result: Result<String, LaunchError>,
    ) {
        let early = match self.running.get_mut(&id) {
            Some(r) if r.attempt == attempt => match &mut r.phase {
                Phase::Launching { early } => std::mem::take(early),
                _ => return,
            },
            _ => return,
        };
        metrics::launch(result.is_ok());
        match result {
            Ok(driver_id) => {
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Watched;
                }
                self.exec(id, Command::DriverLaunched { attempt, driver_id })
                    .await;
                // What the backend reported while the launch was being answered.
                for ev in early {
                    self.on_backend_event(ev).await;
                }
            }
            Err(e) if e.certain => {
                self.running.remove(&id);
                tracing::warn!(job = id.0, error = %e.cause, "launch failed");
                let reason = format!("the driver could not be launched: {}", e.cause);
                self.finish(id, attempt, Outcome::Error { reason }).await;
            }
            Err(e) => {
                // The answer was lost (the cluster did not answer, or not in time): the driver
                // may run. Look it up, as after a take-over, until the cluster answers: it is
                // watched if it runs, recorded if it ended, launched again if it never
                // started. What it reported meanwhile is in what the lookup finds.
                tracing::warn!(job = id.0, error = %e.cause, "launch in doubt; looking the driver up");
                self.find_later(id);
            }
        }
    }
}
