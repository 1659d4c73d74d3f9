//! Session lifetimes on real Spark: a driver that stops answering is declared dead within
//! seconds (heartbeats), not minutes; a driver that dies is noticed at once; `idleTimeout`
//! and Livy's `ttl` stop sessions with the reason recorded; a driver that loses its link is
//! `recovering` and gets the whole reconnect grace each time.

use crate::common::gate::Gate;
use crate::common::{real_spark_home, spark_conf, Node};
use serde_json::json;
use std::time::{Duration, Instant};

const START: Duration = Duration::from_secs(120);

/// The Python runner's process of a session driver.
fn runner_pid(node: &Node, driver: &str) -> i32 {
    *node
        .driver_pids(driver)
        .iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c).contains("kindling_runner.py")
                        && !String::from_utf8_lossy(&c).contains("spark-submit")
                        && !String::from_utf8_lossy(&c).contains("java")
                })
                .unwrap_or(false)
        })
        .expect("the runner process")
}

#[test]
fn spark_sessions_end_on_silence_death_idleness_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = spark_conf();
    args.extend(["--driver-heartbeat-timeout-secs", "3", "--max-drivers", "4"]);
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &args);

    let ids: Vec<u64> = [
        json!({}),
        json!({}),
        json!({"idleTimeout": "2s"}),
        json!({"ttl": "3s"}),
    ]
    .into_iter()
    .map(|b| node.post("/sessions", b).1["id"].as_u64().unwrap())
    .collect();
    let (silent, killed, idle, ttl) = (ids[0], ids[1], ids[2], ids[3]);
    for id in [silent, killed] {
        node.wait_state(&format!("/sessions/{id}"), &["idle"], START);
    }

    // A paused runner sends no heartbeats: dead within the timeout plus a tick.
    let pid = runner_pid(&node, &format!("kindling-{silent}-1"));
    // SAFETY: pauses a driver process of this test.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let paused = Instant::now();
    let dead = node.wait_state(
        &format!("/api/v1/jobs/{silent}"),
        &["dead", "error", "killed"],
        Duration::from_secs(30),
    );
    assert_eq!(dead["state"], "dead", "{dead}");
    assert!(
        dead["reason"].as_str().unwrap().contains("no heartbeat"),
        "{dead}"
    );
    let noticed = paused.elapsed();
    assert!(
        node.driver_pids(&format!("kindling-{silent}-1")).is_empty(),
        "the silent driver was stopped"
    );

    // A driver killed outright is noticed as soon as its process ends.
    for pid in node.driver_pids(&format!("kindling-{killed}-1")) {
        // SAFETY: kills a driver process of this test.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let gone = node.wait_state(
        &format!("/api/v1/jobs/{killed}"),
        &["dead", "error"],
        Duration::from_secs(30),
    );
    assert_eq!(gone["state"], "dead", "{gone}");

    let stopped = node.wait_state(&format!("/api/v1/jobs/{idle}"), &["killed", "dead"], START);
    assert_eq!(stopped["state"], "killed", "{stopped}");
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("idle for longer than 2s"),
        "{stopped}"
    );
    let expired = node.wait_state(&format!("/api/v1/jobs/{ttl}"), &["killed", "dead"], START);
    assert_eq!(expired["state"], "killed", "{expired}");
    assert!(
        expired["reason"].as_str().unwrap().contains("ttl of 3s"),
        "{expired}"
    );
    eprintln!(
        "a paused driver was declared dead {:.1} s after it fell silent",
        noticed.as_secs_f64()
    );
}

/// A session driver that loses its link while the node and its scheduler carry on is
/// `recovering` until it reconnects, and gets the whole reconnect grace every time it loses
/// the link. Found by the seventh hour-long chaos run: the scheduler never reset the first
/// loss's clock, so a second loss under the same leader ended the session at once.
#[test]
fn a_driver_that_loses_its_link_twice_gets_the_whole_grace_both_times() {
    const GRACE: u64 = 8;
    const OUTAGE: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start();
    let grace = GRACE.to_string();
    let mut args = spark_conf();
    args.extend([
        "--driver-advertise",
        &gate.addr,
        "--recovery-grace-secs",
        &grace,
    ]);
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &args);
    gate.open_to(&node.driver_addr);
    let id = node.post("/sessions", json!({})).1["id"].as_u64().unwrap();
    let job = format!("/api/v1/jobs/{id}");
    node.wait_state(&job, &["idle"], START);

    // The first loss: recovering, then back to idle once the driver can reconnect.
    let first = Instant::now();
    gate.close();
    node.wait_state(&job, &["recovering"], Duration::from_secs(30));
    // The outage lasts 2 s more: the scheduler checks sessions every 0.5 s, so it sees the
    // session recovering (and starts the grace's clock) before the driver is back.
    std::thread::sleep(OUTAGE);
    gate.open_to(&node.driver_addr);
    let back = node.wait_state(&job, &["idle", "dead", "error", "killed"], START);
    assert_eq!(back["state"], "idle", "{back}");

    // A statement that runs past the grace, counted from the first loss.
    let code = format!("import time\ntime.sleep({})\nprint('slept')", GRACE + 1);
    let (status, st) = node.post(&format!("/sessions/{id}/statements"), json!({"code": code}));
    assert_eq!(status, 201, "{st}");
    let done = node.wait_state(
        &format!("/sessions/{id}/statements/{}", st["id"]),
        &["available"],
        START,
    );
    assert_eq!(done["output"]["status"], "ok", "{done}");
    assert!(first.elapsed() > Duration::from_secs(GRACE));

    // The second loss, for good: the session is declared dead only after a whole grace.
    gate.close();
    let second = Instant::now();
    let dead = node.wait_state(
        &job,
        &["dead", "error", "killed"],
        Duration::from_secs(GRACE * 4),
    );
    let after = second.elapsed();
    assert_eq!(dead["state"], "dead", "{dead}");
    assert!(
        dead["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("did not reconnect within {GRACE} s")),
        "{dead}"
    );
    assert!(
        after >= Duration::from_secs(GRACE),
        "declared dead {after:?} after its second loss, inside the {GRACE} s grace: {dead}"
    );
}
