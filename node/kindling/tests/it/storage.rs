//! A node on the production storage: the event log in Kafka (a real tansu broker) and the
//! projections in MongoDB (a real nx-27017 wire server), with `spark-submit` a short shell
//! program (`common::fake_spark_home`): what is checked is the node's storage, not Spark.
//! Jobs survive a restart, and a node pointed at an empty projection database rebuilds
//! identical projections from the Kafka log.

use kindling_testkit::services;

use crate::common::{fake_spark_home, snapshot, Node};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn kafka_log_and_mongo_projections_survive_restarts_and_rebuild_identically() {
    let kafka = services::local_kafka();
    let mongo = services::local_mongo();
    let dir = tempfile::tempdir().unwrap();
    let spark = fake_spark_home(dir.path());
    let app = crate::common::program(dir.path(), "app.py", "print(1)\n");
    let args = |db: &str| -> Vec<String> {
        vec![
            "--event-log".into(),
            "kafka".into(),
            "--kafka-brokers".into(),
            kafka.addr.to_string(),
            "--kafka-topic".into(),
            "kindling.test.events".into(),
            "--projections".into(),
            "mongodb".into(),
            "--mongo-uri".into(),
            format!("mongodb://{}/?directConnection=true", mongo.addr),
            "--mongo-database".into(),
            db.into(),
        ]
    };
    let first = args("kindling_a");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut node = Node::start(&dir.path().join("data"), &spark, &first);
    // The cluster registry lives in the same log and projections.
    for (name, drivers) in [("a", 1), ("b", 2)] {
        let (status, c) = node.post(
            "/api/v1/clusters",
            json!({"name": name, "type": "local", "capacity": {"maxDrivers": drivers}}),
        );
        assert_eq!(status, 201, "{c}");
    }
    assert_eq!(node.delete("/api/v1/clusters/a").0, 200);
    for i in 0..5 {
        let (status, b) = node.post(
            "/batches",
            json!({"file": app, "args": [format!("exit={}", i % 2)]}),
        );
        assert_eq!(status, 201, "{b}");
    }
    let (_, s) = node.post("/sessions", json!({"kind": "sql"}));
    let (_, k) = node.post("/batches", json!({"file": app, "args": ["sleep=30"]}));
    node.wait_state(&format!("/api/v1/jobs/{}", k["id"]), &["running"], T);
    assert_eq!(node.delete(&format!("/batches/{}", k["id"])).0, 200);
    for id in 0..5 {
        node.wait_state(&format!("/api/v1/jobs/{id}"), &["success", "dead"], T);
    }
    node.wait_state(&format!("/api/v1/jobs/{}", s["id"]), &["error"], T);
    node.wait_state(&format!("/api/v1/jobs/{}", k["id"]), &["killed"], T);
    let clusters = node.get("/api/v1/clusters").1;
    assert_eq!(
        clusters["clusters"].as_array().unwrap().len(),
        2,
        "{clusters}"
    );
    let before = snapshot(&node);
    assert_eq!(before.as_array().unwrap().len(), 7);
    assert_eq!(node.get("/api/v1/jobs?state=dead").1["total"], 2);

    node.stop();
    node.restart();
    assert_eq!(
        snapshot(&node),
        before,
        "a restart on Kafka and MongoDB changes nothing"
    );
    assert_eq!(node.get("/api/v1/clusters").1, clusters);

    // A node whose projection database is empty replays the Kafka log into it.
    node.stop();
    let second = args("kindling_b");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let rebuilt = Node::start(&dir.path().join("data"), &spark, &second);
    assert_eq!(
        snapshot(&rebuilt),
        before,
        "projections rebuilt from the log are identical"
    );
    assert_eq!(
        rebuilt.get("/api/v1/clusters").1,
        clusters,
        "the registry too"
    );
    let (_, new) = rebuilt.post("/batches", json!({"file": app}));
    assert!(
        new["id"].as_u64().unwrap() >= 7,
        "new ids never collide with replayed ones"
    );
}

/// A node started while its broker is down waits for it, then serves: it neither exits nor
/// answers before it has a log.
#[test]
fn a_node_started_before_its_broker_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let spark = fake_spark_home(dir.path());
    let app = crate::common::program(dir.path(), "app.py", "print(1)\n");
    let broker: std::net::SocketAddr = ([127, 0, 0, 1], services::free_port().unwrap()).into();
    let data = dir.path().join("data");
    let starting = {
        let (data, spark) = (data.clone(), spark.clone());
        std::thread::spawn(move || {
            Node::start(
                &data,
                &spark,
                &[
                    "--event-log",
                    "kafka",
                    "--kafka-brokers",
                    &broker.to_string(),
                    "--kafka-topic",
                    "kindling.late.events",
                ],
            )
        })
    };
    crate::common::cluster::wait_for_line(
        &data.with_extension("node.log"),
        "yet; retrying",
        Duration::from_secs(60),
    );
    assert!(
        !starting.is_finished(),
        "the node must not be ready without its log"
    );
    let _kafka = services::local_kafka_at(broker);
    let node = starting
        .join()
        .expect("the node starts once the broker is up");
    let (status, b) = node.post("/batches", json!({"file": app}));
    assert_eq!(status, 201, "{b}");
    node.wait_state(&format!("/batches/{}", b["id"]), &["success"], T);
}
