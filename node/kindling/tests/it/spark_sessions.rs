//! Interactive sessions on real Spark, over HTTP, against a running node: a session comes up
//! idle; pyspark and sql statements return Livy-shaped output; a failing statement returns
//! its error; a long statement is cancelled for real; completion comes from the driver;
//! deleting the session kills its driver; a dead session refuses statements.

use crate::common::{real_spark_home, spark_conf, Node};
use serde_json::{json, Value};
use std::time::Duration;

const START: Duration = Duration::from_secs(120);
const RUN: Duration = Duration::from_secs(60);

fn run(node: &Node, sid: u64, body: Value) -> Value {
    let (status, st) = node.post(&format!("/sessions/{sid}/statements"), body);
    assert_eq!(status, 201, "{st}");
    assert_eq!(st["state"], "waiting");
    assert!(st["output"].is_null());
    let id = st["id"].as_u64().unwrap();
    node.wait_state(
        &format!("/sessions/{sid}/statements/{id}"),
        &["available", "cancelled"],
        RUN,
    )
}

#[test]
fn spark_session_runs_statements_cancels_and_dies_when_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &spark_conf());

    let (status, created) = node.post(
        "/sessions",
        json!({"kind": "pyspark", "name": "s1", "heartbeatTimeoutInSecond": 60}),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "pyspark");
    assert!(
        created["log"].is_array()
            && created["appInfo"].is_object()
            && created.get("proxyUser").is_some()
    );
    let sid = created["id"].as_u64().unwrap();
    let idle = node.wait_state(
        &format!("/sessions/{sid}"),
        &["idle", "error", "dead"],
        START,
    );
    assert_eq!(idle["state"], "idle", "{idle}");
    assert!(
        idle["appId"].as_str().unwrap().starts_with("local-"),
        "{idle}"
    );

    // pyspark: stdout and the value of the last expression.
    let two = run(&node, sid, json!({"code": "1+1"}));
    assert_eq!(two["output"]["status"], "ok");
    assert_eq!(two["output"]["data"]["text/plain"], "2");
    assert_eq!(two["output"]["execution_count"], two["id"]);
    assert!(
        two["started"].as_i64().unwrap() > 0
            && two["completed"].as_i64().unwrap() >= two["started"].as_i64().unwrap()
    );
    assert_eq!(two["progress"], 1.0);
    let spark = run(
        &node,
        sid,
        json!({"code": "print('hello')\nx = spark.range(10).count()\nx * 3"}),
    );
    assert_eq!(spark["output"]["data"]["text/plain"], "hello\n30");

    // sql: a table as application/json with Spark's schema.
    let table = run(
        &node,
        sid,
        json!({"code": "select 1 as a, 'x' as b", "kind": "sql"}),
    );
    let data = &table["output"]["data"]["application/json"];
    assert_eq!(data["data"], json!([[1, "x"]]), "{table}");
    let fields: Vec<&str> = data["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["a", "b"]);

    // A failing statement: Livy's error shape, no data key.
    let err = run(&node, sid, json!({"code": "1/0"}));
    assert_eq!(err["output"]["status"], "error");
    assert_eq!(err["output"]["ename"], "ZeroDivisionError");
    assert!(err["output"]["evalue"]
        .as_str()
        .unwrap()
        .contains("division by zero"));
    assert!(!err["output"]["traceback"].as_array().unwrap().is_empty());
    assert!(err["output"].get("data").is_none());

    // Completion from the driver's namespace.
    let (status, comp) = node.post(
        &format!("/sessions/{sid}/completion"),
        json!({"code": "spark.rea", "kind": "pyspark", "cursor": 9}),
    );
    assert_eq!(status, 200, "{comp}");
    let cands: Vec<&str> = comp["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cands.iter().any(|c| c.ends_with("read")), "{cands:?}");

    // Cancel a long Spark job: the statement ends cancelled well before it would finish,
    // and the session answers again afterwards.
    let (_, long) = node.post(
        &format!("/sessions/{sid}/statements"),
        json!({"code": "import time\nspark.sparkContext.parallelize(range(100000), 2).map(lambda x: time.sleep(0.01) or x).count()"}),
    );
    let lid = long["id"].as_u64().unwrap();
    node.wait_state(
        &format!("/sessions/{sid}/statements/{lid}"),
        &["running"],
        RUN,
    );
    assert_eq!(
        node.get(&format!("/sessions/{sid}/state")).1["state"],
        "busy"
    );
    let (status, msg) = node.post(
        &format!("/sessions/{sid}/statements/{lid}/cancel"),
        json!({}),
    );
    assert_eq!((status, msg), (200, json!({"msg": "canceled"})));
    let cancelled = node.wait_state(
        &format!("/sessions/{sid}/statements/{lid}"),
        &["cancelled", "available"],
        Duration::from_secs(30),
    );
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    node.wait_state(&format!("/sessions/{sid}"), &["idle"], RUN);
    let after = run(&node, sid, json!({"code": "21 * 2"}));
    assert_eq!(after["output"]["data"]["text/plain"], "42");

    // The native API's long poll answers when the statement ends.
    let (status, st) = node.post(
        &format!("/api/v1/jobs/{sid}/statements"),
        json!({"code": "sum(range(5))"}),
    );
    assert_eq!(status, 201);
    let (status, done) = node.get(&format!(
        "/api/v1/jobs/{sid}/statements/{}?wait=30s",
        st["id"]
    ));
    assert_eq!(status, 200);
    assert_eq!(done["state"], "available", "{done}");
    assert_eq!(done["output"]["data"]["text/plain"], "10");

    let list = node.get(&format!("/sessions/{sid}/statements")).1;
    assert_eq!(list["total_statements"], 7);

    // Deleting the session kills its driver; a dead session refuses statements.
    let name = format!("kindling-{sid}-1");
    assert!(!node.driver_pids(&name).is_empty());
    let (status, msg) = node.delete(&format!("/sessions/{sid}"));
    assert_eq!((status, msg), (200, json!({"msg": "deleted"})));
    let gone = node.wait_state(
        &format!("/api/v1/jobs/{sid}"),
        &["killed", "dead", "error", "success"],
        RUN,
    );
    assert_eq!(gone["state"], "killed", "{gone}");
    assert!(
        node.driver_pids(&name).is_empty(),
        "no driver process survives the delete"
    );
    let before = node.log_end();
    let (status, refused) = node.post(
        &format!("/api/v1/jobs/{sid}/statements"),
        json!({"code": "1"}),
    );
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["msg"].as_str().unwrap().contains("killed"),
        "{refused}"
    );
    assert_eq!(node.log_end(), before, "a refused statement writes nothing");
    assert_eq!(node.get(&format!("/sessions/{sid}")).0, 404);
}

#[test]
fn spark_sql_session_defaults_statements_to_sql() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &spark_conf());
    let (_, created) = node.post("/sessions", json!({"kind": "sql"}));
    let sid = created["id"].as_u64().unwrap();
    node.wait_state(&format!("/sessions/{sid}"), &["idle"], START);
    let out = run(
        &node,
        sid,
        json!({"code": "select id, id * 2 as twice from range(3)"}),
    );
    assert_eq!(
        out["output"]["data"]["application/json"]["data"],
        json!([[0, 0], [1, 2], [2, 4]]),
        "{out}"
    );
    let (status, _) = node.delete(&format!("/sessions/{sid}"));
    assert_eq!(status, 200);
}
