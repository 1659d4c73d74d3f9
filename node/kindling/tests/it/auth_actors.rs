//! Who did what: every event a request causes records the authenticated user who asked
//! (`actor`), shown in a job's history and the raw log; the scheduler's events name nobody.

use crate::auth::Secured;
use serde_json::{json, Value};

#[test]
fn events_record_the_user_who_asked() {
    let dir = tempfile::tempdir().unwrap();
    let n = Secured::start(dir.path());
    let long = n.job("batches", "alice", json!({"args": ["sleep=60"]}));
    let (status, killed, _) = n.call(
        "POST",
        &format!("/api/v1/jobs/{long}/kill"),
        Some("root"),
        None,
    );
    assert_eq!(status, 200, "{killed}");
    let actors = |id: u64| -> Vec<(String, Option<String>)> {
        let (_, history, _) = n.call(
            "GET",
            &format!("/api/v1/jobs/{id}/events"),
            Some("root"),
            None,
        );
        let events = history["events"].as_array().unwrap().iter();
        let named = |e: &Value| e["actor"].as_str().map(str::to_string);
        events
            .map(|e| (e["type"].as_str().unwrap().to_string(), named(e)))
            .collect()
    };
    let history = actors(long);
    let actor_of = |history: &[(String, Option<String>)], event: &str| {
        let found = history.iter().find(|(t, _)| t == event);
        found
            .unwrap_or_else(|| panic!("no {event} in {history:?}"))
            .1
            .clone()
    };
    assert_eq!(actor_of(&history, "JobSubmitted").as_deref(), Some("alice"));
    assert_eq!(actor_of(&history, "KillRequested").as_deref(), Some("root"));
    let for_bob = n.job("batches", "svc", json!({"proxyUser": "bob"}));
    assert_eq!(
        actor_of(&actors(for_bob), "JobSubmitted").as_deref(),
        Some("svc"),
        "the superuser asked, for bob"
    );
    assert!(
        history
            .iter()
            .filter(|(t, _)| t.starts_with("Job") && t != "JobSubmitted")
            .all(|(_, actor)| actor.is_none()),
        "the scheduler acts for nobody: {history:?}"
    );
    let cluster = json!({"name": "east", "type": "local", "capacity": {"maxDrivers": 1}});
    let (status, reply, _) = n.call("POST", "/api/v1/clusters", Some("root"), Some(cluster));
    assert_eq!(status, 201, "{reply}");
    let (_, log, _) = n.call("GET", "/api/v1/events?limit=1000", Some("root"), None);
    let registered = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "ClusterRegistered" && e["data"]["name"] == "east")
        .unwrap_or_else(|| panic!("no registration of east in {log}"));
    assert_eq!(registered["actor"], "root", "{registered}");
}
