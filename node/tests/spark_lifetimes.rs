//! Session lifetimes on real Spark: a driver that stops answering is declared dead within
//! seconds (heartbeats), not minutes; a driver that dies is noticed at once; `idleTimeout`
//! and Livy's `ttl` stop sessions with the reason recorded.

mod common;

use common::{real_spark_home, spark_conf, Node};
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
