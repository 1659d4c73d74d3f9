//! A client that holds hundreds of idle or half-sent connections cannot starve the others:
//! the node, run with only 256 file descriptors, closes what is past its per-client cap as
//! it arrives and the rest once the header timeout passes, and a client from another
//! address is served all along. Long polls past their cap answer at once instead of waiting.

use crate::common::{fake_spark_home, Node};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn idle_and_slow_clients_cannot_starve_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_limited(
        &dir.path().join("data"),
        &fake_spark_home(dir.path()),
        &[
            "--max-connections-per-client",
            "64",
            "--http-header-timeout-secs",
            "2",
        ],
        Some(256),
    );
    let addr = node.url("").trim_start_matches("http://").to_string();

    // 300 connections that never send a byte, and one that stops half-way through its
    // headers, all from 127.0.0.1.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: kindling\r\n")
        .unwrap();

    // Another client, from another address, is served meanwhile.
    let other = reqwest::blocking::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let health = other.get(node.url("/api/v1/health")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // The node closes every one of them: past the cap at once, the rest after 2 s without
    // a request. (The read timeout is a bound on a failure, not a wait for success.)
    for (i, mut s) in idle.into_iter().chain([slow]).enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                // A half-sent request may get a refusal before the close; nothing else.
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(text.starts_with("HTTP/1.1 4"), "connection {i}: {text}");
            }
            Err(e) => assert!(
                e.kind() == std::io::ErrorKind::ConnectionReset,
                "connection {i} still open: {e}"
            ),
        }
    }
    let metrics = other
        .get(node.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let refused: f64 = metrics
        .lines()
        .find(|l| l.starts_with("kindling_http_connections_refused_total{reason=\"limit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no refusals counted:\n{metrics}"));
    assert!(refused >= 236.0, "refused {refused}");
    // And the node still serves the first address once its connections are gone.
    assert_eq!(node.get("/api/v1/health").0, 200);
}

/// The value of gauge `name` in the node's metrics (0 before it is first set).
fn gauge(node: &Node, name: &str) -> f64 {
    let text = reqwest::blocking::get(node.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn long_polls_past_the_cap_answer_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &crate::common::cluster::runner_only_spark_home(dir.path()),
        &["--max-long-polls", "1"],
    );
    let (status, session) = node.post("/sessions", serde_json::json!({"kind": "pyspark"}));
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_u64().unwrap();
    node.wait_state(
        &format!("/sessions/{id}"),
        &["idle"],
        Duration::from_secs(60),
    );
    let (status, st) = node.post(
        &format!("/sessions/{id}/statements"),
        serde_json::json!({"code": "import time\ntime.sleep(60)"}),
    );
    assert_eq!(status, 201, "{st}");
    let poll = format!("/api/v1/jobs/{id}/statements/{}?wait=50s", st["id"]);

    // The first long poll takes the one place and waits for the statement to end.
    let url = node.url(&poll);
    let first = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap()
            .get(url)
            .send()
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while gauge(&node, "kindling_api_long_polls_waiting") < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first poll never waited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A second finds no place: it answers at once, the statement still running, while the
    // first still waits.
    let (status, second) = node.get(&poll);
    assert_eq!(status, 200, "{second}");
    assert!(
        matches!(second["state"].as_str(), Some("waiting" | "running")),
        "{second}"
    );
    assert!(!first.is_finished(), "the first poll stopped waiting");
    // Cancelling the statement ends the first poll.
    let (status, _) = node.post(
        &format!("/api/v1/jobs/{id}/statements/{}/cancel", st["id"]),
        serde_json::json!({}),
    );
    assert_eq!(status, 200);
    let ended = first.join().unwrap();
    assert!(
        matches!(ended["state"].as_str(), Some("cancelled" | "cancelling")),
        "{ended}"
    );
}
