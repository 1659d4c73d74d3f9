//! The REST surface against a running node whose `spark-submit` is a short shell program
//! (see `common::fake_spark_home`): what is checked here is the node's own behaviour —
//! validation, errors, queueing, replay, the OpenAPI document — not Spark.

use crate::common::{fake_spark_home, snapshot, Node};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn start(dir: &std::path::Path, extra: &[&str]) -> Node {
    Node::start(&dir.join("data"), &fake_spark_home(dir), extra)
}

fn app(dir: &std::path::Path) -> String {
    crate::common::program(dir, "app.py", "print('hello')\n")
}

#[test]
fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Bodies up to 8 MiB: more than the driver link carries in one statement.
    let node = start(dir.path(), &["--max-body-bytes", "8388608"]);
    let file = app(dir.path());
    // A session whose driver exits at once (the fake spark-submit) ends in error: a dead
    // session for the statement checks below.
    let (_, s) = node.post("/sessions", json!({}));
    let dead = s["id"].as_u64().unwrap();
    let st = node.wait_state(&format!("/sessions/{dead}"), &["error", "dead"], T);
    assert_eq!(st["state"], "error");

    let before = node.log_end();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/batches", "{\"file\": ".into(), 400, "not valid JSON"),
        ("/batches", "".into(), 400, "empty"),
        ("/batches", "[1,2]".into(), 400, "invalid"),
        (
            "/batches",
            json!({"file": file, "driverCores": "four"}).to_string(),
            400,
            "driverCores",
        ),
        (
            "/batches",
            json!({"file": file, "args": "a b"}).to_string(),
            400,
            "args",
        ),
        (
            "/batches",
            json!({"file": file, "fiel": 1}).to_string(),
            400,
            "unknown field `fiel`",
        ),
        (
            "/batches",
            json!({"className": "x"}).to_string(),
            400,
            "file is required",
        ),
        (
            "/batches",
            json!({"file": "/no/such/app.py"}).to_string(),
            409,
            "/no/such/app.py does not exist",
        ),
        (
            "/batches",
            json!({"file": file, "pyFiles": ["/no/dep.zip"]}).to_string(),
            409,
            "pyFiles",
        ),
        (
            "/batches",
            json!({"file": file, "driverCores": -1}).to_string(),
            400,
            "driverCores must be between 1",
        ),
        (
            "/batches",
            json!({"file": file, "numExecutors": 0}).to_string(),
            400,
            "numExecutors must be between 1",
        ),
        (
            "/batches",
            json!({"file": file, "executorCores": 100000}).to_string(),
            400,
            "executorCores",
        ),
        (
            "/batches",
            json!({"file": file, "driverMemory": "99999t"}).to_string(),
            400,
            "driverMemory",
        ),
        (
            "/batches",
            json!({"file": file, "executorMemory": "lots"}).to_string(),
            400,
            "executorMemory",
        ),
        (
            "/batches",
            json!({"file": file, "conf": {"a": {"b": 1}}}).to_string(),
            400,
            "conf.a",
        ),
        (
            "/batches",
            json!({"file": file, "name": "x".repeat(300)}).to_string(),
            400,
            "name",
        ),
        // A NUL byte no process takes as an argument: refused now, not at launch.
        (
            "/batches",
            json!({"file": file, "args": ["a\u{0}b"]}).to_string(),
            400,
            "args[0] contains a NUL byte",
        ),
        (
            "/batches",
            json!({"file": file, "name": "pi\u{0}"}).to_string(),
            400,
            "name contains a NUL byte",
        ),
        (
            "/api/v1/batches",
            json!({"file": file, "conf": {"spark.x": "a\u{0}"}}).to_string(),
            400,
            "conf.spark.x contains a NUL byte",
        ),
        (
            "/batches",
            json!({"file": file, "driverMemory": "512b"}).to_string(),
            400,
            "driverMemory must be between 1m and 4t",
        ),
        (
            "/sessions",
            json!({"kind": "cobol"}).to_string(),
            400,
            "kind \"cobol\" is unknown",
        ),
        (
            "/sessions",
            json!({"kind": "spark"}).to_string(),
            400,
            "not supported",
        ),
        ("/sessions", json!({"ttl": "soon"}).to_string(), 400, "ttl"),
        (
            "/sessions",
            json!({"idleTimeout": "5y"}).to_string(),
            400,
            "idleTimeout",
        ),
        (
            "/sessions",
            json!({"heartbeatTimeoutInSecond": -5}).to_string(),
            400,
            "heartbeatTimeoutInSecond",
        ),
        (
            "/sessions/4242/statements",
            json!({"code": "1"}).to_string(),
            404,
            "Session '4242' not found.",
        ),
        (
            "/sessions/abc/statements",
            json!({"code": "1"}).to_string(),
            404,
            "not found",
        ),
        (
            &*Box::leak(format!("/sessions/{dead}/statements").into_boxed_str()),
            json!({"code": "1"}).to_string(),
            409,
            "does not accept statements",
        ),
        (
            &*Box::leak(format!("/sessions/{dead}/statements").into_boxed_str()),
            json!({"code": "x".repeat(5 << 20)}).to_string(),
            413,
            "a statement may be at most 4193280 bytes",
        ),
        (
            &*Box::leak(format!("/sessions/{dead}/statements").into_boxed_str()),
            json!({"code": "1", "kind": "r"}).to_string(),
            400,
            "not supported",
        ),
        (
            &*Box::leak(format!("/sessions/{dead}/statements").into_boxed_str()),
            json!({"kode": "1"}).to_string(),
            400,
            "kode",
        ),
        (
            &*Box::leak(format!("/sessions/{dead}/statements/7/cancel").into_boxed_str()),
            "{}".into(),
            404,
            "Statement '7' not found.",
        ),
        (
            "/api/v1/batches",
            json!({"file": file, "driverCores": 0}).to_string(),
            400,
            "driverCores",
        ),
        (
            "/api/v1/jobs/4242/statements",
            json!({"code": "1"}).to_string(),
            404,
            "not found",
        ),
    ];
    for (path, body, status, needle) in &cases {
        let (got, reply) = node.post_raw(path, body.clone());
        assert_eq!(got, *status, "POST {path} {body} -> {reply}");
        let msg = reply["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("no msg in {reply}"));
        assert!(
            msg.contains(needle),
            "POST {path} {body}: {msg:?} lacks {needle:?}"
        );
    }
    // A body over the limit.
    // (On a connection of its own: the node answers before reading the whole body, then
    // closes the connection rather than read the rest.)
    let huge = json!({"file": file, "args": ["x".repeat(9 << 20)]}).to_string();
    let r = reqwest::blocking::Client::new()
        .post(node.url("/batches"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let reply: Value = r.json().unwrap();
    assert!(
        reply["msg"].as_str().unwrap().contains("8388608"),
        "{reply}"
    );
    // Unknown ids and bad parameters on reads.
    for (path, status) in [
        ("/batches/4242", 404),
        ("/batches/4242/log", 404),
        ("/sessions/4242", 404),
        ("/sessions/4242/state", 404),
        ("/api/v1/jobs/4242", 404),
        ("/api/v1/jobs/4242/events", 404),
        ("/batches?from=x", 400),
        ("/batches?size=-3", 400),
        ("/api/v1/jobs?state=happy", 400),
        ("/api/v1/jobs?kind=cron", 400),
        ("/api/v1/jobs?limit=0", 400),
        ("/api/v1/jobs/0/statements/0?wait=2h", 400),
        ("/no/such/endpoint", 404),
    ] {
        let (got, reply) = node.get(path);
        assert_eq!(got, status, "GET {path} -> {reply}");
        assert!(reply["msg"].is_string(), "GET {path} -> {reply}");
    }
    assert_eq!(node.delete("/batches/4242").0, 404);
    assert_eq!(
        node.log_end(),
        before,
        "no rejected request wrote to the log"
    );
    // The node still serves, and what was stored is intact.
    assert_eq!(node.get(&format!("/sessions/{dead}")).1["state"], "error");
    let (status, ok) = node.post("/batches", json!({"file": file}));
    assert_eq!(status, 201, "{ok}");
}

#[test]
fn jobs_queue_when_drivers_are_full_and_start_as_capacity_frees() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &["--max-drivers", "1"]);
    let file = app(dir.path());
    let release = dir.path().join("go");
    // The fake spark-submit runs until the file `go` exists.
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", release.display());
    std::fs::write(dir.path().join("fake-spark/bin/hold"), &script).unwrap();
    let (_, a) = node.post(
        "/batches",
        json!({"file": file, "args": ["sleep=0", "exit=0"], "conf": {"spark.x": "1"}}),
    );
    let (_, b) = node.post("/batches", json!({"file": file, "args": ["exit=3"]}));
    let (a, b) = (a["id"].as_u64().unwrap(), b["id"].as_u64().unwrap());
    let first = node.wait_state(&format!("/api/v1/jobs/{a}"), &["success", "dead"], T);
    assert_eq!(first["state"], "success");
    let second = node.wait_state(&format!("/api/v1/jobs/{b}"), &["success", "dead"], T);
    assert_eq!(second["state"], "dead");
    assert_eq!(second["exitCode"], 3);
    // The second started only after the first ended.
    let a_end = first["finishedAt"].as_i64().unwrap();
    let b_start = second["startedAt"].as_i64().unwrap();
    assert!(
        b_start >= a_end,
        "second started at {b_start}, first ended at {a_end}"
    );
    // Filters and paging of the native list.
    let dead = node.get("/api/v1/jobs?state=dead&kind=batch").1;
    assert_eq!(dead["total"], 1);
    assert_eq!(dead["jobs"][0]["id"], b);
    let page = node.get("/api/v1/jobs?limit=1&offset=1").1;
    assert_eq!(
        (page["total"].as_u64(), page["jobs"][0]["id"].as_u64()),
        (Some(2), Some(b))
    );
    let none = node.get("/api/v1/jobs?owner=nobody").1;
    assert_eq!(none["total"], 0);
    // doAs overrides proxyUser, as in Livy.
    let (_, c) = node.post(
        "/batches?doAs=carol",
        json!({"file": file, "proxyUser": "dave"}),
    );
    assert_eq!(c["proxyUser"], "carol");
}

#[test]
fn projections_rebuild_identically_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path(), &[]);
    let file = app(dir.path());
    for i in 0..6 {
        let (status, _) = node.post(
            "/batches",
            json!({"file": file, "args": [format!("exit={}", i % 2)], "name": format!("b{i}")}),
        );
        assert_eq!(status, 201);
    }
    let (_, s) = node.post("/sessions", json!({"kind": "sql"}));
    let (_, k) = node.post("/batches", json!({"file": file, "args": ["sleep=30"]}));
    node.wait_state(&format!("/api/v1/jobs/{}", k["id"]), &["running"], T);
    node.delete(&format!("/batches/{}", k["id"]));
    for id in 0..6 {
        node.wait_state(&format!("/api/v1/jobs/{id}"), &["success", "dead"], T);
    }
    node.wait_state(&format!("/api/v1/jobs/{}", s["id"]), &["error"], T);
    node.wait_state(&format!("/api/v1/jobs/{}", k["id"]), &["killed"], T);
    let before = snapshot(&node);
    assert_eq!(before.as_array().unwrap().len(), 8);

    let term = node.get("/api/v1/cluster").1["term"].as_u64().unwrap();
    node.stop();
    node.restart();
    assert_eq!(snapshot(&node), before, "a restart changes nothing");
    let new_term = node.get("/api/v1/cluster").1["term"].as_u64().unwrap();
    // A lone member may resume its term: its previous run is gone (sled admits one process
    // per data directory), so there is no older scheduler left to fence.
    assert!(
        new_term >= term,
        "terms never go back ({term} -> {new_term})"
    );
    assert_eq!(node.get("/api/v1/cluster").1["scheduling"], true);

    node.stop();
    std::fs::remove_dir_all(node.data.join("projections")).unwrap();
    node.restart();
    assert_eq!(
        snapshot(&node),
        before,
        "projections rebuilt from the log are identical"
    );
    // And the node goes on: new ids do not collide with replayed ones.
    let (_, new) = node.post("/batches", json!({"file": file}));
    assert!(new["id"].as_u64().unwrap() >= 8);
}

#[test]
fn the_event_log_pages_in_order_and_matches_every_jobs_history() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let file = app(dir.path());
    let ids: Vec<u64> = (0..4)
        .map(|i| {
            let (_, b) = node.post(
                "/batches",
                json!({"file": file, "args": [format!("exit={}", i % 2)]}),
            );
            b["id"].as_u64().unwrap()
        })
        .collect();
    for id in &ids {
        node.wait_state(&format!("/api/v1/jobs/{id}"), &["success", "dead"], T);
    }
    // Page through the whole log three events at a time.
    let mut from = 0;
    let mut log: Vec<Value> = vec![];
    loop {
        let (status, page) = node.get(&format!("/api/v1/events?from={from}&limit=3"));
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 3, "{page}");
        log.extend(events.iter().cloned());
        from = page["next"].as_u64().unwrap();
        if from >= page["logEnd"].as_u64().unwrap() {
            break;
        }
        assert!(
            !events.is_empty(),
            "a page short of the end holds events: {page}"
        );
    }
    let positions: Vec<u64> = log
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    for id in &ids {
        let mut mine: Vec<Value> = log
            .iter()
            .filter(|e| e["aggregate"] == "job" && e["job"] == *id)
            .cloned()
            .collect();
        for e in &mut mine {
            let m = e.as_object_mut().unwrap();
            m.remove("aggregate");
            m.remove("job");
        }
        let (_, history) = node.get(&format!("/api/v1/jobs/{id}/events"));
        assert_eq!(Value::Array(mine), history["events"], "job {id}");
        assert_eq!(history["events"][0]["type"], "JobSubmitted");
    }
    // Past the end: nothing, and `next` stays put.
    let end = node.log_end();
    let (_, past) = node.get(&format!("/api/v1/events?from={}", end + 10));
    assert_eq!(past["events"], json!([]));
    assert_eq!(past["next"], end + 10);
    for bad in ["limit=0", "limit=1001", "from=-1", "from=x"] {
        let (status, reply) = node.get(&format!("/api/v1/events?{bad}"));
        assert_eq!(status, 400, "{bad} -> {reply}");
        let name = bad.split('=').next().unwrap();
        assert!(
            reply["msg"].as_str().unwrap().contains(name),
            "{bad} -> {reply}"
        );
    }
}

#[test]
fn openapi_document_matches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let file = app(dir.path());
    let (_, b) = node.post("/batches", json!({"file": file}));
    let id = b["id"].as_u64().unwrap();
    node.wait_state(&format!("/api/v1/jobs/{id}"), &["success"], T);
    let (_, s) = node.post("/sessions", json!({}));
    let session = s["id"].as_u64().unwrap();
    node.wait_state(&format!("/api/v1/jobs/{session}"), &["error"], T);
    let (status, doc) = node.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/batches",
        "/sessions/{id}/statements",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}/events",
        "/api/v1/events",
        "/version",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }
    let schemas = &doc["components"]["schemas"];
    let mut checked = 0;
    // DELETE last: it removes the batch the other operations read.
    let mut ops: Vec<(&String, &String, &Value)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .iter()
                .map(move |(m, op)| (p, m, op))
        })
        .collect();
    ops.sort_by_key(|(_, m, _)| *m == "delete");
    for (path, method, op) in ops {
        {
            let job = if path.starts_with("/sessions") {
                session
            } else {
                id
            };
            let concrete = path.replace("{id}", &job.to_string()).replace("{sid}", "0");
            // Every documented operation is routed: an unrouted one answers with the
            // fallback's "no such endpoint".
            let r = reqwest::blocking::Client::new()
                .request(method.to_uppercase().parse().unwrap(), node.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .unwrap();
            let status = r.status().as_u16();
            if path == "/api/v1/stream" {
                // It never ends; its answer is judged by its start (tests/it/stream.rs).
                assert_eq!(status, 200);
                let kind = r.headers()["content-type"].to_str().unwrap();
                assert!(kind.starts_with("text/event-stream"), "{kind}");
                checked += 1;
                continue;
            }
            let text = r.text().unwrap();
            assert!(
                !text.contains("no such endpoint") && status != 405,
                "{method} {path} is not routed"
            );
            let documented = op["responses"].as_object().unwrap();
            if method == "get" && !path.contains("{sid}") && path != "/metrics" {
                assert!(
                    documented.contains_key(&status.to_string()),
                    "{method} {path} answered {status}, undocumented"
                );
                // The documented 200 schema's required fields are all present.
                let schema = &documented["200"]["content"]["application/json"]["schema"];
                let name = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next());
                if let (200, Some(name)) = (status, name) {
                    let body: Value = serde_json::from_str(&text).unwrap();
                    for field in schemas[name]["required"].as_array().into_iter().flatten() {
                        let f = field.as_str().unwrap();
                        assert!(
                            body.get(f).is_some(),
                            "{path}: field {f} of {name} missing in {body}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 8, "checked {checked} response schemas");
}

#[test]
fn version_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let v = node.get("/version").1;
    assert!(v["version"].as_str().unwrap().starts_with("0.8."));
    let c = node.get("/api/v1/cluster").1;
    assert_eq!(c["leader_id"], 1);
    assert!(c["term"].as_u64().unwrap() >= 1);
    assert_eq!(c["node_id"], 1);
    assert_eq!(c["scheduling"], true);
    let members = c["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{c}");
    assert_eq!(members[0]["id"], 1);
    assert_eq!(
        members[0]["http_addr"].as_str().unwrap(),
        node.base.trim_start_matches("http://")
    );
    assert_eq!(members[0]["leader"], true);
    assert_eq!(members[0]["voter"], true);
    let (status, _) = node.post("/batches", json!({"file": app(dir.path())}));
    assert_eq!(status, 201);
    let m = reqwest::blocking::get(node.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        m.contains("kindling_api_submissions_total{kind=\"batch\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("# TYPE kindling_eventlog_append_latency_seconds histogram"),
        "{m}"
    );
    // Requests by route template (never the concrete path), method and status class, with
    // their latency; and which build runs.
    let (status, _) = node.get("/batches/424242");
    assert_eq!(status, 404);
    let m = reqwest::blocking::get(node.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let has = |name: &str, labels: &[&str]| {
        m.lines()
            .any(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
    };
    for labels in [
        &["route=\"/batches\"", "method=\"POST\"", "status=\"2xx\""][..],
        &[
            "route=\"/batches/{id}\"",
            "method=\"GET\"",
            "status=\"4xx\"",
        ][..],
        &["route=\"/version\"", "method=\"GET\"", "status=\"2xx\""][..],
    ] {
        assert!(
            has("kindling_http_requests_total{", labels),
            "{labels:?} in\n{m}"
        );
    }
    assert!(!m.contains("424242"), "no concrete path is a label");
    assert!(
        has(
            "kindling_http_request_duration_seconds_bucket{",
            &["route=\"/batches\"", "le=\"0.005\""]
        ),
        "{m}"
    );
    assert!(has("kindling_build_info{", &["version=\"0.1.0\""]), "{m}");
}

#[test]
fn config_errors_are_reported_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_kindling");
    let spark = fake_spark_home(dir.path());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(bin)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .env("KINDLING_SPARK_HOME", &spark)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--max-drivers", "0"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--max-drivers must be at least 1"), "{err}");
    let toml = dir.path().join("k.toml");
    std::fs::write(&toml, "listen = \"127.0.0.1:1\"\nmax-drivres = 3\n").unwrap();
    let (code, err) = run(&["--config", toml.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("max-drivres"), "{err}");
    let (code, err) = run(&[], &[("KINDLING_LOCAL_MASTER", "yarn")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--local-master"), "{err}");
    let (code, err) = run(&["--event-log", "kafka"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--kafka-brokers"), "{err}");
    let (code, err) = run(&[], &[("KINDLING_PROJECTIONS", "postgres")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("sled or mongodb"), "{err}");
    let (code, err) = run(&["--spark-home", "/nowhere"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nowhere"), "{err}");
}

#[test]
fn owner_comes_from_the_trusted_proxy_header_and_filters_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(
        dir.path(),
        &[
            "--trusted-user-header",
            "X-Remote-User",
            "--trusted-proxies",
            "127.0.0.1",
            "--max-drivers",
            "1",
        ],
    );
    let file = app(dir.path());
    let http = reqwest::blocking::Client::new();
    for user in ["ann", "bob", "ann"] {
        let r = http
            .post(node.url("/batches"))
            .header("X-Remote-User", user)
            .json(&json!({"file": file, "args": ["sleep=30"]}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body: Value = r.json().unwrap();
        assert_eq!(body["owner"], user);
    }
    let anns = node.get("/api/v1/jobs?owner=ann").1;
    assert_eq!(anns["total"], 2);
    assert!(anns["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["owner"] == "ann"));
    // The user the proxy names sees their own jobs only.
    let bobs: Value = http
        .get(node.url("/batches"))
        .header("X-Remote-User", "bob")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(bobs["total"], 1, "{bobs}");
    // Without the header there is no owner.
    let (_, anon) = node.post("/batches", json!({"file": file}));
    assert!(anon["owner"].is_null());

    // From an address that is not a trusted proxy the header is ignored: a client cannot
    // name itself.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = start(
        dir.path(),
        &[
            "--trusted-user-header",
            "X-Remote-User",
            "--trusted-proxies",
            "10.0.0.0/8",
        ],
    );
    let r = http
        .post(elsewhere.url("/batches"))
        .header("X-Remote-User", "ann")
        .json(&json!({"file": file}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(r.json::<Value>().unwrap()["owner"].is_null());
}
