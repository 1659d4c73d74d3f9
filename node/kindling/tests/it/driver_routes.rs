//! Kafka driver routes across failovers, without Spark: three `kindling` processes in Kafka
//! mode on the real broker (tansu) run a session whose driver is the real Python runner with
//! a stand-in pyspark (Spark itself is not what is checked here; `spark_kafka_routes` runs the
//! same route with real Spark).
//!
//! Statements wait for a file the test creates, so each ends exactly when the test says: one
//! after the leader was killed and another member took over, one while no member could lead
//! (its result sits in the replies topic until a leader resumes the route). Every statement
//! is recorded once, none runs twice (the driver's namespace counts its runs), the session is
//! never marked recovering (the driver never reconnects) and only one driver is launched.

use kindling_testkit::services;

use crate::common::cluster::{
    completed, count, events, runner_only_spark_home, text, wait_for_leader, wait_for_line, Cluster,
};
use crate::common::Node;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// Code that appends `name` to the driver's `runs` once the file `go` exists, then answers
/// how many runs there were.
fn gated(name: &str, go: &std::path::Path) -> String {
    format!(
        "import os, time\nwhile not os.path.exists({go:?}):\n    time.sleep(0.02)\n\
         runs.append({name:?})\nlen(runs)",
        go = go.display().to_string()
    )
}

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
fn kafka_routes_survive_a_leader_kill_and_a_leaderless_gap_without_loss_or_rerun() {
    let kafka = services::local_kafka();
    let tmp = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("KINDLING_KEEP_TEST_DIRS").is_some())
        .tempdir()
        .unwrap();
    eprintln!("node logs: {}/node*.node.log", tmp.path().display());
    let drivers = tmp.path().join("drivers");
    let cluster = Cluster {
        dir: tmp.path().to_path_buf(),
        spark_home: runner_only_spark_home(tmp.path()),
        flags: [
            "--event-log",
            "kafka",
            "--kafka-brokers",
            &kafka.addr.to_string(),
            "--kafka-topic",
            "kindling.routes.events",
            "--driver-route",
            "kafka",
            "--drivers-dir",
            &drivers.display().to_string(),
            "--driver-heartbeat-timeout-secs",
            "5",
        ]
        .map(String::from)
        .to_vec(),
    };
    let (mut n1, raft1) = cluster.start(1, None);
    let (mut n2, _) = cluster.start(2, Some(&raft1));
    let (mut n3, _) = cluster.start(3, Some(&raft1));
    assert_eq!(wait_for_leader(&[&n1, &n2, &n3], 3, T), 1);

    let (status, session) = n2.post("/sessions", json!({"kind": "pyspark"}));
    assert_eq!(status, 201, "{session}");
    let s = session["id"].as_u64().unwrap();
    n3.wait_state(&format!("/sessions/{s}"), &["idle"], T);
    let driver_log = drivers.join(format!("kindling-{s}-1/driver.log"));
    let log = wait_for_line(&driver_log, "registered through", T);
    assert!(
        log.contains(&format!("kindling.routes.job.{s}.requests")),
        "the route is named after the event log topic: {log}"
    );
    let first = submit(&n3, s, "runs = ['first']\nlen(runs)");
    assert_eq!(output(&n2, s, first), "1");

    // The leader dies while a statement runs and another waits behind it.
    let go1 = tmp.path().join("go1");
    let a = submit(&n3, s, &gated("a", &go1));
    let b = submit(&n2, s, "runs.append('b')\nlen(runs)");
    n2.wait_state(&format!("/sessions/{s}/statements/{a}"), &["running"], T);
    n1.kill9();
    let leader = wait_for_leader(&[&n2, &n3], 3, T);
    assert_ne!(leader, 1);
    std::fs::write(&go1, "").unwrap();
    assert_eq!(output(&n2, s, a), "2");
    assert_eq!(output(&n3, s, b), "3");

    // Then no member can lead (two of three are down) while the next statement ends: its
    // result waits in the replies topic until a leader resumes the route.
    let go2 = tmp.path().join("go2");
    let c = submit(&n3, s, &gated("c", &go2));
    n2.wait_state(&format!("/sessions/{s}/statements/{c}"), &["running"], T);
    let (survivor, deposed) = if leader == 2 {
        (&mut n3, &mut n2)
    } else {
        (&mut n2, &mut n3)
    };
    deposed.kill9();
    std::fs::write(&go2, "").unwrap();
    wait_for_line(
        &driver_log,
        &format!("statement {c} (pyspark) finished: ok"),
        T,
    );
    assert_eq!(
        survivor.get(&format!("/sessions/{s}/statements/{c}")).1["state"],
        "running",
        "nobody leads: the result is not recorded yet"
    );
    n1.restart();
    wait_for_leader(&[&n1, &*survivor], 3, T);
    assert_eq!(output(&n1, s, c), "4");

    // The session goes on, and ran each statement once.
    let d = submit(survivor, s, "runs");
    assert_eq!(output(&n1, s, d), "['first', 'a', 'b', 'c']");

    // Completions and cancels travel the route too.
    let (status, found) = survivor.post(
        &format!("/sessions/{s}/completion"),
        json!({"code": "ru", "kind": "pyspark"}),
    );
    assert_eq!(status, 200, "{found}");
    assert!(
        found["candidates"]
            .as_array()
            .unwrap()
            .contains(&json!("runs")),
        "{found}"
    );
    let never = submit(&n1, s, &gated("never", &tmp.path().join("never")));
    n1.wait_state(
        &format!("/sessions/{s}/statements/{never}"),
        &["running"],
        T,
    );
    let (status, _) = survivor.post(
        &format!("/sessions/{s}/statements/{never}/cancel"),
        json!({}),
    );
    assert_eq!(status, 200);
    n1.wait_state(
        &format!("/sessions/{s}/statements/{never}"),
        &["cancelled"],
        T,
    );

    let evs = events(&n1, s);
    assert_eq!(completed(&evs), [first, a, b, c, d], "{evs:?}");
    assert_eq!(count(&evs, "StatementCancelled"), 1, "{evs:?}");
    assert_eq!(count(&evs, "JobScheduled"), 1, "{evs:?}");
    assert_eq!(count(&evs, "SessionRecovering"), 0, "{evs:?}");
    let launched: Vec<_> = std::fs::read_dir(&drivers).unwrap().flatten().collect();
    assert_eq!(launched.len(), 1, "one driver");
    let log = std::fs::read_to_string(&driver_log).unwrap();
    assert_eq!(log.matches("registered through").count(), 1, "{log}");
    assert!(log.contains("a new leader took over"), "{log}");
}
