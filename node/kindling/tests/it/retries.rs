//! Restart policies with real processes, on one node whose `spark-submit` runs the batch's
//! Python file (Spark is not what is checked): a batch that fails twice and then succeeds
//! under `maxAttempts=3`, one that uses up its attempts, a kill while a retry waits, a
//! cluster's default policy, and the settings that are refused.

use crate::common::cluster::{count, events};
use crate::common::Node;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// A program that counts its runs in `counter` and fails (exit 3) until run `succeed_on`.
fn flaky(dir: &std::path::Path, name: &str, succeed_on: u32) -> String {
    let counter = dir.join(format!("{name}.runs"));
    crate::common::program(
        dir,
        &format!("{name}.py"),
        &format!(
            "import sys\n\
             with open({counter:?}, 'a') as f:\n    f.write('run\\n')\n\
             n = len(open({counter:?}).read().splitlines())\n\
             print(f'attempt {{n}}', flush=True)\n\
             sys.exit(0 if n >= {succeed_on} else 3)\n",
            counter = counter.display().to_string()
        ),
    )
}

fn policy(attempts: u32, backoff: &str) -> Value {
    json!({
        "kindling.restart.policy": "onFailure",
        "kindling.restart.maxAttempts": attempts.to_string(),
        "kindling.restart.backoff": backoff,
    })
}

#[test]
fn failed_batches_are_retried_as_their_policy_says() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &crate::common::cluster::runner_only_spark_home(dir.path()),
        &[],
    );

    // Fails twice, then succeeds: three attempts, two of them retried.
    let app = flaky(dir.path(), "third-time", 3);
    let (status, b) = node.post("/batches", json!({"file": app, "conf": policy(3, "100ms")}));
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    node.wait_state(&format!("/batches/{id}"), &["success"], T);
    let (_, doc) = node.get(&format!("/api/v1/jobs/{id}"));
    assert_eq!(doc["attempt"], 3, "{doc}");
    assert_eq!(doc["restartPolicy"]["maxAttempts"], 3, "{doc}");
    let retried = doc["retried"].as_array().unwrap();
    assert_eq!(retried.len(), 2, "{doc}");
    for (i, a) in retried.iter().enumerate() {
        assert_eq!(a["attempt"], i + 1, "{a}");
        assert_eq!(a["outcome"], "failed", "{a}");
        assert_eq!(a["exitCode"], 3, "{a}");
        assert_eq!(a["driverName"], format!("kindling-{id}-{}", i + 1), "{a}");
    }
    let events = events(&node, id);
    let counts = (
        count(&events, "JobScheduled"),
        count(&events, "AttemptFailed"),
    );
    assert_eq!(counts, (3, 2), "{events:?}");
    let (_, log) = node.get(&format!("/batches/{id}/log"));
    assert!(log["log"].to_string().contains("attempt 3"), "{log}");

    // Never succeeds: the second failure ends it, as dead, with the last attempt's code.
    let app = flaky(dir.path(), "never", 99);
    let (status, b) = node.post("/batches", json!({"file": app, "conf": policy(2, "100ms")}));
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    node.wait_state(&format!("/batches/{id}"), &["dead"], T);
    let (_, doc) = node.get(&format!("/api/v1/jobs/{id}"));
    assert_eq!(
        (doc["attempt"].as_u64(), doc["exitCode"].as_i64()),
        (Some(2), Some(3))
    );
    assert_eq!(doc["retried"].as_array().unwrap().len(), 1, "{doc}");

    // Killed while its retry waits (an hour): the retries end, no second attempt starts.
    let app = flaky(dir.path(), "patient", 99);
    let (status, b) = node.post("/batches", json!({"file": app, "conf": policy(5, "1h")}));
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    let waiting = node.wait_for(&format!("/api/v1/jobs/{id}"), T, |d| {
        !d["retryAt"].is_null()
    });
    // Under way until its last attempt ends: its state never goes back.
    assert_eq!(waiting["state"], "running", "{waiting}");
    assert!(
        waiting["reason"]
            .as_str()
            .unwrap()
            .contains("attempt 1 failed"),
        "{waiting}"
    );
    let (status, killed) = node.delete(&format!("/batches/{id}"));
    assert_eq!(status, 200, "{killed}");
    let (_, doc) = node.get(&format!("/api/v1/jobs/{id}"));
    assert_eq!(
        (doc["state"].as_str(), doc["attempt"].as_u64()),
        (Some("killed"), Some(1))
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("patient.runs")).unwrap(),
        "run\n"
    );

    // A cluster's policy is the default of its batches; a job's own wins.
    let cluster = json!({"name": "retrying", "type": "local", "sparkConf": policy(2, "100ms")});
    let (status, c) = node.post("/api/v1/clusters", cluster);
    assert_eq!(status, 201, "{c}");
    let app = flaky(dir.path(), "second-time", 2);
    let (status, b) = node.post(
        "/api/v1/batches",
        json!({"file": app, "cluster": "retrying"}),
    );
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    node.wait_state(&format!("/batches/{id}"), &["success"], T);
    let (_, doc) = node.get(&format!("/api/v1/jobs/{id}"));
    assert_eq!(
        (
            doc["attempt"].as_u64(),
            doc["restartPolicy"]["maxAttempts"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let never = json!({"kindling.restart.policy": "never"});
    let app = flaky(dir.path(), "own-policy", 2);
    let body = json!({"file": app, "cluster": "retrying", "conf": never});
    let (status, b) = node.post("/api/v1/batches", body);
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    node.wait_state(&format!("/batches/{id}"), &["dead"], T);

    // Each retry is counted for operators, by cluster: 2 + 1 + 1 on local, 1 on retrying.
    let metrics = reqwest::blocking::get(node.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    for (cluster, n) in [("local", 4), ("retrying", 1)] {
        let line = format!("kindling_scheduler_retries_total{{cluster=\"{cluster}\"}} {n}");
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }

    // Refused, naming the setting: a policy that cannot be read, and one on a session.
    for (path, body, named) in [
        (
            "/batches",
            json!({"file": app, "conf": policy(0, "1s")}),
            "maxAttempts",
        ),
        (
            "/batches",
            json!({"file": app, "conf": policy(2, "soon")}),
            "backoff",
        ),
        (
            "/batches",
            json!({"file": app, "conf": {"kindling.restart.policy": "always"}}),
            "policy",
        ),
        (
            "/sessions",
            json!({"kind": "pyspark", "conf": policy(2, "1s")}),
            "sessions are never restarted",
        ),
        (
            "/api/v1/clusters",
            json!({"name": "x", "type": "local", "sparkConf": policy(2, "2d")}),
            "sparkConf.kindling.restart.backoff",
        ),
    ] {
        let (status, refused) = node.post(path, body);
        assert_eq!(status, 400, "{path}: {refused}");
        assert!(
            refused["msg"].as_str().unwrap().contains(named),
            "{refused}"
        );
    }
}
