//! Details of Livy's API a Livy user notices, on one node whose session drivers are the real
//! runner with a stand-in pyspark (Spark is not what is checked): statements listed newest
//! first with `order=desc`, paged in that order, on Livy's route and the native one.

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
