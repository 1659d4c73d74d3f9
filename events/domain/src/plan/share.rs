//! One cluster's part of a planning round: its queued jobs by queue and user, what its
//! queues and users run, and the fair-share choice of whose turn it is ([`ClusterRound`]).

use super::{
    never_fits, no_room, Demand, Launch, Limit, Plan, QueuedJob, Refusal, Snapshot, Usage,
    WaitReason,
};
use crate::cluster::Capacity;
use crate::queues::Queues;
use std::cmp::Ordering;
use std::collections::BTreeMap;

type User = Option<String>;

/// A job's place within its queue and user: higher priority first, then submission order.
fn turn_key(q: &QueuedJob) -> (i32, crate::ids::JobId) {
    (-q.priority, q.id)
}

/// How much of `cap` `used` takes: the largest fraction of a bounded resource (driver
/// cores, driver memory: dominant-resource fairness), or of the drivers where neither is
/// bounded, or the number of drivers where nothing is.
pub fn share(used: Usage, cap: &Capacity) -> f64 {
    let frac = |used: u64, cap: u64| used as f64 / cap as f64;
    let mut dominant: Option<f64> = None;
    if let Some(c) = cap.max_driver_cores.filter(|c| *c > 0) {
        dominant = Some(frac(used.cores, u64::from(c)));
    }
    if let Some(m) = cap.max_driver_memory_mb.filter(|m| *m > 0) {
        let m = frac(used.memory_mb, m);
        dominant = Some(dominant.map_or(m, |d| d.max(m)));
    }
    dominant.unwrap_or_else(|| match cap.max_drivers.filter(|d| *d > 0) {
        Some(d) => frac(used.drivers, u64::from(d)),
        None => used.drivers as f64,
    })
}

fn by_share(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// One cluster's decisions in a round, a launch at a time.
pub struct ClusterRound<'a> {
    cluster: &'a str,
    cap: Capacity,
    queues: Queues,
    used: Usage,
    queue_used: BTreeMap<String, Usage>,
    /// What each user runs in each queue: for the shares between a queue's users.
    user_used: BTreeMap<(String, User), Usage>,
    /// Drivers each user runs on the cluster: for the limit per user.
    user_drivers: BTreeMap<User, u32>,
    /// Waiting jobs by queue and user, each list in turn order.
    pending: BTreeMap<String, BTreeMap<User, Vec<&'a QueuedJob>>>,
    /// Set once the job whose turn it is does not fit: nothing more launches here.
    blocked: Option<Limit>,
    /// Queues whose next job would exceed the queue's limit.
    queue_full: BTreeMap<String, Limit>,
}

impl<'a> ClusterRound<'a> {
    /// The round of `cluster` (which exists) over its queued `jobs`; jobs that can never
    /// start there are refused into `out` now.
    pub fn new(
        s: &Snapshot,
        cluster: &'a str,
        jobs: Vec<&'a QueuedJob>,
        out: &mut Plan,
    ) -> ClusterRound<'a> {
        let cap = s.clusters[cluster];
        let queues = s.queues.get(cluster).cloned().unwrap_or_default();
        let mut round = ClusterRound {
            cluster,
            cap,
            queues,
            used: Usage::default(),
            queue_used: BTreeMap::new(),
            user_used: BTreeMap::new(),
            user_drivers: BTreeMap::new(),
            pending: BTreeMap::new(),
            blocked: None,
            queue_full: BTreeMap::new(),
        };
        for r in s.running.iter().filter(|r| r.cluster == cluster) {
            round.count(&r.queue, &r.user, r.demand);
        }
        for q in jobs {
            if let Some(limit) = never_fits(&round.cap, q.demand) {
                let refusal = Refusal::TooBig {
                    cluster: cluster.to_string(),
                    limit,
                    demand: q.demand,
                };
                out.refused.push((q.id, refusal));
                continue;
            }
            if let Some(limit) = never_fits(&round.queues.queue(&q.queue).limits, q.demand) {
                let refusal = Refusal::TooBigForQueue {
                    cluster: cluster.to_string(),
                    queue: q.queue.clone(),
                    limit,
                    demand: q.demand,
                };
                out.refused.push((q.id, refusal));
                continue;
            }
            let lists = round.pending.entry(q.queue.clone()).or_default();
            lists.entry(q.user.clone()).or_default().push(q);
        }
        for users in round.pending.values_mut() {
            for list in users.values_mut() {
                list.sort_by_key(|q| turn_key(q));
            }
        }
        round
    }

    fn count(&mut self, queue: &str, user: &User, d: Demand) {
        self.used.add(d);
        self.queue_used.entry(queue.to_string()).or_default().add(d);
        let key = (queue.to_string(), user.clone());
        self.user_used.entry(key).or_default().add(d);
        *self.user_drivers.entry(user.clone()).or_default() += 1;
    }

    /// Whether `user` runs as many drivers here as one user may.
    fn user_at_limit(&self, user: &User) -> Option<u32> {
        let limit = self.queues.max_drivers_per_user?;
        let runs = self.user_drivers.get(user).copied().unwrap_or(0);
        (user.is_some() && runs >= limit).then_some(limit)
    }

    /// The queue whose turn it is: the one furthest below its weighted share, among those
    /// with jobs that may start (not at their limit, with a user not at theirs); between
    /// equals, the one whose oldest such job was submitted first.
    fn next_queue(&self) -> Option<String> {
        self.pending
            .iter()
            .filter(|(q, _)| !self.queue_full.contains_key(*q))
            .filter_map(|(q, users)| {
                let oldest = users
                    .iter()
                    .filter(|(u, _)| self.user_at_limit(u).is_none())
                    .flat_map(|(_, jobs)| jobs.iter().map(|j| j.id))
                    .min()?;
                let used = self.queue_used.get(q).copied().unwrap_or_default();
                let weight = f64::from(self.queues.queue(q).weight.max(1));
                Some((share(used, &self.cap) / weight, oldest, q))
            })
            .min_by(|a, b| by_share(a.0, b.0).then_with(|| a.1.cmp(&b.1)))
            .map(|(_, _, q)| q.clone())
    }

    /// The user whose turn it is in `queue`: the one furthest below an equal share, then
    /// the one whose next job comes first.
    fn next_user(&self, queue: &str) -> Option<User> {
        self.pending[queue]
            .iter()
            .filter(|(u, jobs)| !jobs.is_empty() && self.user_at_limit(u).is_none())
            .map(|(u, jobs)| {
                let key = (queue.to_string(), u.clone());
                let used = self.user_used.get(&key).copied().unwrap_or_default();
                (share(used, &self.cap), turn_key(jobs[0]), u)
            })
            .min_by(|a, b| by_share(a.0, b.0).then_with(|| a.1.cmp(&b.1)))
            .map(|(_, _, u)| u.clone())
    }

    /// Decides the next job of this cluster: launched (returns true), or this cluster's
    /// round is over for now (returns false). `per_owner` counts what each owner runs,
    /// across clusters, against `max_per_owner`.
    pub fn step(
        &mut self,
        max_per_owner: Option<usize>,
        per_owner: &mut BTreeMap<Option<String>, usize>,
        out: &mut Plan,
    ) -> bool {
        loop {
            if self.blocked.is_some() {
                return false;
            }
            let Some(queue) = self.next_queue() else {
                return false;
            };
            let Some(user) = self.next_user(&queue) else {
                return false;
            };
            let list = self
                .pending
                .get_mut(&queue)
                .and_then(|u| u.get_mut(&user))
                .expect("the user has jobs");
            let job = list[0];
            let owned = per_owner.get(&job.owner).copied().unwrap_or(0);
            if let (Some(limit), Some(owner)) = (max_per_owner, &job.owner) {
                if owned >= limit {
                    list.remove(0);
                    let owner = owner.clone();
                    out.waiting
                        .push((job.id, WaitReason::Owner { owner, limit }));
                    continue;
                }
            }
            let limits = self.queues.queue(&queue).limits;
            let in_queue = self.queue_used.get(&queue).copied().unwrap_or_default();
            if let Some(limit) = no_room(&limits, in_queue, job.demand) {
                self.queue_full.insert(queue, limit);
                continue;
            }
            if let Some(limit) = no_room(&self.cap, self.used, job.demand) {
                list.remove(0);
                self.blocked = Some(limit);
                let cluster = self.cluster.to_string();
                out.waiting
                    .push((job.id, WaitReason::Full { cluster, limit }));
                return false;
            }
            list.remove(0);
            self.count(&queue, &user, job.demand);
            *per_owner.entry(job.owner.clone()).or_default() += 1;
            out.launches.push(Launch { job: job.id });
            return true;
        }
    }

    /// Why each job still pending waits.
    pub fn finish(self, out: &mut Plan) {
        let cluster = self.cluster.to_string();
        for (queue, users) in &self.pending {
            for (user, jobs) in users {
                for job in jobs {
                    let reason = if let (Some(limit), Some(u)) = (self.user_at_limit(user), user) {
                        WaitReason::User {
                            cluster: cluster.clone(),
                            user: u.clone(),
                            limit,
                        }
                    } else if let Some(limit) = self.queue_full.get(queue).copied().or_else(|| {
                        // Its queue's own limit holds it too, whatever the cluster frees.
                        let in_queue = self.queue_used.get(queue).copied().unwrap_or_default();
                        no_room(&self.queues.queue(queue).limits, in_queue, job.demand)
                    }) {
                        WaitReason::Queue {
                            cluster: cluster.clone(),
                            queue: queue.clone(),
                            limit,
                        }
                    } else {
                        WaitReason::Behind {
                            cluster: cluster.clone(),
                            limit: self.blocked.unwrap_or(Limit::Drivers(0)),
                        }
                    };
                    out.waiting.push((job.id, reason));
                }
            }
        }
    }
}
