//! Queues with real processes, on one node that runs one driver at a time (`--max-drivers
//! 1`) and whose `spark-submit` runs the batch's Python file (Spark is not what is checked):
//! a cluster's queues set and shown, a queue's waiting jobs in their order with the reason
//! each waits, and the order in which they then start (the oldest job's queue first between
//! equal shares, then priority within the queue), and the settings that are refused.

use crate::common::Node;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn batch(node: &Node, file: &str, queue: &str, priority: i32) -> u64 {
    let body = json!({"file": file, "queue": queue, "conf": {"kindling.priority": priority}});
    let (status, b) = node.post("/batches", body);
    assert_eq!(status, 201, "{b}");
    b["id"].as_u64().unwrap()
}

fn ids(jobs: &Value) -> Vec<u64> {
    jobs.as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn queues_order_what_waits_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &crate::common::cluster::runner_only_spark_home(dir.path()),
        &["--max-drivers", "1"],
    );
    let set = json!({
        "queues": {"etl": {"weight": 3}, "adhoc": {"maxDrivers": 1, "maxDriverMemory": "4g"}},
        "maxDriversPerUser": 4,
    });
    let (status, queues) = node.put("/api/v1/clusters/local/queues", set);
    assert_eq!(status, 200, "{queues}");
    assert_eq!(queues["maxDriversPerUser"], 4, "{queues}");
    let etl = &queues["queues"].as_array().unwrap()[1];
    assert_eq!(
        (etl["name"].as_str(), etl["weight"].as_u64()),
        (Some("etl"), Some(3))
    );
    let (_, adhoc) = node.get("/api/v1/clusters/local/queues/adhoc");
    assert_eq!(adhoc["limits"]["maxDriverMemory"], "4096m", "{adhoc}");

    // The one driver slot is taken until `release` exists.
    let release = dir.path().join("release");
    let wait = crate::common::program(
        dir.path(),
        "wait.py",
        &format!(
            "import os, time\nwhile not os.path.exists({:?}):\n    time.sleep(0.05)\n",
            release.display().to_string()
        ),
    );
    let quick = crate::common::program(dir.path(), "quick.py", "print('done')\n");
    let blocker = batch(&node, &wait, "adhoc", 0);
    node.wait_state(&format!("/batches/{blocker}"), &["running"], T);
    let a = batch(&node, &quick, "etl", 0);
    let b = batch(&node, &quick, "etl", 5);
    let c = batch(&node, &quick, "adhoc", 9);

    let (status, etl) = node.get("/api/v1/clusters/local/queues/etl");
    assert_eq!(status, 200, "{etl}");
    assert_eq!(ids(&etl["waitingJobs"]), [b, a], "priority first: {etl}");
    let positions: Vec<u64> = etl["waitingJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2]);
    let (_, adhoc) = node.get("/api/v1/clusters/local/queues/adhoc");
    assert_eq!(
        (
            adhoc["inUse"]["drivers"].as_u64(),
            adhoc["waiting"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // The scheduler records why each waits: c behind its queue's limit, the others for room.
    let waits = |id: u64| {
        node.wait_for(&format!("/api/v1/jobs/{id}"), T, |d| !d["reason"].is_null())["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(waits(c).contains("queue 'adhoc'"), "{}", waits(c));
    let doc = node.get(&format!("/api/v1/jobs/{b}")).1;
    assert_eq!(
        (doc["queue"].as_str(), doc["priority"].as_i64()),
        (Some("etl"), Some(5))
    );
    // Each waiting job's own document says where it stands in its queue.
    let position = |id: u64| node.get(&format!("/api/v1/jobs/{id}")).1["queuePosition"].as_u64();
    assert_eq!(
        [position(b), position(a), position(c)],
        [Some(1), Some(2), Some(1)]
    );
    assert_eq!(position(blocker), None, "it runs");
    assert!(waits(a).contains("room on cluster 'local'"), "{}", waits(a));

    std::fs::write(&release, "").unwrap();
    let started = |id: u64| {
        let done = node.wait_state(&format!("/batches/{id}"), &["success"], T);
        node.get(&format!("/api/v1/jobs/{}", done["id"])).1["startedAt"]
            .as_i64()
            .unwrap()
    };
    let (sa, sb, sc) = (started(a), started(b), started(c));
    // Both queues idle: etl's oldest job is older than adhoc's, so etl goes first, its
    // priority 5 job before its priority 0 one; then adhoc.
    assert!(sb < sa && sa < sc, "b {sb}, a {sa}, c {sc}");

    for (path, body, named) in [
        (
            "/api/v1/clusters/local/queues",
            json!({"queues": {"x": {"weight": 0}}}),
            "queues.x.weight",
        ),
        (
            "/api/v1/clusters/local/queues",
            json!({"queues": {"x": {"maxDrivers": -1}}}),
            "queues.x.maxDrivers",
        ),
        (
            "/api/v1/clusters/local/queues",
            json!({"maxDriversPerUser": 0}),
            "maxDriversPerUser",
        ),
        (
            "/api/v1/clusters/local/queues",
            json!({"queue": {}}),
            "queue",
        ),
    ] {
        let (status, refused) = node.put(path, body);
        assert_eq!(status, 400, "{refused}");
        assert!(
            refused["msg"].as_str().unwrap().contains(named),
            "{refused}"
        );
    }
    let (status, missing) = node.put("/api/v1/clusters/nosuch/queues", json!({}));
    assert_eq!(status, 404, "{missing}");
    let (status, refused) = node.post(
        "/batches",
        json!({"file": quick, "conf": {"kindling.priority": "high"}}),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["msg"]
            .as_str()
            .unwrap()
            .contains("kindling.priority"),
        "{refused}"
    );
}
