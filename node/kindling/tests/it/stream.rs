//! The live event stream (`GET /api/v1/stream`) on one node run with `--auth basic`: each
//! caller receives only the jobs it may view, filters narrow it, ids are log positions, and
//! a client that reconnects with `Last-Event-ID` after the node restarted gets exactly what
//! follows, with no gap and no duplicate (checked against the raw log).

use crate::auth::{Secured, PASSWORD};
use crate::common::sse::{EventStream, Message};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn open(n: &Secured, who: &str, query: &str, last: Option<u64>) -> EventStream {
    // No overall deadline: a stream lasts; the reader waits for each message with one.
    let http = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap();
    let mut req = http
        .get(n.node.url(&format!("/api/v1/stream{query}")))
        .basic_auth(who, Some(format!("{who}-{PASSWORD}")));
    if let Some(id) = last {
        req = req.header("last-event-id", id.to_string());
    }
    EventStream::open(req)
}

fn job_of(m: &Message) -> Option<u64> {
    m.data["job"].as_u64()
}

/// The positions of the raw log's events of `jobs` from `from` on, as an admin reads it.
fn log_positions(n: &Secured, jobs: &[u64], from: u64) -> Vec<u64> {
    let (status, page, _) = n.call(
        "GET",
        &format!("/api/v1/events?from={from}&limit=1000"),
        Some("root"),
        None,
    );
    assert_eq!(status, 200, "{page}");
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["job"].as_u64().is_some_and(|j| jobs.contains(&j)))
        .map(|e| e["position"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_stream_shows_each_caller_its_jobs_live_and_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Secured::start(dir.path());

    // Bad input is a 400 naming it.
    for (query, needle) in [("?kind=nope", "kind"), ("?job=x", "job")] {
        let (status, reply, _) = n.call(
            "GET",
            &format!("/api/v1/stream{query}"),
            Some("alice"),
            None,
        );
        assert_eq!(status, 400, "{reply}");
        assert!(reply["msg"].as_str().unwrap().contains(needle), "{reply}");
    }
    let req = n
        .http
        .get(n.node.url("/api/v1/stream"))
        .basic_auth("alice", Some(format!("alice-{PASSWORD}")))
        .header("last-event-id", "yesterday");
    assert_eq!(req.send().unwrap().status().as_u16(), 400);
    assert_eq!(n.call("GET", "/api/v1/stream", None, None).0, 401);

    let alice = open(&n, "alice", "", None);
    let bob = open(&n, "bob", "", None);
    let sessions = open(&n, "root", "?kind=session", None);
    let alices_only = open(&n, "root", "?owner=alice&kind=batch", None);

    let batch = n.job("batches", "alice", json!({}));
    let session = n.job("sessions", "alice", json!({}));
    let seen = alice.until(T, |m| job_of(m) == Some(session));
    assert!(seen.iter().all(|m| m.event == "job"), "{seen:#?}");
    assert_eq!(job_of(&seen[0]), Some(batch), "{seen:#?}");
    assert_eq!(seen[0].data["type"], "JobSubmitted");
    assert_eq!(seen[0].data["actor"], "alice");
    assert_eq!(
        seen[0].id,
        seen[0].data["position"].as_u64(),
        "ids are log positions"
    );
    let ids: Vec<u64> = seen.iter().map(|m| m.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in log order: {ids:?}");

    // Bob may not view Alice's jobs: the first thing he receives is his own job, although
    // Alice's events came before it in the log.
    let bobs = n.job("batches", "bob", json!({}));
    let first = bob.next(T).expect("bob's own job");
    assert_eq!(job_of(&first), Some(bobs), "{first:?}");

    // Filters: sessions only; Alice's batches only.
    let m = sessions.next(T).unwrap();
    assert_eq!(job_of(&m), Some(session), "{m:?}");
    let got = alices_only.until(T, |m| job_of(m) == Some(batch));
    assert!(got.iter().all(|m| job_of(m) == Some(batch)), "{got:#?}");

    // A cluster registered by an admin reaches every stream not narrowed to jobs.
    let (status, reply, _) = n.call(
        "POST",
        "/api/v1/clusters",
        Some("root"),
        Some(json!({"name": "lab", "type": "standalone", "connection": {
            "restUrl": "http://127.0.0.1:6066", "webUiUrl": "http://127.0.0.1:8080"}})),
    );
    assert_eq!(status, 201, "{reply}");
    let m = bob.until(T, |m| m.event == "cluster");
    assert_eq!(m.last().unwrap().data["type"], "ClusterRegistered");

    // Resume: Alice reconnects after the node restarted, from her first message's id, and
    // gets exactly her events after it, as the raw log holds them.
    let resume_from = ids[0];
    n.node.stop();
    n.node.restart();
    let more = n.job("batches", "alice", json!({}));
    let resumed = open(&n, "alice", "", Some(resume_from));
    let got = resumed.until(T, |m| job_of(m) == Some(more));
    let got_ids: Vec<u64> = got
        .iter()
        .filter(|m| m.event == "job")
        .map(|m| m.id.unwrap())
        .collect();
    let want = log_positions(&n, &[batch, session, more], resume_from + 1);
    assert_eq!(
        got_ids,
        want[..got_ids.len()],
        "no gap, no duplicate: {got:#?}"
    );
    assert!(!got_ids.contains(&resume_from));
    assert_eq!(
        got.iter().filter(|m| job_of(m) == Some(bobs)).count(),
        0,
        "still none of Bob's"
    );
}

/// A client of `addr` whose receive buffer is a few KiB, set before it connects, so what it
/// does not read backs up into the node at once.
fn tight_client(addr: &str) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let addr: std::net::SocketAddrV4 = addr.parse().unwrap();
    // SAFETY: a new socket of our own, configured and connected before it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            &sin as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0);
        std::net::TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn a_consumer_that_stops_reading_is_cut_off_and_told_where_to_resume() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let node = crate::common::Node::start(
        &dir.path().join("data"),
        &crate::common::fake_spark_home(dir.path()),
        &["--stream-stall-secs", "1"],
    );
    let addr = node.base.trim_start_matches("http://").to_string();
    let mut client = tight_client(&addr);
    write!(
        client,
        "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Far more events than the stream's buffer and the sockets hold, while nobody reads.
    let app = crate::common::program(dir.path(), "app.py", "print(1)\n");
    let http = reqwest::blocking::Client::new();
    let cut_off = || {
        let metrics = http
            .get(node.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        metrics.contains("kindling_api_streams_cut_off_total 1")
    };
    // Big submissions (their conf travels in each JobSubmitted): fewer of them fill it all.
    let conf: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| {
            (
                format!("spark.kindling.test.filler{i}"),
                json!("x".repeat(150)),
            )
        })
        .collect();
    let mut submitted = 0;
    while !cut_off() {
        assert!(submitted < 5_000, "never cut off after {submitted} jobs");
        for _ in 0..50 {
            let r = http
                .post(node.url("/batches"))
                .json(&json!({"file": app, "conf": conf}))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
        }
        submitted += 50;
    }
    // Reading again, the client finds what was buffered, then the hint, then the end.
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut text = String::new();
    client.read_to_string(&mut text).unwrap();
    let hint = text
        .split("event: cutoff")
        .nth(1)
        .expect("a cutoff message last");
    assert!(hint.contains("Last-Event-ID"), "{hint}");
    assert!(
        text.matches("event: job").count() > 256,
        "buffered messages came first"
    );
}
