//! kill -9 of the node mid-flight, then restart on the same data: every job and session is
//! back with a truthful state. Drivers outlive the node: a batch that keeps running is
//! watched again and its end recorded; one that ended while the node was down is settled
//! from its recorded exit code; one killed while the node was down is dead with a reason;
//! a session's driver reconnects and the statement that was in flight is recorded once.

use crate::common::{program, real_spark_home, spark_conf, Node};
use serde_json::json;
use std::time::Duration;

const SPARK: Duration = Duration::from_secs(120);

#[test]
fn spark_restart_after_kill9_keeps_every_job_truthful() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&dir.path().join("data"), &real_spark_home(), &spark_conf());
    let marker = dir.path().join("release");
    let waiter = program(
        dir.path(),
        "wait.py",
        &format!(
            "import os, time\n\
             from pyspark.sql import SparkSession\n\
             spark = SparkSession.builder.getOrCreate()\n\
             print('kindling-waiting', flush=True)\n\
             while not os.path.exists({marker:?}):\n    time.sleep(0.2)\n\
             print('kindling-released', spark.range(5).count(), flush=True)\n",
            marker = marker.display().to_string()
        ),
    );
    let short = program(
        dir.path(),
        "short.py",
        &format!(
            "import os, time\n\
             print('kindling-short', flush=True)\n\
             while not os.path.exists({m:?}):\n    time.sleep(0.2)\n",
            m = dir.path().join("release-short").display().to_string()
        ),
    );

    let (_, s) = node.post("/sessions", json!({"kind": "pyspark"}));
    let sid = s["id"].as_u64().unwrap();
    let (_, b) = node.post("/batches", json!({"file": waiter}));
    let keeps_running = b["id"].as_u64().unwrap();
    let (_, b) = node.post("/batches", json!({"file": short}));
    let ends_while_down = b["id"].as_u64().unwrap();
    let (_, b) = node.post("/batches", json!({"file": short}));
    let killed_while_down = b["id"].as_u64().unwrap();

    node.wait_state(&format!("/sessions/{sid}"), &["idle"], SPARK);
    let (_, st) = node.post(
        &format!("/sessions/{sid}/statements"),
        json!({"code": "x = 41"}),
    );
    node.wait_state(
        &format!("/sessions/{sid}/statements/{}", st["id"]),
        &["available"],
        SPARK,
    );
    for id in [keeps_running, ends_while_down, killed_while_down] {
        node.wait_for(&format!("/batches/{id}/log?size=-1"), SPARK, |l| {
            l.to_string().contains("kindling-")
        });
    }
    // A statement in flight when the node dies: it finishes while nobody listens.
    let (_, slow) = node.post(
        &format!("/sessions/{sid}/statements"),
        json!({"code": format!("import os, time\nwhile not os.path.exists({:?}):\n    time.sleep(0.1)\nx + 1", dir.path().join("release-stmt").display().to_string())}),
    );
    let slow_id = slow["id"].as_u64().unwrap();
    node.wait_state(
        &format!("/sessions/{sid}/statements/{slow_id}"),
        &["running"],
        SPARK,
    );
    let jobs_before = node.get("/api/v1/jobs").1["total"].clone();

    node.kill9();
    std::fs::write(dir.path().join("release-stmt"), "").unwrap();
    std::fs::write(dir.path().join("release-short"), "").unwrap();
    let victim = format!("kindling-{killed_while_down}-1");
    let dying = node.driver_pids(&victim);
    assert!(!dying.is_empty());
    for pid in &dying {
        // SAFETY: a driver process of this test.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    // Wait for the drivers that end while the node is down to be gone.
    let short_name = format!("kindling-{ends_while_down}-1");
    let deadline = std::time::Instant::now() + SPARK;
    while !(node.driver_pids(&short_name).is_empty() && node.driver_pids(&victim).is_empty()) {
        assert!(std::time::Instant::now() < deadline, "drivers did not end");
        std::thread::sleep(Duration::from_millis(100));
    }

    node.restart();
    assert_eq!(
        node.get("/api/v1/jobs").1["total"],
        jobs_before,
        "every job is back"
    );

    let ended = node.wait_state(
        &format!("/api/v1/jobs/{ends_while_down}"),
        &["success", "dead"],
        SPARK,
    );
    assert_eq!(ended["state"], "success", "{ended}");
    assert_eq!(ended["exitCode"], 0);
    let dead = node.wait_state(
        &format!("/api/v1/jobs/{killed_while_down}"),
        &["success", "dead"],
        SPARK,
    );
    assert_eq!(dead["state"], "dead", "{dead}");
    assert!(
        dead["reason"]
            .as_str()
            .unwrap()
            .contains("while no node was watching"),
        "{dead}"
    );

    // The session's driver reconnects; the statement that ran during the outage is recorded
    // once, with the value computed from state set before the crash.
    let done = node.wait_state(
        &format!("/sessions/{sid}/statements/{slow_id}"),
        &["available"],
        SPARK,
    );
    assert_eq!(done["output"]["data"]["text/plain"], "42", "{done}");
    node.wait_state(&format!("/sessions/{sid}"), &["idle"], SPARK);
    let again = node
        .post(
            &format!("/sessions/{sid}/statements"),
            json!({"code": "x * 2"}),
        )
        .1;
    let again = node.wait_state(
        &format!("/sessions/{sid}/statements/{}", again["id"]),
        &["available"],
        SPARK,
    );
    assert_eq!(again["output"]["data"]["text/plain"], "82");
    let events = node.get(&format!("/api/v1/jobs/{sid}/events")).1;
    let completions = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "StatementCompleted" && e["data"]["statement"] == slow_id)
        .count();
    assert_eq!(
        completions, 1,
        "the in-flight statement is recorded exactly once"
    );

    // The batch that kept running is watched again and its end is recorded.
    assert_eq!(
        node.get(&format!("/batches/{keeps_running}")).1["state"],
        "running"
    );
    std::fs::write(&marker, "").unwrap();
    let finished = node.wait_state(
        &format!("/batches/{keeps_running}"),
        &["success", "dead"],
        SPARK,
    );
    assert_eq!(finished["state"], "success", "{finished}");
    let log = node
        .get(&format!("/batches/{keeps_running}/log?size=-1"))
        .1
        .to_string();
    assert!(log.contains("kindling-released 5"), "{log}");
    node.delete(&format!("/sessions/{sid}"));
}
