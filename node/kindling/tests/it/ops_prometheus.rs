//! The operator's tools, proven on real ones: `promtool` checks the alert rules and runs
//! their unit tests, and lints a node's exposition; a real Prometheus scrapes a real
//! three-node cluster started by `ops/dev/cluster` (broker, MongoDB wire server, this
//! build's nodes), evaluates every panel of the Grafana dashboard, and fires the node-down
//! alert when the leader is killed, while the leader metric moves to another member; the
//! alert resolves once the node is back.

use crate::common::dev_cluster::{root, DevCluster};
use crate::common::prometheus::{promtool, Prometheus};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let rules = root().join("ops/prometheus/alerts.yml");
    let tests = root().join("ops/prometheus/alerts_test.yml");
    let (ok, out) = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", tests.to_str().unwrap()], None);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert of the rules has a unit test.
    let text = std::fs::read_to_string(&rules).unwrap();
    let cases = std::fs::read_to_string(&tests).unwrap();
    let alerts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    assert!(alerts.len() >= 11, "{alerts:?}");
    for a in alerts {
        assert!(
            cases.contains(&format!("alertname: {a}")),
            "no unit test for {a}"
        );
    }
}

/// The alert rules as they are, but for node-down's `for:`, cut to nothing so that the
/// end-to-end run sees it fire at the first evaluation after the kill (the unit tests cover
/// its real duration). The others keep theirs: a healthy cluster must fire none of them.
fn rules_with_node_down_at_once() -> String {
    let text = std::fs::read_to_string(root().join("ops/prometheus/alerts.yml")).unwrap();
    let mut alert = "";
    let mut cut = 0;
    let rules = text
        .lines()
        .map(|l| {
            if let Some(name) = l.trim_start().strip_prefix("- alert:") {
                alert = name.trim();
            }
            match l.trim_start().strip_prefix("for:") {
                Some(_) if alert == "KindlingNodeDown" => {
                    cut += 1;
                    format!("{}for: 0s", &l[..l.len() - l.trim_start().len()])
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(cut, 1, "node-down has one `for:`");
    rules
}

/// Every `expr` of the dashboard's panels, with Grafana's rate interval filled in.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("ops/grafana/kindling.json")).unwrap();
    let board: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    fn walk(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                let title = m.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(expr) = m.get("expr").and_then(Value::as_str) {
                    out.push((title.to_string(), expr.replace("$__rate_interval", "1m")));
                }
                m.values().for_each(|c| walk(c, title, out));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, title, out)),
            _ => {}
        }
    }
    let mut out = vec![];
    walk(&board["panels"], "", &mut out);
    out
}

/// A batch and a session statement, so that the launch, queue, job and statement series
/// have samples.
fn some_work(c: &DevCluster, leader: u64) {
    let app = c.dir.path().join("app.py");
    std::fs::write(&app, "print('hello')\n").unwrap();
    let (status, batch) = c
        .post(leader, "/batches", &json!({"file": app.to_str().unwrap()}))
        .unwrap();
    assert_eq!(status, 201, "{batch}");
    let (status, session) = c
        .post(leader, "/sessions", &json!({"kind": "pyspark"}))
        .unwrap();
    assert_eq!(status, 201, "{session}");
    let wait = |path: String, done: &dyn Fn(&Value) -> bool| {
        let deadline = std::time::Instant::now() + T;
        loop {
            if let Ok((200, b)) = c.get(leader, &path) {
                if done(&b) {
                    return b;
                }
            }
            assert!(std::time::Instant::now() < deadline, "waiting on {path}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(format!("/batches/{}", batch["id"]), &|b| {
        b["state"] == "success"
    });
    wait(format!("/sessions/{}", session["id"]), &|b| {
        b["state"] == "idle"
    });
    let (status, st) = c
        .post(
            leader,
            &format!("/sessions/{}/statements", session["id"]),
            &json!({"code": "1 + 1"}),
        )
        .unwrap();
    assert_eq!(status, 201, "{st}");
    wait(
        format!("/sessions/{}/statements/{}", session["id"], st["id"]),
        &|b| b["state"] == "available",
    );
    // Ending the session records its run time.
    let http = reqwest::blocking::Client::new();
    let r = http
        .delete(c.url(leader, &format!("/sessions/{}", session["id"])))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Families every node's exposition holds once it has led through some work.
const EXPECTED: &[&str] = &[
    "kindling_http_requests_total",
    "kindling_http_request_duration_seconds",
    "kindling_api_submissions_total",
    "kindling_eventlog_appends_total",
    "kindling_eventlog_commit_batch_events",
    "kindling_eventlog_append_latency_seconds",
    "kindling_eventlog_end_position",
    "kindling_projection_position",
    "kindling_projection_lag_events",
    "kindling_projection_lag_seconds",
    "kindling_read_barrier_wait_seconds",
    "kindling_raft_term",
    "kindling_raft_is_leader",
    "kindling_raft_leader_id",
    "kindling_raft_members",
    "kindling_raft_last_log_index",
    "kindling_raft_applied_index",
    "kindling_scheduler_cluster_drivers",
    "kindling_scheduler_cluster_capacity_drivers",
    "kindling_scheduler_cluster_waiting_jobs",
    "kindling_scheduler_oldest_wait_seconds",
    "kindling_scheduler_queue_wait_seconds",
    "kindling_scheduler_launches_total",
    "kindling_scheduler_launch_duration_seconds",
    "kindling_scheduler_takeover_seconds",
    "kindling_gateway_drivers_connected",
    "kindling_gateway_oldest_heartbeat_seconds",
    "kindling_statement_latency_seconds",
    "kindling_jobs",
    "kindling_job_run_seconds",
    "kindling_data_disk_free_bytes",
    "kindling_data_disk_size_bytes",
    "kindling_build_info",
];

#[test]
fn a_real_prometheus_watches_a_three_node_cluster_through_a_leader_kill() {
    let c = DevCluster::up(3);
    let leader = c.leader(&[1, 2, 3], T);
    some_work(&c, leader);

    // The leader's exposition: every family there, and promtool finds nothing to lint.
    let metrics = reqwest::blocking::get(c.url(leader, "/metrics"))
        .unwrap()
        .text()
        .unwrap();
    for family in EXPECTED {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing from /metrics"
        );
    }
    assert!(metrics.contains("kindling_statement_latency_seconds_count{kind=\"pyspark\"}"));
    let (ok, out) = promtool(&["check", "metrics"], Some(&metrics));
    assert!(ok, "promtool check metrics: {out}");

    let dir = c.dir.path().join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("alerts.yml"), rules_with_node_down_at_once()).unwrap();
    let targets: Vec<String> = (1..=3).map(|id| format!("'{}'", c.addr(id))).collect();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: kindling\n    static_configs:\n      - targets: [{}]\n",
            dir.join("alerts.yml").display(),
            targets.join(", ")
        ),
    )
    .unwrap();
    let prom = Prometheus::start(&dir.join("prometheus.yml"), &dir);
    prom.until("every node scraped", T, |p| {
        let up = p.query("sum(up{job=\"kindling\"})").unwrap_or_default();
        let n = up.first().map(|s| s["value"][1].clone());
        (n == Some(json!("3")), n)
    });

    // Every panel's query answers with at least one series.
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let empty = prom.until("every dashboard query has series", T, |p| {
        let empty: Vec<String> = queries
            .iter()
            .filter_map(|(panel, q)| match p.query(q) {
                Ok(series) if !series.is_empty() => None,
                Ok(_) => Some(format!("{panel}: no series for {q}")),
                Err(e) => Some(format!("{panel}: {q} failed: {e}")),
            })
            .collect();
        (empty.is_empty(), empty)
    });
    assert!(empty.is_empty());
    // A healthy cluster fires nothing.
    assert!(prom.firing().is_empty(), "{:?}", prom.firing());

    // The leader dies: node-down fires for it, and the survivors elect another.
    let leader_addr = c.addr(leader);
    c.run(&["kill", &leader.to_string()]);
    prom.until("node-down fires for the killed leader", T, |p| {
        let firing = p.firing();
        let fired = firing
            .iter()
            .any(|(name, inst)| name == "KindlingNodeDown" && *inst == leader_addr);
        (fired, firing)
    });
    let next = prom.until("the leader metric moves", T, |p| {
        let leaders = p
            .query("max(kindling_raft_leader_id) and on() sum(kindling_raft_is_leader) == 1")
            .unwrap_or_default();
        let id = leaders
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse::<u64>().ok());
        (id.is_some_and(|id| id != leader && id != 0), id)
    });
    assert_ne!(next, Some(leader));

    // Back again: the alert resolves.
    c.run(&["start", &leader.to_string()]);
    prom.until("node-down resolves", T, |p| {
        let firing = p.firing();
        (
            !firing.iter().any(|(name, _)| name == "KindlingNodeDown"),
            firing,
        )
    });
}
