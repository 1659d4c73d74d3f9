//! A cluster's queues: how its capacity is shared. A job names its queue in Livy's `queue`
//! field (on YARN the same name is the YARN queue), `default` when it names none, and its
//! priority within the queue in `conf["kindling.priority"]` (an integer, default 0, higher
//! first). A queue has a weight (its share of the cluster against the other busy queues) and
//! optional limits of its own; a cluster may limit the drivers one user runs on it. A queue
//! a cluster does not define is a queue of weight 1 without limits, so jobs are never
//! refused for naming one (YARN's queues need not be declared twice).

use crate::cluster::Capacity;
use crate::spec::JobSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The queue of a job that names none.
pub const DEFAULT_QUEUE: &str = "default";
/// The conf key of a job's priority within its queue.
pub const PRIORITY_KEY: &str = "kindling.priority";
/// The highest priority (and, negated, the lowest).
pub const MAX_PRIORITY: i32 = 1000;
/// Most queues one cluster may define.
pub const MAX_QUEUES: usize = 100;
/// The largest weight.
pub const MAX_WEIGHT: u32 = 10_000;

/// One queue of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Its share against the cluster's other busy queues (1 to [`MAX_WEIGHT`]).
    pub weight: u32,
    /// What the queue's drivers may take of the cluster at most.
    pub limits: Capacity,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            weight: 1,
            limits: Capacity::default(),
        }
    }
}

/// How a cluster shares its capacity: its queues and the limit per user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queues {
    pub queues: BTreeMap<String, QueueConfig>,
    /// How many drivers one user (the job's `proxyUser`, else its owner) runs on the cluster.
    pub max_drivers_per_user: Option<u32>,
}

impl Queues {
    /// The queue called `name`: as defined, else weight 1 without limits.
    pub fn queue(&self, name: &str) -> QueueConfig {
        self.queues.get(name).cloned().unwrap_or_default()
    }

    /// Why these queues cannot be set, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.queues.len() > MAX_QUEUES {
            return Err(format!(
                "queues: {} are defined; at most {MAX_QUEUES} are accepted",
                self.queues.len()
            ));
        }
        for (name, q) in &self.queues {
            if name.trim().is_empty() || name.len() > 128 || name.contains('\0') {
                return Err(format!(
                    "queues: {name:?} is not a queue name (1 to 128 characters, no NUL)"
                ));
            }
            if !(1..=MAX_WEIGHT).contains(&q.weight) {
                return Err(format!(
                    "queues.{name}.weight must be between 1 and {MAX_WEIGHT}, got {}",
                    q.weight
                ));
            }
        }
        if self.max_drivers_per_user == Some(0) {
            return Err("maxDriversPerUser must be at least 1".into());
        }
        Ok(())
    }
}

/// The queue a job waits in.
pub fn queue_of(spec: &JobSpec) -> &str {
    spec.resources
        .queue
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .unwrap_or(DEFAULT_QUEUE)
}

/// The user a job counts against for per-user limits and shares: whom it runs as.
pub fn user_of(spec: &JobSpec) -> Option<&str> {
    spec.proxy_user.as_deref().or(spec.owner.as_deref())
}

/// A job's priority within its queue, as `conf["kindling.priority"]` gives it; `Err` names
/// the problem.
pub fn priority_of(conf: &BTreeMap<String, String>) -> Result<i32, String> {
    let Some(text) = conf.get(PRIORITY_KEY) else {
        return Ok(0);
    };
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| p.abs() <= MAX_PRIORITY)
        .ok_or_else(|| {
            format!(
                "conf.{PRIORITY_KEY} must be a whole number from -{MAX_PRIORITY} to \
                 {MAX_PRIORITY}, got {text:?}"
            )
        })
}
