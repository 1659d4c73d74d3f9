//! The session clients of the workload: each opens a real Spark session, runs statements that
//! record their own execution until the workload's end, replaces a session that ends early,
//! and deletes its last one.

use super::{call, terminal, Ctx};
use crate::history::{OpKind, OpResult};
use crate::ledger;
use crate::rng::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Sessions one session client opens at most: a session that ends (the batch clients kill
/// known jobs, sessions included, and early in a run a session is one of few) is replaced,
/// so statements run through the whole run; the cap bounds the Spark drivers a run starts.
const SESSIONS_PER_CLIENT: usize = 12;

/// How long a session client keeps asking for its session's deletion at the workload's end.
const END_DELETE_MS: u64 = 60_000;

/// A session client: opens a real Spark session, runs statements until the workload's end,
/// then deletes it. A session that ends before that is replaced, up to `SESSIONS_PER_CLIENT`.
/// Statements are a few seconds apart: each adds three events or more to the log, and on the
/// harness's broker (tansu, whose fetches cost time in proportion to the log) an hour of
/// statements a second or so apart grew the log past what the nodes kept up with.
pub async fn session_client(ctx: Arc<Ctx>, client: u32) {
    let mut rng = Rng::fork(ctx.cfg.seed, 2000 + client as u64);
    let mut statements = 0u64;
    for _ in 0..SESSIONS_PER_CLIENT {
        if ctx.rec.now_ms() >= ctx.cfg.until_ms {
            return;
        }
        let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
        let t0 = ctx.rec.now_ms();
        let a = call(ctx.http.post(format!("{url}/sessions")).json(&json!({
            "kind": "pyspark",
            "name": format!("chaos-session-c{client}-t{t0}"),
            "conf": {"spark.ui.enabled": "false", "spark.driver.memory": "512m"},
        })))
        .await;
        let mut op = ctx.op(client, OpKind::CreateSession, node, t0, &a);
        let id = a.body["id"].as_u64().filter(|_| a.result == OpResult::Ok);
        op.job = id;
        op.state = a.body["state"].as_str().map(str::to_string);
        ctx.rec.record(op);
        let Some(id) = id else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        ctx.known.add(id);
        let mut state = String::from("not_started");
        while ctx.rec.now_ms() < ctx.cfg.until_ms && !terminal(&state) {
            let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
            if state != "idle" && state != "busy" {
                let t0 = ctx.rec.now_ms();
                let a = call(ctx.http.get(format!("{url}/sessions/{id}"))).await;
                let mut op = ctx.op(client, OpKind::ReadJob, node, t0, &a);
                op.job = Some(id);
                op.state = a.body["state"].as_str().map(str::to_string);
                if let Some(s) = &op.state {
                    state = s.clone();
                }
                ctx.rec.record(op);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            statements += 1;
            let token = format!("c{client}-s{id}-n{statements}");
            let t0 = ctx.rec.now_ms();
            let a = call(
                ctx.http
                    .post(format!("{url}/sessions/{id}/statements"))
                    .json(
                        &json!({"code": ledger::statement_code(&ctx.cfg.statement_ledger, &token)}),
                    ),
            )
            .await;
            let mut op = ctx.op(client, OpKind::SubmitStatement, node, t0, &a);
            op.job = Some(id);
            op.token = Some(token);
            let sid = a.body["id"].as_u64().filter(|_| a.result == OpResult::Ok);
            op.statement = sid;
            op.state = a.body["state"].as_str().map(str::to_string);
            ctx.rec.record(op);
            if let Some(sid) = sid {
                let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
                let t0 = ctx.rec.now_ms();
                let a = call(
                    ctx.http
                        .get(format!("{url}/api/v1/jobs/{id}/statements/{sid}?wait=10s")),
                )
                .await;
                let mut op = ctx.op(client, OpKind::ReadStatement, node, t0, &a);
                op.job = Some(id);
                op.statement = Some(sid);
                op.state = a.body["state"].as_str().map(str::to_string);
                op.output = a.body.get("output").filter(|o| !o.is_null()).cloned();
                ctx.rec.record(op);
            }
            // The session's own state, to notice its end.
            let t0 = ctx.rec.now_ms();
            let a = call(ctx.http.get(format!("{url}/sessions/{id}"))).await;
            let mut op = ctx.op(client, OpKind::ReadJob, node, t0, &a);
            op.job = Some(id);
            op.state = a.body["state"].as_str().map(str::to_string);
            if let Some(s) = &op.state {
                state = s.clone();
            }
            ctx.rec.record(op);
            tokio::time::sleep(Duration::from_millis(rng.range(2_000, 5_000))).await;
        }
        if !terminal(&state) {
            // A client that wants its session gone asks until it is told so, as a user
            // would: a 503 ("retry") or a lost answer in the faults' last moments would
            // otherwise leave the session running after the run, for invariant 1 to blame
            // on the cluster.
            let give_up = ctx.rec.now_ms() + END_DELETE_MS;
            loop {
                let (node, url) = ctx.urls[rng.below(ctx.urls.len())].clone();
                let t0 = ctx.rec.now_ms();
                let a = call(ctx.http.delete(format!("{url}/sessions/{id}"))).await;
                let mut op = ctx.op(client, OpKind::DeleteJob, node, t0, &a);
                op.job = Some(id);
                ctx.rec.record(op);
                let done = a.result == OpResult::Ok || a.status == Some(404);
                if done || ctx.rec.now_ms() >= give_up {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
