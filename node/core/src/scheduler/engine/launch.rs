//! Launching: what `plan` decides under each cluster's capacity (launch, wait with a
//! recorded reason, or end a job that can never run), and the chain of a launch once the
//! leadership is confirmed: read the job, schedule its next attempt, open a session's route,
//! launch on the job's cluster's lane, and what the lane's answer means.

use super::recovery::finish;
use super::{
    Action, Confirm, Engine, LaneOp, LaunchError, Loaded, Need, Phase, Round, Running, SessionRoute,
};
use crate::driver_secret::{secret, secret_digest};
use crate::error::{Error, Result};
use kindling_backend::{driver_name, LaunchSpec, SessionLink};
use kindling_events::plan::{plan, Demand, QueuedJob, RunningJob, Snapshot};
use kindling_events::queues::{priority_of, queue_of, user_of};
use kindling_events::{Attempt, Cluster, Command, Job, JobId, JobSpec, Outcome, DEFAULT_CLUSTER};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

impl Engine {
    /// One planning round: each cluster's load, and, if the plan writes anything (a launch,
    /// a refusal, a new wait reason), a confirmation of the leadership to carry it out after.
    pub fn plan_round(&self, now_ms: i64) -> Vec<Action> {
        let snapshot = self.snapshot(now_ms);
        let decided = plan(&snapshot);
        let mut load: BTreeMap<&str, (usize, usize, Option<i64>)> = snapshot
            .clusters
            .keys()
            .map(|c| (c.as_str(), (0, 0, None)))
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
                let entry = load.entry(c).or_default();
                entry.1 += 1;
                if let Some(&at) = self.submitted_ms.get(id) {
                    entry.2 = Some(entry.2.map_or(at, |o: i64| o.min(at)));
                }
            }
        }
        let mut out: Vec<Action> = load
            .into_iter()
            .map(
                |(cluster, (drivers, waiting, oldest_submitted_ms))| Action::ClusterLoad {
                    cluster: cluster.to_string(),
                    drivers,
                    waiting,
                    oldest_submitted_ms,
                },
            )
            .collect();
        // Wait reasons not recorded yet: each is recorded once.
        let round = Round {
            reasons: decided
                .waiting
                .into_iter()
                .map(|(id, reason)| (id, reason.to_string()))
                .filter(|(id, reason)| self.shown.get(id) != Some(reason))
                .collect(),
            refused: decided.refused,
            launches: decided.launches.into_iter().map(|l| l.job).collect(),
        };
        if !round.is_empty() {
            out.push(Action::ConfirmLeadership(Confirm::Round(round)));
        }
        out
    }

    /// A job whose failed attempt the restart policy retries: queued again, planned once
    /// its retry is due (at `now_ms` of some later round).
    pub(super) fn wait_for_retry(&mut self, job: &Job) {
        let Some(at) = job.retry_at_ms else {
            return;
        };
        if !job.waits_for_retry() || job.kill_requested {
            return;
        }
        self.queued.insert(job.id, job.spec.clone());
        self.submitted_ms.insert(job.id, at);
        self.not_before_ms.insert(job.id, at);
    }

    /// What `plan` sees at `now_ms`: the queue (but retries not due yet), what runs, and
    /// every cluster's capacity.
    fn snapshot(&self, now_ms: i64) -> Snapshot {
        let builtin = &self.cfg.builtin;
        let mut clusters = BTreeMap::new();
        clusters.insert(builtin.name.clone(), builtin.config.capacity);
        for (name, c) in &self.registry.clusters {
            clusters.insert(name.clone(), c.config.capacity);
        }
        let demand = |spec: &JobSpec| {
            let conf = match spec.cluster() {
                DEFAULT_CLUSTER => &builtin.config.spark_conf,
                name => match self.registry.get(name) {
                    Some(c) => &c.config.spark_conf,
                    None => &builtin.config.spark_conf,
                },
            };
            Demand::of(spec, conf)
        };
        Snapshot {
            queued: self
                .queued
                .iter()
                .filter(|(id, _)| self.not_before_ms.get(id).is_none_or(|at| *at <= now_ms))
                .map(|(id, spec)| QueuedJob {
                    id: *id,
                    owner: spec.owner.clone(),
                    cluster: spec.cluster().to_string(),
                    demand: demand(spec),
                    queue: queue_of(spec).to_string(),
                    user: user_of(spec).map(str::to_string),
                    // Checked when the job was accepted.
                    priority: priority_of(&spec.resources.conf).unwrap_or(0),
                })
                .collect(),
            running: self
                .running
                .values()
                .map(|r| RunningJob {
                    owner: r.owner.clone(),
                    cluster: r.cluster.clone(),
                    demand: r.demand,
                    queue: r.queue.clone(),
                    user: r.user.clone(),
                })
                .collect(),
            clusters,
            queues: self.registry.queues.clone(),
            max_per_owner: None,
        }
    }

    /// Carries out a round once this node is confirmed to lead; without the confirmation
    /// (a newer term exists, or no quorum answered) nothing is decided now: Raft's watch
    /// moves on, or the next round confirms.
    pub(super) fn carry_out(&mut self, round: Round, confirmed: bool) -> Vec<Action> {
        if !confirmed {
            return vec![];
        }
        let mut out = vec![];
        for (id, refusal) in round.refused {
            self.queued.remove(&id);
            self.submitted_ms.remove(&id);
            self.not_before_ms.remove(&id);
            self.shown.remove(&id);
            tracing::warn!(job = id.0, reason = %refusal, "job cannot run");
            let reason = refusal.to_string();
            out.push(Action::Command {
                job: id,
                cmd: Command::Refuse { reason },
            });
        }
        for (id, reason) in round.reasons {
            out.push(Action::Command {
                job: id,
                cmd: Command::Queue {
                    reason: reason.clone(),
                },
            });
            self.shown.insert(id, reason);
        }
        for id in round.launches {
            let spec = self.queued.remove(&id).map(Box::new);
            self.not_before_ms.remove(&id);
            self.shown.remove(&id);
            out.push(Action::Load {
                job: id,
                need: Need::Launch { spec },
            });
        }
        out
    }

    /// A job the plan chose to launch, as the write model holds it now.
    pub(super) fn launch_loaded(
        &mut self,
        id: JobId,
        spec: Option<Box<JobSpec>>,
        loaded: Result<Loaded>,
    ) -> Vec<Action> {
        let job = match loaded {
            Ok(l) => l.job,
            Err(e @ Error::NotFound(_)) => {
                self.submitted_ms.remove(&id);
                tracing::warn!(job = id.0, error = %e, "queued job vanished");
                return vec![];
            }
            Err(e) => {
                // Not loadable now (the read barrier could not reach the log, or this node
                // stopped leading): it stays queued for the next round, not forgotten until
                // some later leader rebuilds its queue.
                tracing::warn!(job = id.0, error = %e, "cannot load a queued job; it stays queued");
                if let Some(spec) = spec {
                    self.queued.insert(id, *spec);
                }
                return vec![];
            }
        };
        if !job.waits_for_driver() || job.kill_requested {
            self.submitted_ms.remove(&id);
            return vec![];
        }
        let name = driver_name(job.id, job.attempt.next());
        let digest = if job.is_session() {
            secret_digest(&secret(&self.cfg.secret_key, &name))
        } else {
            String::new()
        };
        self.scheduling.insert(job.id, job.spec.clone());
        vec![Action::Schedule {
            job: job.id,
            driver_name: name,
            secret_digest: digest,
        }]
    }

    /// The answer to [`Action::Schedule`]: the job with its new attempt, or why not. A job
    /// whose schedule failed goes back to the queue for the next round, which loads it again
    /// (and leaves it if it moved on meanwhile, or if the append had landed after all).
    pub fn on_scheduled(&mut self, id: JobId, scheduled: Result<Job>) -> Vec<Action> {
        let spec = self.scheduling.remove(&id);
        match scheduled {
            Ok(job) => {
                self.submitted_ms.remove(&id);
                self.start_driver(&job)
            }
            Err(e) => {
                tracing::warn!(job = id.0, error = %e, "cannot schedule; it stays queued");
                if let Some(spec) = spec {
                    self.queued.insert(id, spec);
                }
                vec![]
            }
        }
    }

    /// Launches the driver of the job's current attempt on its cluster: a session's route
    /// is opened first.
    pub(super) fn start_driver(&mut self, job: &Job) -> Vec<Action> {
        if job.driver_name.is_none() {
            return vec![];
        }
        let Some(cluster) = self.cluster(job.spec.cluster()) else {
            let reason = format!(
                "cluster '{}' does not exist (it was deleted after the job was submitted)",
                job.spec.cluster()
            );
            return vec![finish(job.id, job.attempt, Outcome::Error { reason })];
        };
        if job.is_session() {
            return vec![Action::OpenRoute {
                job: Box::new(job.clone()),
                cluster,
            }];
        }
        self.launch(job, cluster, None)
    }

    /// The answer to [`Action::OpenRoute`].
    pub fn on_route_opened(
        &mut self,
        job: Box<Job>,
        cluster: Cluster,
        route: Result<SessionRoute>,
    ) -> Vec<Action> {
        match route {
            Ok(route) => self.launch(&job, cluster, Some(route)),
            Err(e) => {
                let reason = format!("the session's driver route could not be opened: {e}");
                vec![finish(job.id, job.attempt, Outcome::Error { reason })]
            }
        }
    }

    fn launch(&mut self, job: &Job, cluster: Cluster, route: Option<SessionRoute>) -> Vec<Action> {
        let Some(name) = job.driver_name.clone() else {
            return vec![];
        };
        let session = route.map(|r| SessionLink {
            endpoints: r.endpoints,
            secret: secret(&self.cfg.secret_key, &name),
            kafka: r.kafka,
            tls: self.cfg.gateway_tls.clone(),
        });
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
        vec![Action::Lane {
            cluster,
            op: LaneOp::Launch(Box::new(spec)),
        }]
    }

    /// The lane's answer to a launch.
    pub fn on_launched(
        &mut self,
        id: JobId,
        attempt: Attempt,
        result: std::result::Result<String, LaunchError>,
        now: Instant,
    ) -> Vec<Action> {
        let early = match self.running.get_mut(&id) {
            Some(r) if r.attempt == attempt => match &mut r.phase {
                Phase::Launching { early } => std::mem::take(early),
                _ => return vec![],
            },
            _ => return vec![],
        };
        let cluster = self.running[&id].cluster.clone();
        let mut out = vec![Action::CountLaunch {
            cluster,
            ok: result.is_ok(),
        }];
        match result {
            Ok(driver_id) => {
                if let Some(r) = self.running.get_mut(&id) {
                    r.phase = Phase::Watched;
                }
                out.push(Action::Command {
                    job: id,
                    cmd: Command::DriverLaunched { attempt, driver_id },
                });
                // What the backend reported while the launch was being answered.
                for ev in early {
                    out.extend(self.on_backend_event(ev));
                }
            }
            Err(e) if e.certain => {
                self.running.remove(&id);
                tracing::warn!(job = id.0, error = %e.cause, "launch failed");
                let reason = format!("the driver could not be launched: {}", e.cause);
                out.push(finish(id, attempt, Outcome::Error { reason }));
            }
            Err(e) => {
                // The answer was lost (the cluster did not answer, or not in time): the driver
                // may run. Look it up, as after a take-over, until the cluster answers: it is
                // watched if it runs, recorded if it ended, launched again if it never
                // started. What it reported meanwhile is in what the lookup finds.
                tracing::warn!(job = id.0, error = %e.cause, "launch in doubt; looking the driver up");
                self.find_later(id, now);
            }
        }
        out
    }
}
