//! Three `kindling` processes on a real Kafka-compatible broker (tansu) and a real MongoDB
//! wire server (nx-27017), with real Spark: the leader is killed with SIGKILL while a batch
//! runs and while a session has statements in flight. A new leader takes over; the batch's
//! end is recorded once, the session goes on answering through the survivors, nothing
//! acknowledged is lost and no driver is launched twice. The old leader then rejoins, and a
//! fourth node joins; both rebuild projections identical to the others'. A client of the
//! live event stream on the killed leader resumes on a survivor with `Last-Event-ID` and
//! misses nothing and receives nothing twice.

use kindling_testkit::services;

use crate::common::sse::EventStream;
use crate::common::{free_addr, program, real_spark_home, snapshot, spark_conf, Node};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);

struct Cluster {
    dir: std::path::PathBuf,
    kafka: String,
    mongo: String,
    drivers: String,
}

impl Cluster {
    /// Starts member `id`: the first bootstraps, the others join it.
    fn start(&self, id: u64, join: Option<&str>) -> (Node, String) {
        let raft = free_addr();
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id.to_string(),
            "--raft-listen".into(),
            raft.clone(),
            "--event-log".into(),
            "kafka".into(),
            "--kafka-brokers".into(),
            self.kafka.clone(),
            "--kafka-topic".into(),
            "kindling.cluster.events".into(),
            "--projections".into(),
            "mongodb".into(),
            "--mongo-uri".into(),
            format!("mongodb://{}/?directConnection=true", self.mongo),
            "--mongo-database".into(),
            format!("kindling_node{id}"),
            "--drivers-dir".into(),
            self.drivers.clone(),
            "--driver-heartbeat-timeout-secs".into(),
            "5".into(),
        ];
        if let Some(j) = join {
            args.push("--join".into());
            args.push(j.into());
        }
        args.extend(spark_conf().into_iter().map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = Node::start(
            &self.dir.join(format!("node{id}")),
            &real_spark_home(),
            &args,
        );
        (node, raft)
    }
}

fn cluster_view(node: &Node) -> Value {
    node.get("/api/v1/cluster").1
}

/// Waits until `node` sees `voters` voters and a leader that schedules.
fn wait_for_leader(nodes: &[&Node], voters: usize) -> u64 {
    let deadline = Instant::now() + T;
    loop {
        let views: Vec<Value> = nodes.iter().map(|n| cluster_view(n)).collect();
        let leader = views[0]["leader_id"].as_u64();
        let agreed = views.iter().all(|v| {
            v["leader_id"].as_u64() == leader
                && v["members"]
                    .as_array()
                    .map(|m| m.iter().filter(|m| m["voter"] == true).count() == voters)
                    .unwrap_or(false)
        });
        let scheduling = views
            .iter()
            .any(|v| v["scheduling"] == true && v["node_id"].as_u64() == leader);
        if let (Some(l), true, true) = (leader, agreed, scheduling) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no agreed, scheduling leader: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn events(node: &Node, id: u64) -> Vec<Value> {
    node.get(&format!("/api/v1/jobs/{id}/events")).1["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

fn text(statement: &Value) -> String {
    statement["output"]["data"]["text/plain"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until every node has projected the same log end, then returns their snapshots.
fn settled_snapshots(nodes: &[&Node]) -> Vec<Value> {
    let deadline = Instant::now() + T;
    loop {
        let ends: Vec<(u64, u64)> = nodes
            .iter()
            .map(|n| {
                let h = n.get("/api/v1/health").1;
                (
                    h["logEnd"].as_u64().unwrap(),
                    h["projected"].as_u64().unwrap(),
                )
            })
            .collect();
        let same = ends.iter().all(|e| e.0 == e.1 && e.0 == ends[0].0);
        if same {
            return nodes.iter().map(|n| snapshot(n)).collect();
        }
        assert!(Instant::now() < deadline, "nodes did not settle: {ends:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn leader_killed_mid_batch_and_mid_statements_loses_nothing_and_launches_nothing_twice() {
    let kafka = services::local_kafka();
    let mongo = services::local_mongo();
    let tmp = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("KINDLING_KEEP_TEST_DIRS").is_some())
        .tempdir()
        .unwrap();
    eprintln!("node logs: {}/node*.node.log", tmp.path().display());
    let drivers = tmp.path().join("drivers");
    let cluster = Cluster {
        dir: tmp.path().to_path_buf(),
        kafka: kafka.addr.to_string(),
        mongo: mongo.addr.to_string(),
        drivers: drivers.display().to_string(),
    };
    let (mut n1, raft1) = cluster.start(1, None);
    let (n2, _) = cluster.start(2, Some(&raft1));
    let (n3, _) = cluster.start(3, Some(&raft1));
    assert_eq!(
        wait_for_leader(&[&n1, &n2, &n3], 3),
        1,
        "the first member leads"
    );
    let view = cluster_view(&n2);
    let addrs: Vec<&str> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["http_addr"].as_str().unwrap())
        .collect();
    for n in [&n1, &n2, &n3] {
        assert!(
            addrs.contains(&n.base.trim_start_matches("http://")),
            "{view}"
        );
    }

    // A client of the live stream on the leader, which is to die.
    let streams = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap();
    let on_leader = EventStream::open(streams.get(n1.url("/api/v1/stream")));

    // Submitted through node 2, read through node 3, scheduled by the leader (node 1).
    let batch_code = "import time\nfrom pyspark.sql import SparkSession\n\
        spark = SparkSession.builder.getOrCreate()\n\
        print('counted', spark.range(100).count())\n\
        time.sleep(20)\nspark.stop()\n";
    let app = program(tmp.path(), "slow.py", batch_code);
    let (status, batch) = n2.post("/batches", json!({"file": app, "name": "slow"}));
    assert_eq!(status, 201, "{batch}");
    let (status, session) = n2.post("/sessions", json!({"kind": "pyspark"}));
    assert_eq!(status, 201, "{session}");
    let (b, s) = (
        batch["id"].as_u64().unwrap(),
        session["id"].as_u64().unwrap(),
    );
    n3.wait_state(&format!("/batches/{b}"), &["running"], T);
    n3.wait_state(&format!("/sessions/{s}"), &["idle"], T);

    // Two statements through node 3 (forwarded to the leader); the first runs for a while.
    let (status, a) = n3.post(
        &format!("/sessions/{s}/statements"),
        json!({"code": "import time\ntime.sleep(6)\n21 * 2"}),
    );
    assert_eq!(status, 201, "{a}");
    let (status, c) = n3.post(
        &format!("/sessions/{s}/statements"),
        json!({"code": "spark.range(10).count()"}),
    );
    assert_eq!(status, 201, "{c}");
    let (a, c) = (a["id"].as_u64().unwrap(), c["id"].as_u64().unwrap());
    n2.wait_state(&format!("/sessions/{s}/statements/{a}"), &["running"], T);

    // The leader dies with the batch running and the statements in flight.
    n1.kill9();
    let leader = wait_for_leader(&[&n2, &n3], 3);
    assert_ne!(leader, 1);
    // The stream ended with its node; it resumes on a survivor after its last message.
    let mut streamed: Vec<u64> = std::iter::from_fn(|| on_leader.next(T))
        .filter_map(|m| m.id)
        .collect();
    let last = *streamed
        .last()
        .expect("the stream carried the jobs' first events");
    let resumed = EventStream::open(
        streams
            .get(n3.url("/api/v1/stream"))
            .header("last-event-id", last.to_string()),
    );

    let done = n2.wait_state(&format!("/sessions/{s}/statements/{a}"), &["available"], T);
    assert_eq!(text(&done), "42", "{done}");
    let done = n3.wait_state(&format!("/sessions/{s}/statements/{c}"), &["available"], T);
    assert_eq!(text(&done), "10", "{done}");
    let finished = n3.wait_state(&format!("/batches/{b}"), &["success"], T);
    assert_eq!(finished["state"], "success", "{finished}");

    // The session keeps answering through the survivors.
    let (status, more) = n2.post(
        &format!("/sessions/{s}/statements"),
        json!({"code": "1 + 1"}),
    );
    assert_eq!(status, 201, "{more}");
    let more = n3.wait_state(
        &format!("/sessions/{s}/statements/{}", more["id"]),
        &["available"],
        T,
    );
    assert_eq!(text(&more), "2");

    // Recorded once: one launch per job, one end for the batch, one result per statement.
    let batch_events = events(&n3, b);
    assert_eq!(count(&batch_events, "JobScheduled"), 1, "{batch_events:?}");
    assert_eq!(count(&batch_events, "JobFinished"), 1, "{batch_events:?}");
    let session_events = events(&n2, s);
    assert_eq!(count(&session_events, "JobScheduled"), 1);
    assert_eq!(
        count(&session_events, "StatementCompleted"),
        3,
        "{session_events:?}"
    );
    let launched: Vec<String> = std::fs::read_dir(&drivers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(launched.len(), 2, "one driver per job: {launched:?}");

    // The old leader rejoins; a fourth member joins with an empty projection database.
    n1.restart();
    let (n4, _) = cluster.start(4, Some(&raft1));
    wait_for_leader(&[&n1, &n2, &n3, &n4], 4);
    let (status, _) = n4.delete(&format!("/sessions/{s}"));
    assert_eq!(status, 200);
    // Deleted through Livy: gone from Livy's lists, still in the native API's history.
    n1.wait_state(
        &format!("/api/v1/jobs/{s}"),
        &["dead", "killed", "success"],
        T,
    );
    let snaps = settled_snapshots(&[&n1, &n2, &n3, &n4]);
    for (i, snap) in snaps.iter().enumerate().skip(1) {
        assert_eq!(snap, &snaps[0], "node {} differs from node 1", i + 1);
    }
    assert_eq!(snaps[0].as_array().unwrap().len(), 2);

    // Both streams together carried the jobs' histories exactly: no gap, no duplicate.
    let mut history: Vec<u64> = [b, s]
        .iter()
        .flat_map(|id| events(&n3, *id))
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    history.sort_unstable();
    let end = *history.last().unwrap();
    let after = resumed.until(T, |m| m.id >= Some(end));
    streamed.extend(after.iter().filter_map(|m| m.id));
    assert_eq!(streamed, history, "resumed at {last}");
}
