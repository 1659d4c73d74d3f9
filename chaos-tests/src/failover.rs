//! Failover: a three-node cluster on Kafka and MongoDB; the leader is killed with SIGKILL (or
//! stopped with SIGTERM, `--graceful`: it hands leadership over before it exits), and
//! the clock runs until (a) a surviving node schedules as leader (elected and past its
//! catch-up barrier) and (b) a probe batch, submitted through a survivor right after the kill,
//! has been launched by it. The killed node is started again and rejoins before the next
//! kill. Prints p50, p99 and max of both over all kills.

use crate::bench_cluster::{instant_spark_home, Cluster};
use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

async fn get(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let r = http.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// The index of the node that schedules now, if any live node says it does.
async fn scheduling(http: &reqwest::Client, cluster: &Cluster) -> Option<usize> {
    for (i, n) in cluster.nodes.iter().enumerate() {
        if !n.is_running() {
            continue;
        }
        if let Some(v) = get(http, &format!("{}/api/v1/cluster", n.base)).await {
            if v["scheduling"] == true {
                return Some(i);
            }
        }
    }
    None
}

/// Waits until every live node agrees on one scheduling leader and counts `voters` voters.
async fn settled(http: &reqwest::Client, cluster: &Cluster, voters: usize) -> Result<usize> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(leader) = scheduling(http, cluster).await {
            let mut agreed = true;
            for n in cluster.nodes.iter().filter(|n| n.is_running()) {
                let v = get(http, &format!("{}/api/v1/cluster", n.base)).await;
                let ok = v.is_some_and(|v| {
                    v["leader_id"].as_u64() == Some(cluster.nodes[leader].id)
                        && v["members"]
                            .as_array()
                            .map(|m| m.iter().filter(|m| m["voter"] == true).count() == voters)
                            .unwrap_or(false)
                });
                agreed &= ok;
            }
            if agreed {
                return Ok(leader);
            }
        }
        if Instant::now() > deadline {
            bail!("the cluster did not settle on a leader within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(kindling: &Path, kills: usize, graceful: bool) -> Result<()> {
    // KINDLING_BENCH_KEEP=1 keeps the nodes' logs (KINDLING_BENCH_LOG sets their level).
    let keep = std::env::var_os("KINDLING_BENCH_KEEP").is_some();
    let temporary = tempfile::Builder::new().disable_cleanup(keep).tempdir()?;
    let dir = temporary.path();
    if keep {
        println!("logs in {}", dir.display());
    }
    let spark = instant_spark_home(dir)?;
    let app = dir.join("app.py");
    std::fs::write(&app, "print(1)\n")?;
    let mut cluster = Cluster::start(kindling, dir, &spark, 3)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let body = serde_json::json!({"file": app.display().to_string()}).to_string();
    let mut raft = Histogram::<u64>::new(3)?;
    let mut elected = Histogram::<u64>::new(3)?;
    let mut launched = Histogram::<u64>::new(3)?;
    for k in 1..=kills {
        let leader = settled(&http, &cluster, 3).await?;
        let survivor = (leader + 1) % cluster.nodes.len();
        let stopping = if graceful {
            cluster.terminate(leader)?
        } else {
            cluster.kill9(leader)?;
            None
        };
        let killed = Instant::now();
        // Accepted by a survivor at once (creation needs no leader); launched by the next.
        let r = http
            .post(format!("{}/batches", cluster.nodes[survivor].base))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("probe submission refused: {}", r.text().await?);
        }
        let probe = r.json::<serde_json::Value>().await?["id"]
            .as_u64()
            .unwrap_or_default();
        let mut elected_at = None;
        let mut raft_at = None;
        let killed_id = cluster.nodes[leader].id;
        let launched_at = loop {
            if raft_at.is_none() {
                let v = get(
                    &http,
                    &format!("{}/api/v1/cluster", cluster.nodes[survivor].base),
                )
                .await;
                if v.is_some_and(|v| v["leader_id"].as_u64().is_some_and(|l| l != killed_id)) {
                    raft_at = Some(killed.elapsed());
                }
            }
            if elected_at.is_none() && scheduling(&http, &cluster).await.is_some() {
                elected_at = Some(killed.elapsed());
            }
            let job = get(
                &http,
                &format!("{}/api/v1/jobs/{probe}", cluster.nodes[survivor].base),
            )
            .await;
            if job.is_some_and(|j| j["state"] != "not_started") {
                break killed.elapsed();
            }
            if killed.elapsed() > DEADLINE {
                bail!("kill {k}: the probe was not launched within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let elected_at = elected_at.unwrap_or(launched_at);
        let raft_at = raft_at.unwrap_or(elected_at);
        raft.record(raft_at.as_millis() as u64)?;
        elected.record(elected_at.as_millis() as u64)?;
        launched.record(launched_at.as_millis() as u64)?;
        println!(
            "kill {k:>3}: node {} -> raft leader after {} ms, scheduling after {} ms, probe launched after {} ms",
            cluster.nodes[leader].id,
            raft_at.as_millis(),
            elected_at.as_millis(),
            launched_at.as_millis()
        );
        if let Some(mut node) = stopping {
            tokio::task::spawn_blocking(move || node.wait()).await??;
        }
        cluster.spawn(leader)?;
    }
    settled(&http, &cluster, 3).await?;
    let show = |name: &str, h: &Histogram<u64>| {
        println!(
            "{name}: p50 {} ms, p99 {} ms, max {} ms over {} kills",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max(),
            h.len()
        )
    };
    let how = if graceful {
        "leader SIGTERM"
    } else {
        "leader kill"
    };
    show(&format!("{how} -> a new raft leader known"), &raft);
    show(&format!("{how} -> new leader scheduling"), &elected);
    show(&format!("{how} -> probe batch launched"), &launched);
    Ok(())
}
