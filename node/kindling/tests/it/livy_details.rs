//! Details of Livy's API a Livy user notices, on one node whose session drivers are the real
//! runner with a stand-in pyspark (Spark is not what is checked): statements listed newest
//! first with `order=desc`, paged in that order, on Livy's route and the native one; batches
//! and sessions named in Livy's paths by their names, and a second active one of a name
//! refused as Livy refuses it.

use crate::common::Node;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn ids(listing: &Value) -> Vec<u64> {
    listing["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn statements_list_newest_first_with_order_desc_and_page_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &crate::common::cluster::runner_only_spark_home(dir.path()),
        &[],
    );
    let (status, session) = node.post("/sessions", json!({"kind": "pyspark"}));
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_u64().unwrap();
    node.wait_state(&format!("/sessions/{id}"), &["idle"], T);
    for n in 0..4 {
        let path = format!("/sessions/{id}/statements");
        let (status, st) = node.post(&path, json!({"code": format!("print({n})")}));
        assert_eq!(status, 201, "{st}");
        node.wait_state(&format!("{path}/{}", st["id"]), &["available"], T);
    }

    for base in [
        format!("/sessions/{id}/statements"),
        format!("/api/v1/jobs/{id}/statements"),
    ] {
        let list = |q: &str| {
            let (status, body) = node.get(&format!("{base}?{q}"));
            assert_eq!(status, 200, "{base}?{q}: {body}");
            assert_eq!(body["total_statements"], 4, "{body}");
            ids(&body)
        };
        assert_eq!(list(""), [0, 1, 2, 3]);
        assert_eq!(list("order=asc&from=1&size=2"), [1, 2]);
        assert_eq!(list("order=desc"), [3, 2, 1, 0]);
        assert_eq!(list("order=desc&from=1&size=2"), [2, 1]);
        assert_eq!(list("order=desc&from=3&size=5"), [0]);
        assert_eq!(list("order=desc&from=9"), Vec::<u64>::new());
        let (status, body) = node.get(&format!("{base}?order=sideways"));
        assert_eq!(status, 400, "{body}");
        assert!(body["msg"].as_str().unwrap().contains("order"), "{body}");
    }
}

#[test]
fn livy_paths_take_names_and_an_active_name_is_not_given_twice() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &crate::common::cluster::runner_only_spark_home(dir.path()),
        &[],
    );
    let (status, session) = node.post("/sessions", json!({"kind": "pyspark", "name": "notebook"}));
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_u64().unwrap();
    let (status, twice) = node.post("/sessions", json!({"kind": "pyspark", "name": "notebook"}));
    assert_eq!(status, 409, "{twice}");
    let msg = twice["msg"].as_str().unwrap();
    assert!(msg.starts_with("Duplicate session name"), "{msg}");
    assert!(msg.contains(&format!("session {id}")), "{msg}");
    node.wait_state("/sessions/notebook", &["idle"], T);
    let (status, state) = node.get("/sessions/notebook/state");
    assert_eq!((status, state["id"].as_u64()), (200, Some(id)), "{state}");
    let (status, st) = node.post(
        "/sessions/notebook/statements",
        json!({"code": "print(6 * 7)"}),
    );
    assert_eq!(status, 201, "{st}");
    let done = node.wait_state(
        &format!("/sessions/notebook/statements/{}", st["id"]),
        &["available"],
        T,
    );
    assert_eq!(done["output"]["data"]["text/plain"], "42", "{done}");
    let (status, listed) = node.get("/sessions/notebook/statements?order=desc");
    assert_eq!(
        (status, listed["total_statements"].as_u64()),
        (200, Some(1))
    );
    let (status, log) = node.get("/sessions/notebook/log");
    assert_eq!((status, log["id"].as_u64()), (200, Some(id)), "{log}");
    // A name belongs to one kind: a batch may share a session's, and is not found as one.
    let app = crate::common::program(dir.path(), "quick.py", "print('done')\n");
    let (status, batch) = node.post("/batches", json!({"file": app, "name": "notebook"}));
    assert_eq!(status, 201, "{batch}");
    let first = node.wait_state("/batches/notebook", &["success"], T);
    assert_eq!(first["id"], batch["id"], "{first}");
    // A name that ended is free again; the path then names the newest.
    let (status, again) = node.post("/batches", json!({"file": app, "name": "notebook"}));
    assert_eq!(status, 201, "{again}");
    let (status, shown) = node.get("/batches/notebook");
    assert_eq!((status, &shown["id"]), (200, &again["id"]), "{shown}");
    for path in [
        "/sessions/nosuch",
        "/batches/nosuch/log",
        "/sessions/nosuch/statements",
    ] {
        let (status, body) = node.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["msg"].as_str().unwrap().contains("'nosuch' not found"),
            "{body}"
        );
    }
    // Deleting the session frees its name at once.
    let (status, deleted) = node.delete("/sessions/notebook");
    assert_eq!(status, 200, "{deleted}");
    let (status, gone) = node.get("/sessions/notebook");
    assert_eq!(status, 404, "{gone}");
    let (status, next) = node.post("/sessions", json!({"kind": "pyspark", "name": "notebook"}));
    assert_eq!(status, 201, "{next}");
    assert_ne!(next["id"].as_u64(), Some(id));
    let (status, deleted) = node.delete("/sessions/notebook");
    assert_eq!(status, 200, "{deleted}");
}
