//! One chaos run, start to end: start the cluster, run the workload and the fault schedule
//! side by side, heal everything, let the jobs end, collect every node's state and a fresh
//! replay, check the invariants, and write everything under the run directory:
//!
//! | file | what |
//! |---|---|
//! | `config.json`, `schedule.json` | the run's settings and its seeded schedule |
//! | `history.jsonl` | every client operation |
//! | `faults.jsonl` | every fault as carried out: nodes hit, heal time, recovery time |
//! | `ledger.tsv`, `statements.txt` | the launch and statement ledgers |
//! | `observations.json` | everything the checkers read, including each node's final state |
//! | `proxies.json` | what every link's proxy carried, after the final heal and at the end |
//! | `violations.json`, `summary.txt` | the verdict |
//! | `n<id>/node.log`, `n<id>/stdout.log`, `n<id>/data/` | each node's logs and data |
//! | `services/*.log`, `drivers/` | the broker, S3, Mongo and driver logs |

use crate::checker::{self, Observations, Violation};
use crate::cluster::{Cluster, ClusterConfig};
use crate::collect::{self, NodeSnapshot};
use crate::ledger;
use crate::nemesis;
use crate::recorder::Recorder;
use crate::schedule::{self, Nemesis, ScheduleConfig};
use crate::summary::Summary;
use crate::workload::{self, Ctx, Known, WorkloadConfig};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Jobs whose documents and histories are read from every node (see `collect::sample`).
const SAMPLED_JOBS: usize = 40;

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub seed: u64,
    pub duration: Duration,
    pub nodes: usize,
    pub kindling: PathBuf,
    pub run_dir: PathBuf,
    pub clients: usize,
    /// Batch-client operations per second, over all clients.
    pub rate: f64,
    /// Real Spark sessions; `None`: one if the project's pyspark is installed.
    pub sessions: Option<usize>,
    /// Real Spark batches over the run; `None`: one if the project's pyspark is installed.
    pub spark_batches: Option<usize>,
    /// How long jobs may take to end after the faults stop.
    pub settle: Duration,
    pub recovery_bound: Duration,
    pub nemeses: Vec<Nemesis>,
    pub min_pause: Duration,
    pub max_drivers: usize,
    pub log_filter: String,
    /// The broker's log on S3, so that `RestartBroker` keeps it (see `ClusterConfig`).
    pub broker_on_s3: bool,
    /// The nodes' log-follower fetch wait (see `ClusterConfig::tail_wait`).
    pub tail_wait: Duration,
}

impl RunConfig {
    pub fn new(seed: u64, duration: Duration, kindling: PathBuf, run_dir: PathBuf) -> Self {
        RunConfig {
            seed,
            duration,
            nodes: 3,
            kindling,
            run_dir,
            clients: 4,
            rate: 6.0,
            sessions: None,
            spark_batches: None,
            settle: Duration::from_secs(120),
            recovery_bound: Duration::from_secs(30),
            nemeses: Nemesis::without_broker_restart(),
            min_pause: Duration::from_secs(3),
            max_drivers: 8,
            log_filter: "info".into(),
            broker_on_s3: false,
            tail_wait: Duration::from_millis(100),
        }
    }

    pub fn schedule_config(&self) -> ScheduleConfig {
        let mut s = ScheduleConfig::new(self.nodes, self.duration.as_millis() as u64);
        s.nemeses = self.nemeses.clone();
        s.min_pause_ms = self.min_pause.as_millis() as u64;
        s
    }
}

pub struct RunOutcome {
    pub violations: Vec<Violation>,
    pub summary: String,
    pub dir: PathBuf,
}

/// The project's Python venv (`ops/dev/install-spark`): `KINDLING_VENV`, else
/// `~/.cache/kindling/venv`.
pub fn venv() -> PathBuf {
    std::env::var_os("KINDLING_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/kindling/venv")
        })
}

/// The project's pyspark (`ops/dev/install-spark`), for real sessions and Spark batches.
pub fn real_spark_home() -> Option<PathBuf> {
    std::fs::read_dir(venv().join("lib"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-submit").exists())
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs one chaos run. Needs a multi-threaded tokio runtime and root (network namespaces).
pub async fn run(mut cfg: RunConfig) -> Result<RunOutcome> {
    if cfg.nemeses.contains(&Nemesis::RestartBroker) && !cfg.broker_on_s3 {
        anyhow::bail!(
            "the restart-broker nemesis needs the broker's log on S3 (--broker-s3): a broker \
             keeping its log in memory loses it on restart"
        );
    }
    std::fs::create_dir_all(&cfg.run_dir)?;
    // Absolute: nodes get paths under it, and drivers are found by them.
    cfg.run_dir = std::fs::canonicalize(&cfg.run_dir)?;
    let dir = cfg.run_dir.clone();
    write_json(&dir.join("config.json"), &cfg)?;
    let plan = schedule::schedule(cfg.seed, &cfg.schedule_config());
    write_json(&dir.join("schedule.json"), &plan)?;

    let real_spark = real_spark_home();
    let with_spark = |asked: Option<usize>, flag: &str| match (asked, &real_spark) {
        (Some(n), Some(_)) => Ok(n),
        (Some(n), None) if n > 0 => {
            anyhow::bail!("--{flag} {n} needs pyspark: run ops/dev/install-spark")
        }
        (Some(_), None) => Ok(0),
        (None, Some(_)) => Ok(1),
        (None, None) => Ok(0),
    };
    let sessions = with_spark(cfg.sessions, "sessions")?;
    let spark_batches = with_spark(cfg.spark_batches, "spark-batches")?;
    let mut cluster = Cluster::start(ClusterConfig {
        nodes: cfg.nodes,
        kindling: cfg.kindling.clone(),
        dir: dir.clone(),
        real_spark: real_spark.filter(|_| sessions + spark_batches > 0),
        max_drivers: cfg.max_drivers,
        heartbeat_timeout_secs: 10,
        recovery_grace_secs: 30,
        log_filter: cfg.log_filter.clone(),
        broker_on_s3: cfg.broker_on_s3,
        tail_wait: cfg.tail_wait,
    })
    .await
    .context("the cluster did not start")?;

    let rec = Arc::new(Recorder::create(
        &dir.join("history.jsonl"),
        Instant::now(),
    )?);
    let until_ms = cfg.duration.as_millis() as u64;
    let ctx = Arc::new(Ctx {
        cfg: WorkloadConfig {
            seed: cfg.seed,
            clients: cfg.clients,
            rate: cfg.rate,
            sessions,
            spark_batches,
            app: cluster.app.clone(),
            spark_app: cluster.spark_app.clone(),
            statement_ledger: cluster.statement_ledger.clone(),
            until_ms,
        },
        urls: cluster.client_urls(),
        rec: rec.clone(),
        known: Arc::new(Known::default()),
        http: workload::http_client(Duration::from_secs(10)),
    });
    let mut clients = vec![];
    for c in 0..cfg.clients as u32 {
        clients.push(tokio::spawn(workload::batch_client(ctx.clone(), c)));
    }
    for c in 0..sessions as u32 {
        let ctx = Arc::new(ctx.with_timeout(Duration::from_secs(20)));
        clients.push(tokio::spawn(workload::session_client(ctx, 100 + c)));
    }
    if spark_batches > 0 {
        let ctx = Arc::new(ctx.with_timeout(Duration::from_secs(20)));
        clients.push(tokio::spawn(workload::spark_batch_client(ctx, 200)));
    }

    let bound = cfg.recovery_bound;
    let faults = nemesis::run(
        &mut cluster,
        &plan,
        ctx.clone(),
        bound * 3,
        &dir.join("faults.jsonl"),
    )
    .await;
    for c in clients {
        let _ = c.await;
    }

    // Heal whatever is left, and measure how soon the cluster serves.
    let mut notes = vec![];
    if let Err(e) = cluster.heal_all() {
        notes.push(format!("the final heal failed: {e:#}"));
    }
    let healed = rec.now_ms();
    let proxies_healed = cluster.proxy_stats();
    let final_recovery_ms = workload::probe_until_serving(&ctx, healed, bound * 3).await;

    let http = workload::http_client(Duration::from_secs(30));
    settle(&cluster, &http, cfg.settle).await;
    let mut end = 0;
    for (_, url) in cluster.client_urls() {
        if let Some((e, _)) = collect::positions(&http, &url).await {
            end = end.max(e);
        }
    }
    let members = cluster.client_urls();
    for (id, url) in &members {
        if let Err(e) = collect::wait_projected(&http, url, end, Duration::from_secs(60)).await {
            notes.push(format!("node {id}: {e:#}"));
        }
    }
    // The log, read once through the first member that serves it.
    let mut events = BTreeMap::new();
    let mut events_end = None;
    let mut cluster_events = vec![];
    for (id, url) in &members {
        match collect::log(&http, url).await {
            Ok(read) => {
                events = read.jobs;
                events_end = Some(read.end);
                cluster_events = read.cluster;
                break;
            }
            Err(e) => notes.push(format!("node {id} could not serve the log: {e:#}")),
        }
    }
    let sample = collect::sample(&events, SAMPLED_JOBS);
    let mut snapshots = vec![];
    for (id, url) in &members {
        snapshots.push(collect::snapshot(&http, *id, url, &sample).await);
    }
    let fresh = match cluster.start_spare(&http).await {
        Ok(url) => {
            match collect::wait_projected(&http, &url, end, Duration::from_secs(120)).await {
                Ok(_) => collect::snapshot(&http, cluster.spare, &url, &sample).await,
                Err(e) => failed(cluster.spare, format!("{e:#}")),
            }
        }
        Err(e) => failed(cluster.spare, format!("{e:#}")),
    };
    rec.flush();
    write_json(
        &dir.join("proxies.json"),
        &serde_json::json!({
            "after_final_heal": proxies_healed,
            "at_collection_end": cluster.proxy_stats(),
        }),
    )?;
    drop(cluster);

    let ledger_text = std::fs::read_to_string(dir.join("ledger.tsv"))?;
    let (launches, ledger_errors) = ledger::parse(&ledger_text);
    let exits = ledger::exits(&ledger_text);
    let statement_runs =
        ledger::parse_statement_ledger(&std::fs::read_to_string(dir.join("statements.txt"))?);
    let obs = Observations {
        history: rec.ops(),
        launches,
        exits,
        ledger_errors,
        statement_runs,
        snapshots,
        fresh: Some(fresh),
        events,
        events_end,
        cluster_events,
        // The nodes run with `--kafka-transactions false` (cluster.rs).
        log_fenced: false,
        faults,
        final_recovery_ms,
        recovery_bound_ms: bound.as_millis() as u64,
        notes,
    };
    write_json(&dir.join("observations.json"), &obs)?;
    let violations = checker::check_all(&obs);
    write_json(&dir.join("violations.json"), &violations)?;
    let summary = Summary {
        seed: cfg.seed,
        ops: &obs.history,
        faults: &obs.faults,
        violations: &violations,
        final_recovery_ms: obs.final_recovery_ms,
        recovery_bound_ms: obs.recovery_bound_ms,
    }
    .render();
    std::fs::write(dir.join("summary.txt"), &summary)?;
    Ok(RunOutcome {
        violations,
        summary,
        dir,
    })
}

/// Re-checks a kept run from its `observations.json`.
pub fn recheck(dir: &Path, seed: u64) -> Result<RunOutcome> {
    let text = std::fs::read_to_string(dir.join("observations.json"))
        .with_context(|| format!("no observations.json in {}", dir.display()))?;
    let obs: Observations = serde_json::from_str(&text)?;
    let violations = checker::check_all(&obs);
    let summary = Summary {
        seed,
        ops: &obs.history,
        faults: &obs.faults,
        violations: &violations,
        final_recovery_ms: obs.final_recovery_ms,
        recovery_bound_ms: obs.recovery_bound_ms,
    }
    .render();
    Ok(RunOutcome {
        violations,
        summary,
        dir: dir.to_path_buf(),
    })
}

fn failed(node: u64, e: String) -> NodeSnapshot {
    NodeSnapshot {
        node,
        errors: vec![e],
        ..Default::default()
    }
}

/// Waits (up to `limit`) until every job a member lists has ended.
async fn settle(cluster: &Cluster, http: &reqwest::Client, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let urls = cluster.client_urls();
    let mut turn = 0;
    while tokio::time::Instant::now() < deadline {
        let (_, url) = &urls[turn % urls.len()];
        turn += 1;
        if let Ok(jobs) = collect::listing(http, url).await {
            let open = jobs.iter().any(|j| {
                !matches!(
                    j["state"].as_str(),
                    Some("success" | "dead" | "killed" | "error")
                )
            });
            if !open {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
