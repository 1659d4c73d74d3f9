//! What a run leaves for the checkers: every node's view after healing ([`NodeSnapshot`], with
//! each job's events as [`EventRecord`]s, shaped as `GET /api/v1/jobs/{id}/events` shows them)
//! and what became of each fault ([`FaultRecord`]).

use crate::schedule::Fault;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One event of a job, as `GET /api/v1/jobs/{id}/events` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub position: u64,
    #[serde(default)]
    pub version: u64,
    /// `api`, `scheduler` or `driver`.
    pub origin: String,
    #[serde(default)]
    pub term: Option<u64>,
    /// The node that wrote it.
    pub node: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub node: u64,
    /// `GET /api/v1/jobs` pages, concatenated.
    pub listing: Vec<Value>,
    /// `GET /api/v1/jobs/{id}` of the sampled jobs and sessions.
    pub docs: BTreeMap<u64, Value>,
    /// `GET /api/v1/jobs/{id}/events` of the sampled jobs and sessions: the log's events at
    /// the positions this node's projections list for the job.
    pub events: BTreeMap<u64, Vec<EventRecord>>,
    pub statements: BTreeMap<u64, Value>,
    /// Reads that failed: a snapshot with errors cannot be compared.
    pub errors: Vec<String>,
}

impl NodeSnapshot {
    /// Each job's state in the listing.
    pub fn states(&self) -> BTreeMap<u64, String> {
        self.listing
            .iter()
            .filter_map(|j| {
                Some((
                    j["id"].as_u64()?,
                    j["state"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub index: usize,
    pub fault: Option<Fault>,
    /// The nodes the fault hit.
    pub nodes: Vec<u64>,
    /// The leader when the fault fired, as the nodes said.
    pub leader_before: Option<u64>,
    pub started_ms: u64,
    pub healed_ms: u64,
    /// From the heal until the cluster served again; `None` if it did not within the probe's
    /// limit.
    pub recovered_after_ms: Option<u64>,
    /// Anything that went wrong applying or healing the fault.
    pub notes: Vec<String>,
}
