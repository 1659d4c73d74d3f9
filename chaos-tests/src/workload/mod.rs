//! The workload: concurrent clients, each talking to a random node per operation, submitting
//! batches (a short program of a seeded length and exit code), reading jobs through Livy's
//! and the native API, listing, killing and deleting; session clients that open real Spark
//! sessions and run statements that record their own execution; a few real Spark batches
//! spread over the run. Every operation goes to the history with its invocation, completion,
//! node and result.
//!
//! What a client chooses is seeded; what the cluster answers is not. Answers are classified
//! conservatively: a 2xx is `ok`, a 4xx is `fail` (refused, certainly not applied), and a
//! 5xx, a timeout or a broken connection is `unknown` (it may have been applied).

use crate::history::{Op, OpKind, OpResult};
use crate::ledger;
use crate::recorder::Recorder;
use crate::rng::Rng;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod session_client;

pub use session_client::session_client;

#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub clients: usize,
    /// Operations per second over all batch clients.
    pub rate: f64,
    /// Concurrent real Spark sessions (0: none).
    pub sessions: usize,
    /// Real Spark batches over the whole run (0: none).
    pub spark_batches: usize,
    /// The batch program (a local file the node checks exists).
    pub app: PathBuf,
    /// The real Spark batch program ([`ledger::SPARK_APP`]).
    pub spark_app: PathBuf,
    pub statement_ledger: PathBuf,
    /// Clients stop starting operations at this time (run clock, ms).
    pub until_ms: u64,
}

/// The ids clients have seen acknowledged, to read and kill.
#[derive(Default)]
pub struct Known {
    jobs: Mutex<Vec<u64>>,
}

impl Known {
    fn add(&self, id: u64) {
        self.jobs.lock().unwrap().push(id);
    }

    /// A random known job, favouring recent ones (those are the ones still moving).
    fn pick(&self, rng: &mut Rng) -> Option<u64> {
        let jobs = self.jobs.lock().unwrap();
        if jobs.is_empty() {
            return None;
        }
        let recent = jobs.len().min(20);
        Some(if rng.chance(70) {
            jobs[jobs.len() - 1 - rng.below(recent)]
        } else {
            jobs[rng.below(jobs.len())]
        })
    }
}

/// One HTTP call's outcome.
pub struct Answer {
    pub result: OpResult,
    pub status: Option<u16>,
    pub body: Value,
    pub error: Option<String>,
}

pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client")
}

pub async fn call(rb: reqwest::RequestBuilder) -> Answer {
    match rb.send().await {
        Err(e) => Answer {
            result: if e.is_connect() {
                OpResult::Fail
            } else {
                OpResult::Unknown
            },
            status: None,
            body: Value::Null,
            error: Some(e.to_string()),
        },
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await;
            let body = text
                .as_deref()
                .ok()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            let result = match status {
                200..=299 if text.is_ok() => OpResult::Ok,
                400..=499 => OpResult::Fail,
                _ => OpResult::Unknown,
            };
            let error = (result != OpResult::Ok).then(|| {
                format!(
                    "{status}: {}",
                    body.get("msg").and_then(Value::as_str).unwrap_or_default()
                )
            });
            Answer {
                result,
                status: Some(status),
                body,
                error,
            }
        }
    }
}

/// A client's context.
pub struct Ctx {
    pub cfg: WorkloadConfig,
    pub urls: Vec<(u64, String)>,
    pub rec: Arc<Recorder>,
    pub known: Arc<Known>,
    pub http: reqwest::Client,
}

impl Ctx {
    /// The same context with another HTTP timeout (Spark clients wait longer on answers).
    pub fn with_timeout(&self, timeout: Duration) -> Ctx {
        Ctx {
            cfg: self.cfg.clone(),
            urls: self.urls.clone(),
            rec: self.rec.clone(),
            known: self.known.clone(),
            http: http_client(timeout),
        }
    }

    fn op(&self, client: u32, kind: OpKind, node: u64, invoke_ms: u64, a: &Answer) -> Op {
        let mut op = Op::new(0, kind, invoke_ms, self.rec.now_ms(), a.result);
        op.client = client;
        op.node = node;
        op.error = a.error.clone();
        op
    }
}

/// Submits one ledger batch (it sleeps `sleep_ms`, then exits with `exit_code`; a failed one
/// is retried once) through `url`, records it and adds it to the known jobs; returns the id
/// if acknowledged.
pub async fn submit_batch(
    ctx: &Ctx,
    client: u32,
    kind: OpKind,
    node: u64,
    url: &str,
    sleep_ms: u64,
    exit_code: i32,
) -> Option<u64> {
    // Every ledger batch may be retried once, a second after a failure: the batches that
    // exit 1 run twice, and invariant 2 checks the second attempt against the first.
    let body = json!({
        "file": ctx.cfg.app.display().to_string(),
        "args": ledger::batch_args(sleep_ms, exit_code),
        "conf": {
            "kindling.restart.policy": "onFailure",
            "kindling.restart.maxAttempts": "2",
            "kindling.restart.backoff": "1s",
        },
    });
    let id = submit(ctx, client, kind, node, url, body, exit_code).await;
    if let Some(id) = id {
        ctx.known.add(id);
    }
    id
}

/// Submits one real Spark batch ([`ledger::SPARK_APP`], exiting with `exit_code`) through
/// `url` and records it; returns the id if acknowledged.
pub async fn submit_spark_batch(
    ctx: &Ctx,
    client: u32,
    node: u64,
    url: &str,
    exit_code: i32,
) -> Option<u64> {
    let body = json!({
        "file": ctx.cfg.spark_app.display().to_string(),
        "args": ledger::spark_batch_args(exit_code),
        "conf": {"spark.ui.enabled": "false", "spark.driver.memory": "512m"},
    });
    submit(ctx, client, OpKind::SubmitBatch, node, url, body, exit_code).await
}

/// Posts the Livy batch `body` (named after the client and time) and records the answer.
async fn submit(
    ctx: &Ctx,
    client: u32,
    kind: OpKind,
    node: u64,
    url: &str,
    mut body: Value,
    exit_code: i32,
) -> Option<u64> {
    let t0 = ctx.rec.now_ms();
    body["name"] = json!(format!("chaos-c{client}-t{t0}"));
    let a = call(ctx.http.post(format!("{url}/batches")).json(&body)).await;
    let mut op = ctx.op(client, kind, node, t0, &a);
    op.exit_code = Some(exit_code);
    let id = a.body["id"].as_u64().filter(|_| a.result == OpResult::Ok);
    op.job = id;
    op.state = a.body["state"].as_str().map(str::to_string);
    if a.result == OpResult::Ok && id.is_none() {
        op.result = OpResult::Unknown;
        op.error = Some(format!("2xx without an id: {}", a.body));
    }
    ctx.rec.record(op);
    id
}

/// Reads a job through Livy (`/batches/{id}`) or the native API and returns the state seen. A
/// native 404 is recorded as the state `absent`: the job could not be seen.
async fn read_job(
    ctx: &Ctx,
    client: u32,
    node: u64,
    url: &str,
    id: u64,
    livy: bool,
    kind: &str,
) -> Option<String> {
    let t0 = ctx.rec.now_ms();
    let path = if livy {
        format!("{url}/{kind}/{id}")
    } else {
        format!("{url}/api/v1/jobs/{id}")
    };
    let a = call(ctx.http.get(path)).await;
    let mut op = ctx.op(client, OpKind::ReadJob, node, t0, &a);
    op.job = Some(id);
    if a.result == OpResult::Ok {
        op.state = a.body["state"].as_str().map(str::to_string);
    } else if !livy && a.status == Some(404) {
        op.result = OpResult::Ok;
        op.state = Some("absent".into());
    }
    let state = op.state.clone();
    ctx.rec.record(op);
    state
}

/// A batch client until the workload's end.
pub async fn batch_client(ctx: Arc<Ctx>, client: u32) {
    let mut rng = Rng::fork(ctx.cfg.seed, 1000 + client as u64);
    let think_ms = (ctx.cfg.clients as f64 / ctx.cfg.rate * 1000.0) as u64;
    while ctx.rec.now_ms() < ctx.cfg.until_ms {
        let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
        match rng.weighted(&[40, 35, 5, 12, 8]) {
            0 => {
                let sleep_ms = rng.range(300, 3_000);
                let exit_code = if rng.chance(10) { 1 } else { 0 };
                submit_batch(
                    &ctx,
                    client,
                    OpKind::SubmitBatch,
                    node,
                    &url,
                    sleep_ms,
                    exit_code,
                )
                .await;
            }
            1 => {
                if let Some(id) = ctx.known.pick(&mut rng) {
                    let livy = rng.chance(50);
                    read_job(&ctx, client, node, &url, id, livy, "batches").await;
                }
            }
            2 => {
                let t0 = ctx.rec.now_ms();
                let a = call(ctx.http.get(format!("{url}/api/v1/jobs?limit=50"))).await;
                let op = ctx.op(client, OpKind::ListJobs, node, t0, &a);
                ctx.rec.record(op);
            }
            3 | 4 => {
                if let Some(id) = ctx.known.pick(&mut rng) {
                    let t0 = ctx.rec.now_ms();
                    let (kind, req) = if rng.chance(60) {
                        (
                            OpKind::KillJob,
                            ctx.http.post(format!("{url}/api/v1/jobs/{id}/kill")),
                        )
                    } else {
                        (
                            OpKind::DeleteJob,
                            ctx.http.delete(format!("{url}/batches/{id}")),
                        )
                    };
                    let a = call(req).await;
                    let mut op = ctx.op(client, kind, node, t0, &a);
                    op.job = Some(id);
                    op.state = a.body["state"].as_str().map(str::to_string);
                    ctx.rec.record(op);
                }
            }
            _ => unreachable!(),
        }
        let pause = rng.range(think_ms / 2, think_ms + think_ms / 2);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// The real Spark batches: `spark_batches` of them, evenly spread over the run, each through
/// a random node, one in four failing on purpose (seeded). A submission that is not
/// acknowledged (the node was down or cut off) is tried again through another random node,
/// up to five times, so that a short run still runs its one Spark job. The client then reads
/// the batch through random nodes each second until it ends. Spark batches are not among the
/// known jobs the batch clients kill: each runs its program to the end, and invariant 1
/// checks it ended as the program did.
pub async fn spark_batch_client(ctx: Arc<Ctx>, client: u32) {
    let mut rng = Rng::fork(ctx.cfg.seed, 3000 + client as u64);
    let n = ctx.cfg.spark_batches as u64;
    for i in 1..=n {
        // The run's clock decides when, as the fault schedule does.
        let at_ms = ctx.cfg.until_ms * i / (n + 1);
        let now_ms = ctx.rec.now_ms();
        if at_ms > now_ms {
            tokio::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
        }
        let exit_code = if rng.chance(25) { 1 } else { 0 };
        let mut id = None;
        for _ in 0..5 {
            let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
            id = submit_spark_batch(&ctx, client, node, &url, exit_code).await;
            if id.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let Some(id) = id else { continue };
        while ctx.rec.now_ms() < ctx.cfg.until_ms {
            let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
            let livy = rng.chance(50);
            let state = read_job(&ctx, client, node, &url, id, livy, "batches").await;
            if state.as_deref().is_some_and(terminal) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Whether a Livy state is one a job ends in.
fn terminal(state: &str) -> bool {
    matches!(state, "success" | "dead" | "killed" | "error")
}

/// After a fault heals: polls until every member answers, all name the same leader, and a
/// probe submission is acknowledged. Returns the milliseconds from `from_ms` until then, or
/// `None` if that did not happen within `give_up`.
pub async fn probe_until_serving(ctx: &Ctx, from_ms: u64, give_up: Duration) -> Option<u64> {
    let mut turn = 0usize;
    let deadline = from_ms + give_up.as_millis() as u64;
    while ctx.rec.now_ms() < deadline {
        let mut leaders = vec![];
        for (_, url) in &ctx.urls {
            leaders.push(
                crate::cluster::view(&ctx.http, url)
                    .await
                    .and_then(|v| v.leader_id),
            );
        }
        let agreed = leaders.iter().all(|l| l.is_some() && *l == leaders[0]);
        if agreed {
            let (node, url) = ctx.urls[turn % ctx.urls.len()].clone();
            turn += 1;
            if submit_batch(ctx, u32::MAX, OpKind::Probe, node, &url, 300, 0)
                .await
                .is_some()
            {
                return Some(ctx.rec.now_ms().saturating_sub(from_ms));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}
