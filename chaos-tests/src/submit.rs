//! Durable submissions per second: N `POST /batches` with C in flight against one node
//! (fsync on, group commit). The node's `spark-submit` is a stand-in that waits and at most
//! one driver runs, so the figure is the node's, not Spark's.

use crate::node;
use anyhow::{ensure, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

/// How the benchmark's requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitAuth {
    /// The node runs `--auth none`.
    None,
    /// The node runs `--auth basic`; every request carries one user's password (the node
    /// checks the hash once, then remembers it).
    Basic,
    /// The node runs `--auth basic`; every request carries an API token issued to that user
    /// (checked against the projected tokens, after the read barrier, on every request).
    ApiToken,
}

pub async fn run(
    kindling: &Path,
    requests: usize,
    concurrency: usize,
    auth: SubmitAuth,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spark = node::idle_spark_home(dir.path())?;
    let app = dir.path().join("app.py");
    std::fs::write(&app, "print(1)\n")?;
    let users = dir.path().join("users");
    let mut flags = vec!["--max-drivers".to_string(), "1".into()];
    let password = "a-benchmark-password";
    if auth != SubmitAuth::None {
        add_user(kindling, &users, "bench", password)?;
        flags.extend(["--auth".into(), "basic".into(), "--users-file".into()]);
        flags.push(users.display().to_string());
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = node::start(kindling, &dir.path().join("data"), &spark, &flags)?;
    let name = reqwest::header::AUTHORIZATION;
    let mut headers = reqwest::header::HeaderMap::new();
    match auth {
        SubmitAuth::None => {}
        SubmitAuth::Basic => {
            let probe = reqwest::Client::new()
                .get("http://kindling/")
                .basic_auth("bench", Some(password))
                .build()?;
            headers.insert(name.clone(), probe.headers()[&name].clone());
        }
        SubmitAuth::ApiToken => {
            let issued: serde_json::Value = reqwest::Client::new()
                .post(format!("{}/api/v1/tokens", node.base))
                .basic_auth("bench", Some(password))
                .json(&serde_json::json!({"name": "benchmark"}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let token = issued["token"].as_str().unwrap_or_default();
            headers.insert(name.clone(), format!("Bearer {token}").parse()?);
        }
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .default_headers(headers)
        .build()?;
    println!(
        "authentication: {}",
        match auth {
            SubmitAuth::None => "none",
            SubmitAuth::Basic => "basic (users file)",
            SubmitAuth::ApiToken => "API token (Bearer)",
        }
    );
    let body =
        serde_json::json!({"file": app.display().to_string(), "conf": {"spark.app.tag": "bench"}})
            .to_string();
    let urls = [format!("{}/batches", node.base)];
    let (elapsed, hist) = post_all(&http, &urls, &body, requests, concurrency).await?;
    let health = node.health(&http).await?;
    let log_end = health["logEnd"].as_u64().unwrap_or(0);
    ensure!(
        log_end >= requests as u64,
        "log holds {log_end} events for {requests} acknowledged submissions"
    );
    println!(
        "submissions: {requests} with {concurrency} in flight in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} durable submissions/s",
        requests as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    println!(
        "node resident memory after the run: {:.1} MB",
        node::rss_kib(node.child.id())? as f64 / 1024.0
    );
    Ok(())
}

/// POSTs `body` `requests` times, `concurrency` in flight, spread round-robin over `urls`.
/// Every answer must be a 201 with an id no other answer had. Returns the wall time and the
/// latency histogram (microseconds).
pub async fn post_all(
    http: &reqwest::Client,
    urls: &[String],
    body: &str,
    requests: usize,
    concurrency: usize,
) -> Result<(std::time::Duration, Histogram<u64>)> {
    let started = Instant::now();
    let results: Vec<Result<(u64, u64)>> = futures::stream::iter(0..requests)
        .map(|i| {
            let http = http.clone();
            let url = urls[i % urls.len()].clone();
            let body = body.to_string();
            async move {
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                ensure!(r.status().as_u16() == 201, "status {}", r.status());
                let v: serde_json::Value = r.json().await?;
                Ok((
                    v["id"].as_u64().unwrap_or(u64::MAX),
                    t.elapsed().as_micros() as u64,
                ))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut hist = Histogram::<u64>::new(3)?;
    let mut ids = HashSet::new();
    for r in results {
        let (id, us) = r?;
        ensure!(ids.insert(id), "id {id} handed out twice");
        hist.record(us)?;
    }
    Ok((elapsed, hist))
}

/// Adds `user` to the users file with `kindling users add`, the password on stdin.
fn add_user(kindling: &Path, users: &Path, user: &str, password: &str) -> Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new(kindling)
        .args(["users", "add", user, "--password-stdin", "--users-file"])
        .arg(users)
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    writeln!(child.stdin.take().expect("piped stdin"), "{password}")?;
    ensure!(child.wait()?.success(), "kindling users add failed");
    Ok(())
}
