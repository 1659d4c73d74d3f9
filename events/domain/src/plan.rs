//! The scheduler's placement decision: given what is queued, what runs, and what each cluster
//! may run, which jobs to launch now, and why the others wait. A pure function over a
//! snapshot; the node's scheduler loop executes it.
//!
//! Policy, per cluster: first come, first served (by job id, which follows submission order)
//! under the cluster's capacity (concurrent drivers, total driver cores, total driver memory).
//! A job that does not fit holds back the later jobs of its cluster, so a big job is never
//! starved by small ones, but it never holds back another cluster. An optional per-owner
//! limit across clusters lets one user's jobs wait while others' pass.

use crate::cluster::Capacity;
use crate::ids::JobId;
use crate::spec::JobSpec;
use std::collections::BTreeMap;
use std::fmt;

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
}

/// A driver that runs (or is being launched), as it counts against its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    pub owner: Option<String>,
    pub cluster: String,
    pub demand: Demand,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Jobs waiting for a driver, in any order.
    pub queued: Vec<QueuedJob>,
    pub running: Vec<RunningJob>,
    /// The capacity of every cluster that exists; a job on any other cluster is refused.
    pub clusters: BTreeMap<String, Capacity>,
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
    /// An earlier job of the same cluster waits for room: jobs start in submission order.
    Behind { cluster: String, limit: Limit },
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
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub launches: Vec<Launch>,
    pub waiting: Vec<(JobId, WaitReason)>,
    pub refused: Vec<(JobId, Refusal)>,
}

fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::Drivers(1) => "its limit of 1 concurrent driver is reached".into(),
        Limit::Drivers(n) => format!("its limit of {n} concurrent drivers is reached"),
        Limit::Cores(n) => format!("too few of its {n} driver cores are free"),
        Limit::MemoryMb(n) => format!("too little of its {n} MB of driver memory is free"),
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Full { cluster, limit } => write!(
                f,
                "waiting for room on cluster '{cluster}': {}",
                limit_text(*limit)
            ),
            WaitReason::Behind { cluster, limit } => write!(
                f,
                "waiting for room on cluster '{cluster}' behind earlier jobs (jobs start in \
                 submission order): {}",
                limit_text(*limit)
            ),
            WaitReason::Owner { owner, limit } => write!(
                f,
                "waiting: {owner} already runs {limit} driver(s), the most one owner may run"
            ),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownCluster { cluster } => write!(
                f,
                "cluster '{cluster}' does not exist (it was deleted after the job was \
                 submitted); the job cannot run"
            ),
            Refusal::TooBig {
                cluster,
                limit,
                demand,
            } => match limit {
                Limit::Cores(n) => write!(
                    f,
                    "the driver needs {} cores but cluster '{cluster}' allows {n} in all; the \
                     job can never start there",
                    demand.cores
                ),
                Limit::MemoryMb(n) => write!(
                    f,
                    "the driver needs {} MB of memory but cluster '{cluster}' allows {n} MB in \
                     all; the job can never start there",
                    demand.memory_mb
                ),
                Limit::Drivers(n) => write!(
                    f,
                    "cluster '{cluster}' allows {n} drivers; the job can never start there"
                ),
            },
        }
    }
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

pub fn plan(snapshot: &Snapshot) -> Plan {
    let mut used = usage(snapshot);
    let mut per_owner: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for r in &snapshot.running {
        *per_owner.entry(r.owner.as_deref()).or_default() += 1;
    }
    let mut queue: Vec<&QueuedJob> = snapshot.queued.iter().collect();
    queue.sort_by_key(|q| q.id);
    queue.dedup_by_key(|q| q.id);
    // Clusters whose earliest waiting job has no room: the limit it waits for.
    let mut blocked: BTreeMap<&str, Limit> = BTreeMap::new();
    let mut out = Plan::default();
    for q in queue {
        let cluster = q.cluster.as_str();
        let Some(cap) = snapshot.clusters.get(cluster) else {
            let cluster = q.cluster.clone();
            out.refused
                .push((q.id, Refusal::UnknownCluster { cluster }));
            continue;
        };
        if let Some(limit) = never_fits(cap, q.demand) {
            let refusal = Refusal::TooBig {
                cluster: q.cluster.clone(),
                limit,
                demand: q.demand,
            };
            out.refused.push((q.id, refusal));
            continue;
        }
        if let Some(limit) = blocked.get(cluster) {
            let reason = WaitReason::Behind {
                cluster: q.cluster.clone(),
                limit: *limit,
            };
            out.waiting.push((q.id, reason));
            continue;
        }
        let owned = per_owner.entry(q.owner.as_deref()).or_default();
        if let (Some(limit), Some(owner)) = (snapshot.max_per_owner, &q.owner) {
            if *owned >= limit {
                let owner = owner.clone();
                out.waiting.push((q.id, WaitReason::Owner { owner, limit }));
                continue;
            }
        }
        let u = used.entry(cluster).or_default();
        if let Some(limit) = no_room(cap, *u, q.demand) {
            blocked.insert(cluster, limit);
            let reason = WaitReason::Full {
                cluster: q.cluster.clone(),
                limit,
            };
            out.waiting.push((q.id, reason));
            continue;
        }
        u.add(q.demand);
        *owned += 1;
        out.launches.push(Launch { job: q.id });
    }
    out
}

#[cfg(test)]
mod tests;
