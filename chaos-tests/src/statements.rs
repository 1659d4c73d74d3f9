//! Warm-session statement round trip: `1+1` from POST to available (the client long-polls
//! the native API), against a cold `spark-submit` of the same code.

use crate::node;
use anyhow::{ensure, Context, Result};
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::{Duration, Instant};

pub async fn run(kindling: &Path, statements: usize, cold_runs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spark = node::spark_home()?;
    let node = node::start(
        kindling,
        &dir.path().join("data"),
        &spark,
        &["--spark-conf", "spark.ui.enabled=false"],
    )?;
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{}/sessions", node.base))
        .json(&serde_json::json!({"kind": "pyspark"}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_u64().context("no session id")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s: serde_json::Value = http
            .get(format!("{}/sessions/{id}", node.base))
            .send()
            .await?
            .json()
            .await?;
        if s["state"] == "idle" {
            break;
        }
        ensure!(
            Instant::now() < deadline && s["state"] != "error" && s["state"] != "dead",
            "session did not start: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for i in 0..statements + 10 {
        let t = Instant::now();
        let st: serde_json::Value = http
            .post(format!("{}/api/v1/jobs/{id}/statements", node.base))
            .json(&serde_json::json!({"code": "1+1"}))
            .send()
            .await?
            .json()
            .await?;
        let sid = st["id"].as_u64().context("no statement id")?;
        let done: serde_json::Value = http
            .get(format!(
                "{}/api/v1/jobs/{id}/statements/{sid}?wait=30s",
                node.base
            ))
            .send()
            .await?
            .json()
            .await?;
        let us = t.elapsed().as_micros() as u64;
        ensure!(
            done["output"]["data"]["text/plain"] == "2",
            "unexpected output {done}"
        );
        if i >= 10 {
            hist.record(us)?; // the first ten warm the session up
        }
    }
    http.delete(format!("{}/sessions/{id}", node.base))
        .send()
        .await?;

    let code = dir.path().join("one_plus_one.py");
    std::fs::write(
        &code,
        "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()\nprint(1+1)\n",
    )?;
    let python = std::env::var_os("KINDLING_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/kindling/venv")
        })
        .join("bin/python");
    let mut cold = Vec::new();
    for _ in 0..cold_runs {
        let t = Instant::now();
        let out = std::process::Command::new(spark.join("bin/spark-submit"))
            .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false"])
            .arg(&code)
            .env("PYSPARK_PYTHON", &python)
            .output()?;
        ensure!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains('2'),
            "cold run failed"
        );
        cold.push(t.elapsed());
    }
    cold.sort();
    let cold_median = cold[cold.len() / 2];
    let p50 = hist.value_at_quantile(0.5) as f64 / 1000.0;
    println!("warm statement `1+1`, POST to available, {statements} runs:");
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p50,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    println!(
        "cold spark-submit of the same code, median of {cold_runs}: {:.2} s",
        cold_median.as_secs_f64()
    );
    println!(
        "cold / warm p50: {:.0}x",
        cold_median.as_secs_f64() * 1000.0 / p50
    );
    Ok(())
}
