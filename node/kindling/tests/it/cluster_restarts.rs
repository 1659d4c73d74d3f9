//! Three `kindling` nodes on the real broker (tansu, its log kept in a real S3 server so it
//! survives a restart) and the real MongoDB wire server (nx-27017): the broker is killed with
//! SIGKILL and started again, then the MongoDB server is. The cluster waits, recovers and
//! loses nothing acknowledged; afterwards every node serves the same projections.
//! `spark-submit` is a short shell program (`common::fake_spark_home`): what is checked is the
//! cluster's storage, not Spark.

use crate::common::{fake_spark_home, free_addr, snapshot, Node};
use kindling_testkit::services;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn start(
    dir: &std::path::Path,
    spark: &std::path::Path,
    id: u64,
    kafka: &services::Service,
    mongo: &services::Service,
    join: Option<&str>,
) -> (Node, String) {
    let raft = free_addr();
    let mut args: Vec<String> = [
        "--node-id",
        &id.to_string(),
        "--raft-listen",
        &raft,
        "--event-log",
        "kafka",
        "--kafka-brokers",
        &kafka.addr.to_string(),
        "--projections",
        "mongodb",
        "--mongo-uri",
        &format!("mongodb://{}/?directConnection=true", mongo.addr),
        "--mongo-database",
        &format!("kindling_node{id}"),
        "--drivers-dir",
        &dir.join("drivers").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(j) = join {
        args.extend(["--join".to_string(), j.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (
        Node::start(&dir.join(format!("node{id}")), spark, &args),
        raft,
    )
}

/// Submits through `node`, retrying while the cluster cannot append (a 5xx is never an
/// acknowledgement). Returns the acknowledged id.
fn submit(node: &Node, app: &str, args: &[&str]) -> u64 {
    let deadline = Instant::now() + T;
    loop {
        let (status, body) = node.post("/batches", json!({"file": app, "args": args}));
        if status == 201 {
            return body["id"].as_u64().unwrap();
        }
        assert!(status >= 500, "a submission refused with {status}: {body}");
        assert!(Instant::now() < deadline, "no submission accepted: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn settled(nodes: &[&Node]) -> Vec<Value> {
    let deadline = Instant::now() + T;
    loop {
        let ends: Vec<Option<(u64, u64)>> = nodes
            .iter()
            .map(|n| {
                let (status, h) = n.get("/api/v1/health");
                (status == 200).then(|| {
                    (
                        h["logEnd"].as_u64().unwrap(),
                        h["projected"].as_u64().unwrap(),
                    )
                })
            })
            .collect();
        if let Some(first) = ends[0] {
            if ends.iter().all(|e| *e == Some((first.0, first.0))) {
                return nodes.iter().map(|n| snapshot(n)).collect();
            }
        }
        assert!(Instant::now() < deadline, "nodes did not settle: {ends:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn broker_and_mongo_restarts_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let bins = services::Binaries::find().expect("run ops/dev/install-{s3,kafka,mongo}");
    let s3 = services::s3(&bins, dir.path()).unwrap();
    let mut kafka = services::kafka(&bins, dir.path(), Some(&s3)).unwrap();
    let mut mongo = services::mongo(&bins, dir.path()).unwrap();
    let spark = fake_spark_home(dir.path());
    let app = crate::common::program(dir.path(), "app.py", "print(1)\n");
    let (n1, raft1) = start(dir.path(), &spark, 1, &kafka, &mongo, None);
    let (n2, _) = start(dir.path(), &spark, 2, &kafka, &mongo, Some(&raft1));
    let (n3, _) = start(dir.path(), &spark, 3, &kafka, &mongo, Some(&raft1));
    let nodes = [&n1, &n2, &n3];
    let mut acked = vec![];
    for i in 0..6 {
        acked.push(submit(nodes[i % 3], &app, &["exit=0"]));
    }

    // The broker dies. Submissions are not acknowledged while it is down; one sent during the
    // outage is acknowledged only once the broker is back, or refused.
    kafka.kill9();
    let (status, body) = n2.post("/batches", json!({"file": app, "args": ["exit=0"]}));
    assert_ne!(status, 201, "acknowledged with the broker down: {body}");
    assert!(status >= 500, "{status}: {body}");
    kafka.start().unwrap();
    for i in 0..6 {
        acked.push(submit(nodes[i % 3], &app, &["exit=0"]));
    }
    for id in &acked {
        n3.wait_state(&format!("/api/v1/jobs/{id}"), &["success"], T);
    }

    // The MongoDB server dies: the log still takes submissions; reads wait for it.
    mongo.kill9();
    let during = submit(&n1, &app, &["exit=0"]);
    acked.push(during);
    mongo.start().unwrap();
    for id in &acked {
        for n in nodes {
            n.wait_state(&format!("/api/v1/jobs/{id}"), &["success"], T);
        }
    }

    let snaps = settled(&nodes);
    // The request sent during the outage was not acknowledged: it may or may not have been
    // appended once the broker came back. Every acknowledged one is there.
    let jobs = snaps[0].as_array().unwrap().len();
    assert!(
        jobs == acked.len() || jobs == acked.len() + 1,
        "{jobs} jobs for {} acknowledged",
        acked.len()
    );
    for (i, s) in snaps.iter().enumerate().skip(1) {
        assert_eq!(s, &snaps[0], "node {} differs from node 1", i + 1);
    }
}
