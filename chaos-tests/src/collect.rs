//! What every node serves once the faults have stopped: its job listing, each job's document,
//! events (with log positions, origins and scheduler terms) and statements. The checkers
//! compare these across nodes and against a fresh replay.

use crate::history::OpResult;
use crate::workload::{call, Answer};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

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
    pub docs: BTreeMap<u64, Value>,
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

async fn get(http: &reqwest::Client, url: &str) -> Result<Value> {
    let Answer {
        result,
        body,
        error,
        ..
    } = call(http.get(url)).await;
    if result != OpResult::Ok {
        bail!("GET {url}: {}", error.unwrap_or_default());
    }
    Ok(body)
}

/// Every job of a node's listing, paged.
pub async fn listing(http: &reqwest::Client, base: &str) -> Result<Vec<Value>> {
    let mut out = vec![];
    loop {
        let page = get(
            http,
            &format!("{base}/api/v1/jobs?limit=1000&offset={}", out.len()),
        )
        .await?;
        let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        let n = jobs.len();
        out.extend(jobs);
        if n == 0 || out.len() >= total {
            break;
        }
    }
    out.sort_by_key(|j| j["id"].as_u64());
    Ok(out)
}

/// A node's `logEnd` and `projected` from its health.
pub async fn positions(http: &reqwest::Client, base: &str) -> Option<(u64, u64)> {
    let h = get(http, &format!("{base}/api/v1/health")).await.ok()?;
    let end = h["logEnd"].as_u64().or(h["log_end"].as_u64())?;
    let projected = h["projected"].as_u64()?;
    Some((end, projected))
}

/// Waits until the node's projections have applied everything its log holds, and the log
/// end is `at_least`.
pub async fn wait_projected(
    http: &reqwest::Client,
    base: &str,
    at_least: u64,
    timeout: Duration,
) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        let p = positions(http, base).await;
        if let Some((end, projected)) = p {
            if end >= at_least && projected >= end {
                return Ok(end);
            }
        }
        last = p.or(last);
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{base} did not project its log within {timeout:?} (log end, projected: {last:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn snapshot(http: &reqwest::Client, node: u64, base: &str) -> NodeSnapshot {
    let mut s = NodeSnapshot {
        node,
        ..Default::default()
    };
    match listing(http, base).await {
        Ok(l) => s.listing = l,
        Err(e) => {
            s.errors.push(e.to_string());
            return s;
        }
    }
    let jobs: Vec<(u64, bool)> = s
        .listing
        .iter()
        .filter_map(|j| Some((j["id"].as_u64()?, j["type"] == "session")))
        .collect();
    for (id, session) in jobs {
        match get(http, &format!("{base}/api/v1/jobs/{id}")).await {
            Ok(d) => {
                s.docs.insert(id, d);
            }
            Err(e) => s.errors.push(e.to_string()),
        }
        match get(http, &format!("{base}/api/v1/jobs/{id}/events")).await {
            Ok(v) => match serde_json::from_value::<Vec<EventRecord>>(v["events"].clone()) {
                Ok(ev) => {
                    s.events.insert(id, ev);
                }
                Err(e) => s
                    .errors
                    .push(format!("job {id}'s events do not parse: {e}")),
            },
            Err(e) => s.errors.push(e.to_string()),
        }
        if !session {
            continue;
        }
        match get(http, &format!("{base}/api/v1/jobs/{id}/statements")).await {
            Ok(v) => {
                s.statements.insert(id, v);
            }
            Err(e) => s.errors.push(e.to_string()),
        }
    }
    s
}
