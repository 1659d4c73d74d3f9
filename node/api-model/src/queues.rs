//! A cluster's queues in the API: the body that sets them (`PUT
//! /api/v1/clusters/{name}/queues`) and the documents that show them with what they hold.

use crate::cluster::{CapacityDoc, CapacityRequest, UsageDoc};
use crate::Invalid;
use kindling_events::queues::{priority_of, user_of, MAX_WEIGHT};
use kindling_events::{Job, QueueConfig, Queues};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// How a cluster shares its capacity: replaces what was set before.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueuesRequest {
    /// The queues by name; a job names its queue in `queue` (`default` when it names none).
    /// A queue not listed has weight 1 and no limits.
    #[serde(default)]
    #[schema(schema_with = crate::cluster_schema::queues)]
    pub queues: BTreeMap<String, QueueRequest>,
    /// Most drivers one user (the job's `proxyUser`, else its owner) runs on the cluster.
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_drivers_per_user: Option<i64>,
}

/// One queue: its weight against the cluster's other busy queues, and its own limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueueRequest {
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub weight: Option<i64>,
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub max_drivers: Option<i64>,
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub max_driver_cores: Option<i64>,
    /// e.g. `64g`.
    pub max_driver_memory: Option<String>,
}

impl QueuesRequest {
    pub fn into_queues(self) -> Result<Queues, Invalid> {
        let mut queues = BTreeMap::new();
        for (name, q) in self.queues {
            let at = format!("queues.{name}");
            let weight = match q.weight {
                None => 1,
                Some(w) if (1..=i64::from(MAX_WEIGHT)).contains(&w) => w as u32,
                Some(w) => {
                    return Err(Invalid::new(format!(
                        "{at}.weight must be between 1 and {MAX_WEIGHT}, got {w}"
                    )))
                }
            };
            let limits = CapacityRequest {
                max_drivers: q.max_drivers,
                max_driver_cores: q.max_driver_cores,
                max_driver_memory: q.max_driver_memory,
            }
            .into_capacity(&at)?;
            queues.insert(name, QueueConfig { weight, limits });
        }
        let max_drivers_per_user = match self.max_drivers_per_user {
            None => None,
            Some(n) if (1..=1_000_000).contains(&n) => Some(n as u32),
            Some(n) => {
                return Err(Invalid::new(format!(
                    "maxDriversPerUser must be between 1 and 1000000, got {n}"
                )))
            }
        };
        let queues = Queues {
            queues,
            max_drivers_per_user,
        };
        queues.check().map_err(Invalid::new)?;
        Ok(queues)
    }
}

/// A cluster's queues, with what each holds now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuesDoc {
    pub cluster: String,
    pub max_drivers_per_user: Option<u32>,
    /// Defined queues and queues jobs name, by name.
    pub queues: Vec<QueueDoc>,
}

/// One queue now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueDoc {
    pub name: String,
    pub weight: u32,
    pub limits: CapacityDoc,
    /// Whether the cluster defines it (else: weight 1, no limits).
    pub defined: bool,
    /// What its drivers take now.
    pub in_use: UsageDoc,
    pub waiting: usize,
    /// Its waiting jobs the caller may view, first in line first (only in
    /// `GET /api/v1/clusters/{name}/queues/{queue}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_jobs: Option<Vec<WaitingJobDoc>>,
}

/// A job waiting in a queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitingJobDoc {
    pub id: u64,
    /// Its place in the queue's order (1 first): priority, then submission. Shares between
    /// users may let another user's job go first.
    pub position: usize,
    pub priority: i32,
    pub user: Option<String>,
    pub submitted_at: i64,
    /// Why it waits, as the scheduler last recorded it.
    pub reason: Option<String>,
}

impl WaitingJobDoc {
    pub fn new(job: &Job, position: usize) -> Self {
        WaitingJobDoc {
            id: job.id.0,
            position,
            priority: priority_of(&job.spec.resources.conf).unwrap_or(0),
            user: user_of(&job.spec).map(str::to_string),
            submitted_at: job.submitted_at_ms,
            reason: job.reason.clone(),
        }
    }
}
