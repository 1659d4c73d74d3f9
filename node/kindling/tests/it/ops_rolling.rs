//! A rolling restart as an operator runs one: `ops/dev/cluster stop ID` (SIGTERM) then
//! `start ID`, node after node, the leader included, on a real three-node cluster (broker,
//! MongoDB wire server) while clients keep submitting batches and running statements on a
//! session. The leader hands leadership over before it exits; no acknowledged submission is
//! lost, no statement runs twice (the driver's namespace counts its runs), the session lives
//! on, and the clients' errors (503 with Retry-After, or a refused connection to the node
//! that is down), retried on another node, are counted and printed.

use crate::common::dev_cluster::DevCluster;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// What the clients saw: acknowledged ids, and their errors by kind.
#[derive(Default)]
struct Seen {
    batches: Vec<u64>,
    statements: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

impl Seen {
    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// POSTs `body` to `path` on the nodes in turn until one acknowledges it (2xx); counts
/// each refusal on the way. A 503 must carry Retry-After.
fn post_until_acknowledged(c: &DevCluster, seen: &Mutex<Seen>, path: &str, body: &Value) -> Value {
    let deadline = Instant::now() + T;
    let mut id = 1;
    loop {
        match c.post(id, path, body) {
            Ok((201, b)) => return b,
            Ok((status, b)) => {
                let kind = format!("{status} {}", b["msg"].as_str().unwrap_or(""));
                seen.lock().unwrap().error(kind.chars().take(60).collect());
                assert_eq!(status, 503, "only 503 may refuse a valid request: {b}");
            }
            Err(_) => seen.lock().unwrap().error("connection refused".into()),
        }
        assert!(
            Instant::now() < deadline,
            "{path}: nothing acknowledged in {T:?}"
        );
        id = id % 3 + 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_on_any(c: &DevCluster, path: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        for id in 1..=3 {
            if let Ok((200, b)) = c.get(id, path) {
                return b;
            }
        }
        assert!(Instant::now() < deadline, "{path}: no node answered 200");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_rolling_restart_under_load_loses_nothing_and_runs_nothing_twice() {
    let c = Arc::new(DevCluster::up(3));
    let first_leader = c.leader(&[1, 2, 3], T);
    let app = c.dir.path().join("app.py");
    std::fs::write(&app, "print('rolled')\n").unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let session = post_until_acknowledged(&c, &seen, "/sessions", &json!({"kind": "pyspark"}));
    let sid = session["id"].as_u64().unwrap();
    let deadline = Instant::now() + T;
    while get_on_any(&c, &format!("/sessions/{sid}"))["state"] != "idle" {
        assert!(Instant::now() < deadline, "the session did not become idle");
        std::thread::sleep(Duration::from_millis(100));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (c, seen, stop) = (c.clone(), seen.clone(), stop.clone());
        let body = json!({"file": app.to_str().unwrap()});
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let b = post_until_acknowledged(&c, &seen, "/batches", &body);
                seen.lock().unwrap().batches.push(b["id"].as_u64().unwrap());
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let statements = {
        let (c, seen, stop) = (c.clone(), seen.clone(), stop.clone());
        // Each run adds one to the driver's count and answers it.
        let code = json!({"code": "runs = globals().get('runs', 0) + 1\nprint(runs)"});
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let path = format!("/sessions/{sid}/statements");
                let st = post_until_acknowledged(&c, &seen, &path, &code);
                let id = st["id"].as_u64().unwrap();
                seen.lock().unwrap().statements.push(id);
                let deadline = Instant::now() + T;
                while get_on_any(&c, &format!("{path}/{id}"))["state"] != "available" {
                    assert!(Instant::now() < deadline, "statement {id} did not complete");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };

    // The followers first, the leader last, as an operator would.
    let mut order: Vec<u64> = (1..=3).filter(|id| *id != first_leader).collect();
    order.push(first_leader);
    for id in order {
        c.run(&["stop", &id.to_string()]);
        c.run(&["start", &id.to_string()]);
        c.leader(&[1, 2, 3], T);
    }
    stop.store(true, Ordering::SeqCst);
    submitter.join().unwrap();
    statements.join().unwrap();

    let seen = seen.lock().unwrap();
    eprintln!(
        "rolling restart: {} batches and {} statements acknowledged; client errors, retried: {:?}",
        seen.batches.len(),
        seen.statements.len(),
        seen.errors
    );
    assert!(seen.batches.len() >= 10, "{}", seen.batches.len());
    assert!(seen.statements.len() >= 3, "{}", seen.statements.len());

    // The old leader gave leadership up before it exited, and a peer took over.
    let log = std::fs::read_to_string(c.dir.path().join(format!("cluster/node{first_leader}.log")))
        .unwrap();
    assert!(log.contains("giving leadership up first"), "{first_leader}");
    assert!(log.contains("a new leader took over"), "{first_leader}");

    // Every acknowledged batch is there, on every node.
    for id in 1..=3 {
        for b in &seen.batches {
            let (status, body) = c.get(id, &format!("/batches/{b}")).unwrap();
            assert_eq!(status, 200, "batch {b} on node {id}: {body}");
        }
    }
    // Every statement ran once: the counts the driver answered are 1, 2, 3, ... with no
    // number twice and none missing, across every statement the session recorded.
    let all = get_on_any(&c, &format!("/sessions/{sid}/statements"));
    let mut runs: Vec<u64> = all["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "available")
        .map(|s| {
            let text = s["output"]["data"]["text/plain"].as_str().unwrap_or("");
            text.trim().parse::<u64>().unwrap_or_else(|_| panic!("{s}"))
        })
        .collect();
    runs.sort_unstable();
    let expected: Vec<u64> = (1..=runs.len() as u64).collect();
    assert_eq!(
        runs, expected,
        "a statement ran twice or a run went unrecorded"
    );
    for st in &seen.statements {
        assert!(
            all["statements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == *st),
            "acknowledged statement {st} is missing"
        );
    }
    assert_eq!(get_on_any(&c, &format!("/sessions/{sid}"))["state"], "idle");
}
