//! What every node serves once the faults have stopped: its job listing, the documents and
//! events (with log positions, origins and scheduler terms) of a sample of jobs, and every
//! session's statements; and the log itself, read once. The checkers compare these across
//! nodes, against a fresh replay and against the log.

use crate::history::OpResult;
use crate::workload::{call, Answer};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub use kindling_chaos_checker::records::{EventRecord, NodeSnapshot};

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

/// A GET that is asked again, up to `PAGE_ATTEMPTS` times a second apart, while the node
/// answers 503 (its projections are behind a log the cluster still writes to) or cannot be
/// reached; a 4xx fails at once.
async fn get_patiently(http: &reqwest::Client, url: &str) -> Result<Value> {
    let mut attempt = 1;
    loop {
        let a = call(http.get(url)).await;
        match a.result {
            OpResult::Ok => return Ok(a.body),
            OpResult::Unknown if attempt < PAGE_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => bail!(
                "GET {url}: {} ({attempt} attempts)",
                a.error.unwrap_or_default()
            ),
        }
    }
}

/// Every job of a node's listing, paged.
pub async fn listing(http: &reqwest::Client, base: &str) -> Result<Vec<Value>> {
    let mut out = vec![];
    loop {
        let page = get_patiently(
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

/// One event of `GET /api/v1/events`: a log event and what it belongs to.
#[derive(Debug, Deserialize)]
struct LogEvent {
    job: Option<u64>,
    #[serde(flatten)]
    record: EventRecord,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogPage {
    events: Vec<LogEvent>,
    next: u64,
    log_end: u64,
}

/// How many times a collection read is asked before it gives up (see `get_patiently`).
const PAGE_ATTEMPTS: usize = 5;

/// The log as read once through one node.
#[derive(Debug, Default)]
pub struct LogRead {
    /// Every job's events, in log order.
    pub jobs: BTreeMap<u64, Vec<EventRecord>>,
    /// The events about no job (leaders' markers, registry changes), in log order.
    pub cluster: Vec<EventRecord>,
    /// Where the log ended when the read finished.
    pub end: u64,
}

/// The whole log, read once through one node (`GET /api/v1/events`, a thousand events at a
/// time), in log order. One pass over the log instead of a read per event per node: on a
/// broker whose every fetch costs time in proportion to the log (tansu), the per-job reads of
/// a long run's thousands of jobs did not finish in half an hour.
pub async fn log(http: &reqwest::Client, base: &str) -> Result<LogRead> {
    let mut read = LogRead::default();
    let mut from = 0;
    loop {
        let page = get_patiently(
            http,
            &format!("{base}/api/v1/events?from={from}&limit=1000"),
        )
        .await
        .with_context(|| format!("the log from {from}"))?;
        let page: LogPage = serde_json::from_value(page)
            .map_err(|e| anyhow::anyhow!("{base}'s log page at {from} does not parse: {e}"))?;
        for e in page.events {
            match e.job {
                Some(job) => read.jobs.entry(job).or_default().push(e.record),
                None => read.cluster.push(e.record),
            }
        }
        if page.next >= page.log_end {
            read.end = page.next;
            return Ok(read);
        }
        from = page.next;
    }
}

/// The jobs whose documents and histories every node is asked for one by one: about `n`,
/// spread evenly over the log, with the ones faults are most likely to have hurt first (a
/// kill, or more than one attempt). The rest of each node's projections is compared through
/// its listing; the log itself is read once.
pub fn sample(log: &BTreeMap<u64, Vec<EventRecord>>, n: usize) -> BTreeSet<u64> {
    let eventful: Vec<u64> = log
        .iter()
        .filter(|(_, ev)| {
            ev.iter().any(|e| e.kind == "KillRequested")
                || ev.iter().filter(|e| e.kind == "JobScheduled").count() > 1
        })
        .map(|(id, _)| *id)
        .collect();
    let all: Vec<u64> = log.keys().copied().collect();
    let mut out = BTreeSet::new();
    out.extend(spread(&eventful, n / 2));
    out.extend(spread(&all, n - out.len()));
    out
}

/// `n` items spread evenly over `v` (all of it when short).
fn spread(v: &[u64], n: usize) -> Vec<u64> {
    if n == 0 || v.is_empty() {
        return vec![];
    }
    let step = v.len().div_ceil(n);
    v.iter().step_by(step).copied().collect()
}

/// What a node serves: its whole listing; the documents and histories of the `sample` jobs;
/// every session's statements.
pub async fn snapshot(
    http: &reqwest::Client,
    node: u64,
    base: &str,
    sample: &BTreeSet<u64>,
) -> NodeSnapshot {
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
        if sample.contains(&id) || session {
            match get_patiently(http, &format!("{base}/api/v1/jobs/{id}")).await {
                Ok(d) => {
                    s.docs.insert(id, d);
                }
                Err(e) => s.errors.push(e.to_string()),
            }
            match get_patiently(http, &format!("{base}/api/v1/jobs/{id}/events")).await {
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
        }
        if !session {
            continue;
        }
        match get_patiently(http, &format!("{base}/api/v1/jobs/{id}/statements")).await {
            Ok(v) => {
                s.statements.insert(id, v);
            }
            Err(e) => s.errors.push(e.to_string()),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> EventRecord {
        EventRecord {
            position: 0,
            version: 0,
            origin: "api".into(),
            term: None,
            node: 1,
            kind: kind.into(),
            data: Value::Null,
        }
    }

    #[test]
    fn the_sample_spreads_over_the_log_and_takes_eventful_jobs_first() {
        let mut log: BTreeMap<u64, Vec<EventRecord>> = (0..100)
            .map(|id| (id, vec![ev("JobSubmitted"), ev("JobScheduled")]))
            .collect();
        log.get_mut(&37).unwrap().push(ev("KillRequested"));
        log.get_mut(&58).unwrap().push(ev("JobScheduled"));
        let s = sample(&log, 10);
        assert!(s.contains(&37) && s.contains(&58), "{s:?}");
        assert!(s.len() <= 12 && s.len() >= 10, "{s:?}");
        assert!(s.contains(&0) && s.iter().any(|id| *id >= 80), "{s:?}");
        let small: BTreeMap<u64, Vec<EventRecord>> = log.into_iter().take(3).collect();
        assert_eq!(sample(&small, 10), BTreeSet::from([0, 1, 2]));
    }
}
