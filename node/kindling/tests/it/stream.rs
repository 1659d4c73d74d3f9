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
