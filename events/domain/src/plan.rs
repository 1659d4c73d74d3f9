//! The scheduler's placement decision: given what is queued, what runs, and what each cluster
//! may run, which jobs to launch now, and why the others wait. A pure function over a
//! snapshot; the node's scheduler loop executes it.
//!
//! Policy, per cluster, under its capacity (concurrent drivers, total driver cores, total
//! driver memory) and its [`Queues`]: free capacity goes to the queue furthest below its
//! weighted share of the cluster (dominant-resource fairness over driver cores and memory,
//! or drivers where the cluster bounds neither), within it to the user furthest below an
//! equal share, then to that user's job of highest priority, then the earliest submitted.
//! A queue or a user at its limit waits without holding back the others. When the job whose
//! turn it is does not fit the cluster, it and every later job of that cluster wait (so a big
//! job is never starved by small ones), but it never holds back another cluster. An optional
//! per-owner limit across clusters lets one owner's jobs wait while others' pass.
use crate::cluster::Capacity;
use crate::ids::JobId;
use crate::queues::Queues;
use crate::spec::JobSpec;
use std::collections::BTreeMap;

mod reasons;
mod share;

/// Spark's default driver memory, when neither the job nor its cluster sets one.
pub const DEFAULT_DRIVER_MEMORY_MB: u64 = 1024;

/// What one driver takes from its cluster's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Demand {
    pub cores: u32,
    pub memory_mb: u64,
}

impl Demand {
    /// A job's driver as Spark will size it: the request's fields, else the job's conf, else
    /// the cluster's conf, else Spark's defaults (1 core, 1g). A value Spark would refuse
    /// counts as the default: the launch fails on it anyway.
    pub fn of(spec: &JobSpec, cluster_conf: &BTreeMap<String, String>) -> Demand {
        let r = &spec.resources;
        let conf = |key: &str| r.conf.get(key).or_else(|| cluster_conf.get(key));
        let cores = r
            .driver_cores
            .or_else(|| conf("spark.driver.cores").and_then(|c| c.trim().parse().ok()))
            .filter(|c| *c > 0)
            .unwrap_or(1);
        let memory_mb = r
            .driver_memory
            .as_deref()
            .or_else(|| conf("spark.driver.memory").map(String::as_str))
            .and_then(memory_mb)
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_DRIVER_MEMORY_MB);
        Demand { cores, memory_mb }
    }
}

/// A Spark memory size in MiB, rounded down ([`crate::units::MemorySize`]).
pub fn memory_mb(s: &str) -> Option<u64> {
    crate::units::MemorySize::parse(s).ok().map(|m| m.mib())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: JobId,
    pub owner: Option<String>,
    pub cluster: String,
    pub demand: Demand,
    /// Its queue on its cluster ([`crate::queues::queue_of`]).
    pub queue: String,
    /// Whom it runs as, for per-user limits and shares ([`crate::queues::user_of`]).
    pub user: Option<String>,
    /// Higher first, within its queue and user.
    pub priority: i32,
}

/// A driver that runs (or is being launched), as it counts against its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    pub owner: Option<String>,
    pub cluster: String,
    pub demand: Demand,
    pub queue: String,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Jobs waiting for a driver, in any order.
    pub queued: Vec<QueuedJob>,
    pub running: Vec<RunningJob>,
    /// The capacity of every cluster that exists; a job on any other cluster is refused.
    pub clusters: BTreeMap<String, Capacity>,
    /// How each cluster shares its capacity; a cluster not named has one queue per name its
    /// jobs give, each of weight 1, and no limit per user.
    pub queues: BTreeMap<String, Queues>,
    /// How many drivers one owner may run at once, across clusters (`None`: no limit).
    pub max_per_owner: Option<usize>,
}

/// Launch this job's next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub job: JobId,
}

/// A limit of a cluster's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Drivers(u32),
    Cores(u32),
    MemoryMb(u64),
}

/// Why a queued job waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// The cluster has no room for the job now.
    Full { cluster: String, limit: Limit },
    /// The job whose turn it is on the same cluster waits for room: the others wait behind it.
    Behind { cluster: String, limit: Limit },
    /// The job's queue runs as much as its limit allows.
    Queue {
        cluster: String,
        queue: String,
        limit: Limit,
    },
    /// The job's user runs as many drivers on the cluster as one user may.
    User {
        cluster: String,
        user: String,
        limit: u32,
    },
    /// The job's owner runs as many drivers as one owner may.
    Owner { owner: String, limit: usize },
}

/// Why a queued job can never start, so the scheduler ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The job's cluster is not (or no longer) registered.
    UnknownCluster { cluster: String },
    /// The job alone needs more than the cluster's whole capacity.
    TooBig {
        cluster: String,
        limit: Limit,
        demand: Demand,
    },
    /// The job alone needs more than its queue may ever take.
    TooBigForQueue {
        cluster: String,
        queue: String,
        limit: Limit,
        demand: Demand,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub launches: Vec<Launch>,
    pub waiting: Vec<(JobId, WaitReason)>,
    pub refused: Vec<(JobId, Refusal)>,
}

/// What one cluster runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub drivers: u64,
    pub cores: u64,
    pub memory_mb: u64,
}

impl Usage {
    pub fn add(&mut self, d: Demand) {
        self.drivers += 1;
        self.cores += u64::from(d.cores);
        self.memory_mb = self.memory_mb.saturating_add(d.memory_mb);
    }
}

/// The limit the job alone exceeds, if any.
pub fn never_fits(cap: &Capacity, d: Demand) -> Option<Limit> {
    if let Some(n) = cap.max_driver_cores.filter(|n| d.cores > *n) {
        return Some(Limit::Cores(n));
    }
    cap.max_driver_memory_mb
        .filter(|n| d.memory_mb > *n)
        .map(Limit::MemoryMb)
}

/// The limit the job would exceed next to what runs, if any.
pub fn no_room(cap: &Capacity, used: Usage, d: Demand) -> Option<Limit> {
    if let Some(n) = cap.max_drivers.filter(|n| used.drivers + 1 > u64::from(*n)) {
        return Some(Limit::Drivers(n));
    }
    if let Some(n) = cap
        .max_driver_cores
        .filter(|n| used.cores + u64::from(d.cores) > u64::from(*n))
    {
        return Some(Limit::Cores(n));
    }
    cap.max_driver_memory_mb
        .filter(|n| used.memory_mb.saturating_add(d.memory_mb) > *n)
        .map(Limit::MemoryMb)
}

/// What each cluster runs in `snapshot`.
pub fn usage(snapshot: &Snapshot) -> BTreeMap<&str, Usage> {
    let mut used: BTreeMap<&str, Usage> = BTreeMap::new();
    for r in &snapshot.running {
        used.entry(r.cluster.as_str()).or_default().add(r.demand);
    }
    used
}

/// Every cluster's decisions for this round; clusters are planned one by one, and only the
/// per-owner limit (if any) is shared between them.
pub fn plan(snapshot: &Snapshot) -> Plan {
    let mut per_owner: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for r in &snapshot.running {
        *per_owner.entry(r.owner.clone()).or_default() += 1;
    }
    let mut queue: Vec<&QueuedJob> = snapshot.queued.iter().collect();
    queue.sort_by_key(|q| q.id);
    queue.dedup_by_key(|q| q.id);
    let mut out = Plan::default();
    let mut by_cluster: BTreeMap<&str, Vec<&QueuedJob>> = BTreeMap::new();
    for q in queue {
        match snapshot.clusters.get(&q.cluster) {
            None => out.refused.push((
                q.id,
                Refusal::UnknownCluster {
                    cluster: q.cluster.clone(),
                },
            )),
            Some(_) => by_cluster.entry(q.cluster.as_str()).or_default().push(q),
        }
    }
    // With a per-owner limit, the clusters' rounds take turns job by job, so no cluster's
    // jobs take every owner's slots first; without one, each cluster is planned on its own.
    let mut rounds: Vec<share::ClusterRound> = by_cluster
        .into_iter()
        .map(|(cluster, jobs)| share::ClusterRound::new(snapshot, cluster, jobs, &mut out))
        .collect();
    loop {
        let mut moved = false;
        for round in &mut rounds {
            moved |= round.step(snapshot.max_per_owner, &mut per_owner, &mut out);
        }
        if !moved {
            break;
        }
    }
    for round in rounds {
        round.finish(&mut out);
    }
    out.waiting.sort_by_key(|w| w.0);
    out
}

#[cfg(test)]
mod fairness_tests;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tests;
