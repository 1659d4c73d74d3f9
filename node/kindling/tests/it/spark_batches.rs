//! Batches on real Spark, over HTTP, against a running node: one that succeeds and shows
//! its computed value in the log, one that fails (dead, with the error in the log), one
//! killed while it runs, whose credential-like conf reaches Spark and nowhere else.

use crate::common::{program, real_spark_home, spark_conf, Node};
use serde_json::json;
use std::time::Duration;

const SPARK: Duration = Duration::from_secs(120);

#[test]
fn spark_batches_succeed_fail_and_die_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &spark_conf());

    let ok = program(
        dir.path(),
        "sum.py",
        "from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.getOrCreate()\n\
         total = spark.sparkContext.parallelize(range(1, 1001)).sum()\n\
         print(f'kindling-total={total}')\n",
    );
    let bad = program(
        dir.path(),
        "fail.py",
        "from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.getOrCreate()\n\
         spark.sql('select * from no_such_table').show()\n",
    );
    let slow = program(
        dir.path(),
        "slow.py",
        "import time\n\
         from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.getOrCreate()\n\
         got = spark.conf.get('spark.hadoop.fs.s3a.secret.key', '')\n\
         print(f'kindling-secret-length={len(got)}', flush=True)\n\
         print('kindling-slow-started', flush=True)\n\
         time.sleep(600)\n",
    );

    let (status, created) = node.post(
        "/batches",
        json!({"file": ok, "name": "sum", "conf": {"spark.default.parallelism": 2}}),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "not_started");
    let ok_id = created["id"].as_u64().unwrap();
    let (_, bad_created) = node.post("/batches", json!({"file": bad}));
    let bad_id = bad_created["id"].as_u64().unwrap();
    // A credential in the conf reaches Spark, and nothing else: not the process table, the
    // API, or the node's log.
    let secret = "s3-SECRET-d41d8cd98f00b204";
    let (_, slow_created) = node.post(
        "/batches",
        json!({"file": slow, "proxyUser": "ann",
            "conf": {"spark.hadoop.fs.s3a.secret.key": secret}}),
    );
    let slow_id = slow_created["id"].as_u64().unwrap();
    assert_eq!(slow_created["proxyUser"], "ann");

    // Success: the computed value is in the log and Spark's application id was found.
    let done = node.wait_state(&format!("/batches/{ok_id}"), &["success", "dead"], SPARK);
    assert_eq!(done["state"], "success", "{done}");
    assert_eq!(done["name"], "sum");
    let log = node.get(&format!("/batches/{ok_id}/log?from=0&size=-1")).1;
    let lines: Vec<&str> = log["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines[0], "stdout: ");
    assert_eq!(*lines.last().unwrap(), "\nstderr: ");
    assert!(
        lines.contains(&"kindling-total=500500"),
        "log lacks the result: {lines:?}"
    );
    assert_eq!(log["total"].as_u64().unwrap() as usize, lines.len());
    let app = node.wait_for(&format!("/batches/{ok_id}"), Duration::from_secs(10), |b| {
        b["appId"].is_string()
    });
    assert!(
        app["appId"].as_str().unwrap().starts_with("local-"),
        "{app}"
    );

    // Failure: dead, the Python error in the log, the reason in the native API.
    let failed = node.wait_state(&format!("/batches/{bad_id}"), &["success", "dead"], SPARK);
    assert_eq!(failed["state"], "dead");
    let log = node
        .get(&format!("/batches/{bad_id}/log?size=-1"))
        .1
        .to_string();
    assert!(
        log.contains("TABLE_OR_VIEW_NOT_FOUND") || log.contains("no_such_table"),
        "{log}"
    );
    let native = node.get(&format!("/api/v1/jobs/{bad_id}")).1;
    assert_eq!(native["exitCode"], 1);
    assert!(
        native["reason"]
            .as_str()
            .unwrap()
            .contains("exited with code 1"),
        "{native}"
    );

    // Kill: running, then DELETE stops the whole process group and the job is killed.
    node.wait_for(&format!("/batches/{slow_id}/log?size=-1"), SPARK, |b| {
        b.to_string().contains("kindling-slow-started")
    });
    let driver = node.get(&format!("/api/v1/jobs/{slow_id}")).1;
    assert_eq!(driver["state"], "running");
    let log = node.get(&format!("/batches/{slow_id}/log?size=-1")).1;
    let delivered = format!("kindling-secret-length={}", secret.len());
    assert!(log.to_string().contains(&delivered), "{log}");
    assert!(!log.to_string().contains(secret), "{log}");
    let mut processes = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            processes += 1;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(!cmdline.contains(secret), "on a command line: {cmdline}");
        }
    }
    assert!(processes > 1, "the process table was read");
    for path in [
        format!("/api/v1/jobs/{slow_id}/events"),
        "/api/v1/events".into(),
    ] {
        let events = node.get(&path).1.to_string();
        assert!(!events.contains(secret), "{path}: {events}");
        assert!(
            events.contains(r#""spark.hadoop.fs.s3a.secret.key":"<redacted>""#),
            "{path}"
        );
    }
    let node_log = std::fs::read_to_string(node.data.with_extension("node.log")).unwrap();
    assert!(!node_log.contains(secret), "the node logged the secret");
    let name = format!("kindling-{slow_id}-1");
    assert!(!node.driver_pids(&name).is_empty(), "the driver runs");
    let (status, msg) = node.delete(&format!("/batches/{slow_id}"));
    assert_eq!((status, msg), (200, json!({"msg": "deleted"})));
    let killed = node.wait_state(
        &format!("/api/v1/jobs/{slow_id}"),
        &["killed", "dead", "success"],
        Duration::from_secs(30),
    );
    assert_eq!(killed["state"], "killed", "{killed}");
    assert_eq!(killed["deleted"], true);
    assert!(
        node.driver_pids(&name).is_empty(),
        "no driver process survives the kill"
    );
    let (status, gone) = node.get(&format!("/batches/{slow_id}"));
    assert_eq!(
        status, 404,
        "a deleted batch is gone from Livy's view: {gone}"
    );

    // The history shows each step once, in order.
    let events = node.get(&format!("/api/v1/jobs/{ok_id}/events")).1;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "JobFinished").count(), 1);
    assert_eq!(kinds[0], "JobSubmitted");
    assert_eq!(kinds[1], "JobScheduled");

    // Livy's list: key `sessions`, `from` and `total`, deleted batch left out.
    let list = node.get("/batches").1;
    assert_eq!(list["from"], 0);
    assert_eq!(list["total"], 2);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);

    let metrics = reqwest::blocking::get(node.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("kindling_api_submissions_total{kind=\"batch\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kindling_jobs{state=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kindling_eventlog_append_latency_seconds_bucket"),
        "{metrics}"
    );
}
