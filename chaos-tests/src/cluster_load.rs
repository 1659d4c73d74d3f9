//! Cluster throughput figures on the production storage.
//!
//! - `submit`: N `POST /batches` spread over the three nodes of a cluster on Kafka and
//!   MongoDB, C in flight; each answer is a durable append to the shared Kafka log. The
//!   nodes' `spark-submit` exits at once, so launches cost nothing.
//! - `replay`: N events appended to a Kafka topic, then folded into fresh MongoDB projections
//!   the way a node's projector does when it starts on an empty projection database.

use crate::bench_cluster::{self, instant_spark_home, Cluster};
use crate::replay::job_events;
use anyhow::{ensure, Result};
use kindling_events::JobId;
use kindling_store::{EventLog, ProjectionStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub async fn submit(kindling: &Path, requests: usize, concurrency: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spark = instant_spark_home(dir.path())?;
    let app = dir.path().join("app.py");
    std::fs::write(&app, "print(1)\n")?;
    let cluster = Cluster::start(kindling, dir.path(), &spark, 3)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let body = serde_json::json!({"file": app.display().to_string()}).to_string();
    let urls: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("{}/batches", n.base))
        .collect();
    let (elapsed, hist) =
        crate::submit::post_all(&http, &urls, &body, requests, concurrency).await?;
    println!(
        "{requests} durable submissions through 3 nodes (Kafka log, MongoDB projections), \
         {concurrency} in flight: {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms",
        requests as f64 / elapsed.as_secs_f64(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}

pub async fn replay(events: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = bench_cluster::broker(dir.path())?;
    let mongo = bench_cluster::mongo(dir.path())?;
    let log = kindling_store_kafka::KafkaEventLog::open(kindling_store_kafka::KafkaConfig::new(
        broker.addr.to_string(),
        "kindling.bench.replay".to_string(),
    ))
    .await?;
    let jobs = events.div_ceil(4) as u64;
    let t = Instant::now();
    let mut batch = Vec::with_capacity(4_000);
    for job in 0..jobs {
        batch.extend(job_events(job));
        if batch.len() >= 4_000 {
            log.append(std::mem::take(&mut batch)).await?;
        }
    }
    log.append(batch).await?;
    let end = log.end();
    println!(
        "wrote {} events ({jobs} jobs) to Kafka in {:.2} s",
        jobs * 4,
        t.elapsed().as_secs_f64()
    );
    let projections =
        kindling_store_mongo::MongoProjections::open(&kindling_store_mongo::MongoConfig {
            uri: format!("mongodb://{}/?directConnection=true", mongo.addr),
            database: "kindling_bench_replay".into(),
            password: None,
        })
        .await?;
    let t = Instant::now();
    let log: Arc<dyn EventLog> = Arc::new(log);
    kindling_store::catch_up(log, &projections, end, |_| {}).await?;
    let elapsed = t.elapsed();
    ensure!(projections.checkpoint().await? == end);
    let sample = projections
        .job(JobId(jobs / 2))
        .await?
        .expect("a replayed job");
    ensure!(sample.state == kindling_events::JobState::Success && sample.version == 4);
    let n = jobs * 4;
    println!(
        "replayed {n} events from Kafka into fresh MongoDB projections in {:.2} s: {:.0} events/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
