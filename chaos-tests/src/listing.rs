//! What the web UI waits for with many jobs in the log: one node holding N submitted jobs
//! (queued behind one driver, as a busy cluster holds them), then the time of the reads a
//! page makes: the jobs table's first and last page, a name search and an owner filter
//! that match nothing, a job's page, and the UI's own files. Each read is timed alone,
//! over several rounds.

use crate::node;
use crate::submit::post_all;
use anyhow::{ensure, Result};
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::Instant;

const ROUNDS: usize = 20;

pub async fn run(kindling: &Path, jobs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spark = node::idle_spark_home(dir.path())?;
    let app = dir.path().join("app.py");
    std::fs::write(&app, "print(1)\n")?;
    let node = node::start(
        kindling,
        &dir.path().join("data"),
        &spark,
        &["--max-drivers", "1"],
    )?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let body = serde_json::json!({"file": app.display().to_string()}).to_string();
    let started = Instant::now();
    post_all(&http, &[format!("{}/batches", node.base)], &body, jobs, 64).await?;
    println!(
        "jobs: {jobs} submitted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let last = jobs.saturating_sub(50);
    let reads = [
        (
            "jobs table, first page",
            "/api/v1/jobs?limit=50".to_string(),
        ),
        (
            "jobs table, last page",
            format!("/api/v1/jobs?limit=50&offset={last}"),
        ),
        (
            "name search, no match",
            "/api/v1/jobs?limit=50&name=nosuch".into(),
        ),
        (
            "owner filter, no match",
            "/api/v1/jobs?limit=50&owner=nobody".into(),
        ),
        ("a job's page", format!("/api/v1/jobs/{}", jobs / 2)),
        (
            "a job's history",
            format!("/api/v1/jobs/{}/events", jobs / 2),
        ),
        ("the UI's page", "/ui/".into()),
    ];
    for (what, path) in reads {
        let mut hist = Histogram::<u64>::new(3)?;
        let mut bytes = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let r = http.get(format!("{}{path}", node.base)).send().await?;
            ensure!(r.status().is_success(), "{path}: {}", r.status());
            bytes = r.bytes().await?.len();
            hist.record(t.elapsed().as_micros() as u64)?;
        }
        println!(
            "{what} ({path}): p50 {:.1} ms, max {:.1} ms, {bytes} bytes",
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.max() as f64 / 1000.0
        );
    }
    println!(
        "the UI's files: {} bytes in all",
        kindling_ui_size(&http, &node.base).await?
    );
    Ok(())
}

/// The bytes of every file the UI's page loads, as the node serves them.
async fn kindling_ui_size(http: &reqwest::Client, base: &str) -> Result<usize> {
    let mut total = 0;
    for url in kindling_ui::urls() {
        let r = http.get(format!("{base}{url}")).send().await?;
        ensure!(r.status().is_success(), "{url}: {}", r.status());
        total += r.bytes().await?.len();
    }
    Ok(total)
}
