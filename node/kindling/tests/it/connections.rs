//! A client that holds hundreds of idle or half-sent connections cannot starve the others:
//! the node, run with only 256 file descriptors, closes what is past its per-client cap as
//! it arrives and the rest once the header timeout passes, and a client from another
//! address is served all along.

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
