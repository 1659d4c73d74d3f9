//! A session on Kafka driver routes with real Spark: three `kindling` processes in Kafka mode
//! (`--driver-route kafka`) on the real broker (tansu) and MongoDB wire server (nx-27017).
//! The leader is killed with SIGKILL while a statement runs a Spark job and another waits
//! behind it; the driver never reconnects, a new leader resumes the session's route, and
//! every statement completes exactly once (recorded once, run once) through it.

use kindling_testkit::services;

use crate::common::cluster::{
    completed, count, events, text, wait_for_leader, wait_for_line, Cluster,
};
use crate::common::{real_spark_home, spark_conf, Node};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn submit(node: &Node, session: u64, code: &str) -> u64 {
    let (status, st) = node.post(
        &format!("/sessions/{session}/statements"),
        json!({ "code": code }),
    );
    assert_eq!(status, 201, "{st}");
    st["id"].as_u64().unwrap()
}

fn output(node: &Node, session: u64, statement: u64) -> String {
    let done = node.wait_state(
        &format!("/sessions/{session}/statements/{statement}"),
        &["available"],
        T,
    );
    assert_eq!(done["output"]["status"], "ok", "{done}");
    text(&done)
}

#[test]
fn leader_killed_mid_statement_the_kafka_route_completes_every_statement_once() {
    let kafka = services::local_kafka();
    let mongo = services::local_mongo();
    let tmp = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("KINDLING_KEEP_TEST_DIRS").is_some())
        .tempdir()
        .unwrap();
    eprintln!("node logs: {}/node*.node.log", tmp.path().display());
    let drivers = tmp.path().join("drivers");
    let mut flags: Vec<String> = [
        "--event-log",
        "kafka",
        "--kafka-brokers",
        &kafka.addr.to_string(),
        "--kafka-topic",
        "kindling.spark.events",
        "--driver-route",
        "kafka",
        "--projections",
        "mongodb",
        "--mongo-uri",
        &format!("mongodb://{}/?directConnection=true", mongo.addr),
        "--drivers-dir",
        &drivers.display().to_string(),
        "--driver-heartbeat-timeout-secs",
        "5",
    ]
    .map(String::from)
    .to_vec();
    flags.extend(spark_conf().into_iter().map(String::from));
    let cluster = Cluster {
        dir: tmp.path().to_path_buf(),
        spark_home: real_spark_home(),
        flags,
    };
    // One projection database per member.
    let own = |id: u64| ["--mongo-database".to_string(), format!("kindling_node{id}")];
    let (mut n1, raft1) = cluster.start_with(1, None, &own(1));
    let (n2, _) = cluster.start_with(2, Some(&raft1), &own(2));
    let (n3, _) = cluster.start_with(3, Some(&raft1), &own(3));
    assert_eq!(wait_for_leader(&[&n1, &n2, &n3], 3, T), 1);

    let (status, session) = n2.post("/sessions", json!({"kind": "pyspark"}));
    assert_eq!(status, 201, "{session}");
    let s = session["id"].as_u64().unwrap();
    n3.wait_state(&format!("/sessions/{s}"), &["idle"], T);
    let driver_log = drivers.join(format!("kindling-{s}-1/driver.log"));
    wait_for_line(&driver_log, "registered through kindling.spark.job.", T);
    let first = submit(&n3, s, "runs = []\nspark.range(100).count()");
    assert_eq!(output(&n2, s, first), "100");

    // A statement runs a Spark job, then waits for the test; another waits behind it.
    let go = tmp.path().join("go");
    let a = submit(
        &n3,
        s,
        &format!(
            "import os, time\nn = spark.range(1000).count()\n\
             while not os.path.exists({go:?}):\n    time.sleep(0.05)\nruns.append('a')\nn",
            go = go.display().to_string()
        ),
    );
    let b = submit(
        &n2,
        s,
        "runs.append('b')\nspark.range(10).selectExpr('sum(id)').first()[0]",
    );
    n2.wait_state(&format!("/sessions/{s}/statements/{a}"), &["running"], T);

    n1.kill9();
    let leader = wait_for_leader(&[&n2, &n3], 3, T);
    assert_ne!(leader, 1);
    std::fs::write(&go, "").unwrap();
    assert_eq!(output(&n2, s, a), "1000");
    assert_eq!(output(&n3, s, b), "45");
    let c = submit(&n2, s, "runs");
    assert_eq!(output(&n3, s, c), "['a', 'b']", "each statement ran once");

    let evs = events(&n3, s);
    assert_eq!(completed(&evs), [first, a, b, c], "{evs:?}");
    assert_eq!(count(&evs, "JobScheduled"), 1, "{evs:?}");
    assert_eq!(count(&evs, "SessionRecovering"), 0, "{evs:?}");
    let launched: Vec<_> = std::fs::read_dir(&drivers).unwrap().flatten().collect();
    assert_eq!(launched.len(), 1, "one driver");
    let log = std::fs::read_to_string(&driver_log).unwrap();
    assert_eq!(log.matches("registered through").count(), 1, "{log}");
    assert!(log.contains("a new leader took over"), "{log}");
}
