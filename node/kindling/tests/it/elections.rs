//! What a client is told while no member can lead: two `kindling` processes on the real
//! broker (tansu), the leader killed, so the survivor has no quorum. A request that needs a
//! leader (a new job's id block, a command forwarded to the leader) answers 503 with
//! `Retry-After`, never 500. `spark-submit` is a short shell program: Spark is not what is
//! checked.

use crate::common::cluster::{wait_for_leader, Cluster};
use crate::common::fake_spark_home;
use kindling_testkit::services;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn without_a_leader_requests_that_need_one_answer_503_with_retry_after() {
    let kafka = services::local_kafka();
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster {
        dir: dir.path().to_path_buf(),
        spark_home: fake_spark_home(dir.path()),
        flags: [
            "--event-log",
            "kafka",
            "--kafka-brokers",
            &kafka.addr.to_string(),
            "--kafka-topic",
            "kindling.elections.events",
        ]
        .map(String::from)
        .to_vec(),
    };
    let (mut n1, raft1) = cluster.start(1, None);
    let (n2, _) = cluster.start(2, Some(&raft1));
    assert_eq!(wait_for_leader(&[&n1, &n2], 2, T), 1);
    let app = crate::common::program(dir.path(), "app.py", "print(1)\n");
    let (status, b) = n1.post("/batches", json!({"file": app, "args": ["sleep=60"]}));
    assert_eq!(status, 201, "{b}");
    // The leader creates every named job, whichever member is asked: so a second active one
    // of a name is refused on every member, and each finds it by its name.
    let named = json!({"file": app, "args": ["sleep=60"], "name": "nightly"});
    let (status, first) = n2.post("/batches", named.clone());
    assert_eq!(status, 201, "{first}");
    for member in [&n1, &n2] {
        let (status, again) = member.post("/batches", named.clone());
        assert_eq!(status, 409, "{again}");
        assert!(
            again["msg"]
                .as_str()
                .unwrap()
                .starts_with("Duplicate batch name"),
            "{again}"
        );
        let (status, found) = member.get("/batches/nightly");
        assert_eq!((status, &found["id"]), (200, &first["id"]), "{found}");
    }
    // Each member's health, asked by the member that answers.
    let health = |node: &crate::common::Node| {
        let (status, view) = node.get("/api/v1/cluster?health=true");
        assert_eq!(status, 200, "{view}");
        view["members"].as_array().unwrap().clone()
    };
    for m in health(&n2) {
        assert_eq!(m["health"]["reachable"], true, "{m}");
        assert!(m["health"]["log_end"].as_u64().unwrap() >= 1, "{m}");
    }
    n1.kill9();
    let after = health(&n2);
    let by_id = |id: u64| after.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(by_id(1)["health"]["reachable"], false, "{after:?}");
    assert!(by_id(1)["health"]["error"].as_str().is_some(), "{after:?}");
    assert_eq!(by_id(2)["health"]["reachable"], true, "{after:?}");

    let http = reqwest::blocking::Client::new();
    // Node 2 never leased a block of job ids, and cannot without a leader.
    let submitted = http
        .post(n2.url("/batches"))
        .json(&json!({"file": app}))
        .send()
        .unwrap();
    // A command on an existing job goes to the leader, and there is none.
    let killed = http
        .delete(n2.url(&format!("/batches/{}", b["id"])))
        .send()
        .unwrap();
    for (what, r) in [("a new batch", submitted), ("a kill", killed)] {
        assert_eq!(r.status().as_u16(), 503, "{what}");
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(retry.as_deref(), Some("1"), "{what}");
        let body: serde_json::Value = r.json().unwrap();
        assert!(
            body["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    // Readiness says so too, and its 503 answers the probe: it is no refused request.
    let ready = http.get(n2.url("/api/v1/ready")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let ready: serde_json::Value = ready.json().unwrap();
    assert_eq!(ready["ready"], false, "{ready}");
    assert!(
        ready["reason"].as_str().unwrap().contains("leader"),
        "{ready}"
    );
    // The operator sees why: both refusals counted under their cause, and no leader known.
    let metrics = http.get(n2.url("/metrics")).send().unwrap().text().unwrap();
    let sample = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
    };
    assert_eq!(
        sample("kindling_api_unavailable_total{cause=\"no_leader\"}"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample("kindling_api_unavailable_total{cause=\"not_ready\"}"),
        Some(0.0),
        "the readiness answer is not counted: {metrics}"
    );
    assert_eq!(sample("kindling_raft_leader_id"), Some(0.0), "{metrics}");
    assert_eq!(sample("kindling_raft_is_leader"), Some(0.0), "{metrics}");
}
