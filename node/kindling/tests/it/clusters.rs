//! The cluster registry against a running node: `/api/v1/clusters` CRUD with credentials
//! hidden, bad input, jobs routed by `cluster` and Livy's `conf["kindling.cluster"]`,
//! per-cluster capacity with the visible reason a job waits, a cluster that cannot be deleted
//! while jobs run on it, clusters that fail (unreachable, slow, bad credentials) failing only
//! their own jobs, and a Kubernetes cluster (the API server FAKE of `common/kube_fake`)
//! running a batch end to end through the registry.
//!
//! Local clusters use the fake `spark-submit` of `common::fake_spark_home` (a short shell
//! program): what is checked is the node's bookkeeping, not Spark.

use kindling_testkit::kube_fake;

use crate::common::{fake_spark_home, Node};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// A node whose credentials directory is `dir`, where the tests write their token files.
fn start(dir: &Path, extra: &[&str]) -> Node {
    let credentials = dir.display().to_string();
    let mut args = vec!["--credentials-dir", credentials.as_str()];
    args.extend_from_slice(extra);
    Node::start(&dir.join("data"), &fake_spark_home(dir), &args)
}

fn app(dir: &Path) -> String {
    crate::common::program(dir, "app.py", "print('hello')\n")
}

fn job(node: &Node, id: u64) -> Value {
    node.get(&format!("/api/v1/jobs/{id}")).1
}

fn local(name: &str, max_drivers: u32) -> Value {
    json!({"name": name, "type": "local", "capacity": {"maxDrivers": max_drivers}})
}

fn id(v: &Value) -> u64 {
    v["id"].as_u64().unwrap_or_else(|| panic!("no id in {v}"))
}

fn events(node: &Node, id: u64) -> Vec<String> {
    node.get(&format!("/api/v1/jobs/{id}/events")).1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn clusters_round_trip_through_the_api_with_credentials_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path(), &["--max-drivers", "3"]);
    let token = dir.path().join("east.token");
    std::fs::write(&token, "s3cr3t-t0ken").unwrap();
    let token = token.display().to_string();

    // The built-in cluster exists without any call.
    let (status, all) = node.get("/api/v1/clusters");
    assert_eq!(status, 200, "{all}");
    let builtin = &all["clusters"][0];
    assert_eq!(builtin["name"], "local");
    assert_eq!(builtin["type"], "local");
    assert_eq!(builtin["builtIn"], true);
    assert_eq!(builtin["capacity"]["maxDrivers"], 3);
    assert_eq!(all["clusters"].as_array().unwrap().len(), 1);

    let east = json!({
        "name": "east",
        "type": "kubernetes",
        "connection": {
            "apiServer": "https://10.1.2.3:6443",
            "namespace": "spark-jobs",
            "image": "apache/spark:4.0.0-python3",
        },
        "credentials": {"type": "tokenFile", "path": token},
        "sparkConf": {
            "spark.executor.instances": 2,
            "spark.kubernetes.driver.secretKeyRef.DB_PASSWORD": "db:password",
        },
        "capacity": {"maxDrivers": 4, "maxDriverCores": 8, "maxDriverMemory": "16g"},
    });
    let r = reqwest::blocking::Client::new()
        .post(node.url("/api/v1/clusters"))
        .json(&east)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["location"], "/api/v1/clusters/east");
    let created: Value = r.json().unwrap();
    assert_eq!(created["credentials"], json!({"type": "tokenFile"}));
    assert_eq!(created["connection"]["namespace"], "spark-jobs");
    assert_eq!(created["sparkConf"]["spark.executor.instances"], "2");
    assert_eq!(
        created["capacity"],
        json!({"maxDrivers": 4, "maxDriverCores": 8, "maxDriverMemory": "16384m"})
    );
    assert_eq!(created["builtIn"], false);
    let revision = created["revision"].as_u64().unwrap();

    let (_, one) = node.get("/api/v1/clusters/east");
    assert_eq!(one["activeJobs"], 0);
    assert_eq!(one["name"], "east");
    // An update without credentials keeps them; it replaces everything else.
    let mut more = east.clone();
    more.as_object_mut().unwrap().remove("credentials");
    more["capacity"] = json!({"maxDrivers": 8});
    let (status, updated) = node.put("/api/v1/clusters/east", more.clone());
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["credentials"]["type"], "tokenFile");
    assert_eq!(updated["capacity"]["maxDrivers"], 8);
    assert!(updated["capacity"]["maxDriverCores"].is_null());
    assert!(updated["revision"].as_u64().unwrap() > revision);
    // The same update again changes nothing.
    let end = node.log_end();
    let (status, again) = node.put("/api/v1/clusters/east", more);
    assert_eq!((status, &again["revision"]), (200, &updated["revision"]));
    assert_eq!(
        node.log_end(),
        end,
        "an update that changes nothing writes nothing"
    );

    let (status, _) = node.post(
        "/api/v1/clusters",
        json!({"name": "lab", "type": "standalone", "connection": {
            "restUrl": "http://127.0.0.1:6066", "webUiUrl": "http://127.0.0.1:8080"}}),
    );
    assert_eq!(status, 201);
    let names = |node: &Node| -> Vec<String> {
        node.get("/api/v1/clusters").1["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&node), ["local", "east", "lab"]);
    // A YARN cluster takes a keytab by reference (or a user for simple authentication).
    let conf_dir = dir.path().join("hadoop-conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let keytab = dir.path().join("kindling.keytab");
    std::fs::write(&keytab, [5u8, 2, 0, 0]).unwrap();
    let (status, yarn) = node.post(
        "/api/v1/clusters",
        json!({"name": "yarn-prod", "type": "yarn",
            "connection": {"hadoopConfDir": conf_dir.display().to_string(),
                "resourceManagers": "http://rm1:8088,http://rm2:8088", "queue": "etl"},
            "credentials": {"type": "keytab", "principal": "kindling@EXAMPLE.COM",
                "keytab": keytab.display().to_string()}}),
    );
    assert_eq!(status, 201, "{yarn}");
    assert_eq!(yarn["credentials"], json!({"type": "keytab"}));
    assert!(!yarn.to_string().contains("EXAMPLE.COM"));
    assert_eq!(node.delete("/api/v1/clusters/yarn-prod").0, 200);

    // Nothing a client or an operator reads shows the token or where it is.
    let mut shown = String::new();
    for path in ["/api/v1/clusters", "/api/v1/clusters/east"] {
        shown.push_str(&node.get(path).1.to_string());
    }
    shown.push_str(&created.to_string());
    shown.push_str(&updated.to_string());
    for hidden in ["s3cr3t-t0ken", token.as_str()] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
    // References to Kubernetes secrets are not secrets.
    assert!(shown.contains("db:password"));

    // Event-sourced: a restart, and a rebuild of the projections, bring them back.
    node.stop();
    std::fs::remove_dir_all(node.data.join("projections")).unwrap();
    node.restart();
    assert_eq!(names(&node), ["local", "east", "lab"]);
    assert_eq!(
        node.get("/api/v1/clusters/east").1["capacity"]["maxDrivers"],
        8
    );

    let (status, msg) = node.delete("/api/v1/clusters/lab");
    assert_eq!(status, 200, "{msg}");
    assert!(msg["msg"].as_str().unwrap().contains("lab"));
    assert_eq!(node.get("/api/v1/clusters/lab").0, 404);
    assert_eq!(names(&node), ["local", "east"]);
    // The name is free again.
    let (status, _) = node.post("/api/v1/clusters", local("lab", 1));
    assert_eq!(status, 201);

    node.stop();
    let log = std::fs::read_to_string(node.data.with_extension("node.log")).unwrap();
    assert!(
        !log.contains("s3cr3t-t0ken") && !log.contains(&token),
        "the node's log shows the credentials"
    );
}

#[test]
fn bad_cluster_input_gets_a_clear_4xx_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let file = app(dir.path());
    let (status, _) = node.post(
        "/api/v1/clusters",
        json!({"name": "small", "type": "local", "capacity": {"maxDriverCores": 4, "maxDriverMemory": "2g"}}),
    );
    assert_eq!(status, 201);
    let (status, _) = node.post("/api/v1/clusters", local("other", 1));
    assert_eq!(status, 201);
    let before = node.log_end();

    let k8s = |extra: Value| {
        let mut c = json!({"name": "k", "type": "kubernetes", "connection": {
            "apiServer": "https://10.0.0.1:6443", "namespace": "spark", "image": "spark:4"}});
        for (k, v) in extra.as_object().unwrap() {
            if k == "connection" {
                for (ck, cv) in v.as_object().unwrap() {
                    c["connection"][ck] = cv.clone();
                }
            } else {
                c[k] = v.clone();
            }
        }
        c.to_string()
    };
    let standalone = |rest: &str| {
        json!({"name": "s", "type": "standalone",
            "connection": {"restUrl": rest, "webUiUrl": "http://m:8080"}})
        .to_string()
    };
    let newline = dir.path().join("newline.token");
    std::fs::write(&newline, "abc\n").unwrap();
    let newline = newline.display().to_string();
    let missing = dir.path().join("no-such.token").display().to_string();
    let escape = dir.path().join("escape.token");
    std::os::unix::fs::symlink("/etc/hostname", &escape).unwrap();
    let escape = escape.display().to_string();
    let post = "POST";
    let put = "PUT";
    let clusters = "/api/v1/clusters";
    let long = "a".repeat(64);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (post, clusters, "".into(), 400, "empty"),
        (post, clusters, "{\"name\": ".into(), 400, "not valid JSON"),
        (post, clusters, json!({"type": "local"}).to_string(), 400, "name is required"),
        (post, clusters, json!({"name": "Bad Name", "type": "local"}).to_string(), 400, "name:"),
        (post, clusters, json!({"name": "-x", "type": "local"}).to_string(), 400, "name:"),
        (post, clusters, json!({"name": long, "type": "local"}).to_string(), 400, "name:"),
        (post, clusters, json!({"name": "x"}).to_string(), 400, "type is required"),
        (post, clusters, json!({"name": "x", "type": "mesos"}).to_string(), 400, "type \"mesos\" is unknown"),
        (post, clusters, json!({"name": "x", "type": "local", "conection": {}}).to_string(), 400, "unknown field `conection`"),
        (post, clusters, json!({"name": "x", "type": "local", "connection": {"namespace": "a"}}).to_string(), 400, "connection.namespace is not a setting of a local cluster"),
        (post, clusters, json!({"name": "x", "type": "local", "connection": {"master": "yarn"}}).to_string(), 400, "connection.master"),
        (post, clusters, json!({"name": "x", "type": "local", "connection": {"master": {"n": 1}}}).to_string(), 400, "connection.master must be a string"),
        (post, clusters, json!({"name": "s", "type": "standalone"}).to_string(), 400, "connection.restUrl is required"),
        (post, clusters, standalone("master:6066"), 400, "connection.restUrl"),
        (post, clusters, standalone("http://u:p@master:6066"), 400, "must not carry credentials"),
        (post, clusters, json!({"name": "k", "type": "kubernetes", "connection": {"namespace": "spark", "apiServer": "https://k:6443"}}).to_string(), 400, "connection.image is required"),
        (post, clusters, k8s(json!({"connection": {"namespace": "Spark_Jobs"}})), 400, "connection.namespace"),
        (post, clusters, json!({"name": "k", "type": "kubernetes", "connection": {"namespace": "spark", "image": "spark:4"}}).to_string(), 400, "connection.apiServer is required"),
        (post, clusters, k8s(json!({"connection": {"imagePullPolicy": "Sometimes"}})), 400, "connection.imagePullPolicy"),
        (post, clusters, k8s(json!({"connection": {"podRetention": "forever"}})), 400, "connection.podRetention"),
        (post, clusters, k8s(json!({"connection": {"caFile": "/no/such/ca.crt"}})), 409, "connection.caFile"),
        (post, clusters, k8s(json!({"credentials": {"type": "password"}})), 400, "credentials.type \"password\" is unknown"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile", "token": "abc"}})), 400, "credentials.token: secrets are not accepted inline"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile", "path": missing}})), 409, "credentials.path"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile", "path": "/etc/hostname"}})), 409, "credentials.path: /etc/hostname is not in the credentials directory"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile", "path": escape}})), 409, "a symlink out of it does not count"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile"}})), 400, "credentials.path is required"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile", "path": newline}})), 409, "trailing newline"),
        (post, clusters, k8s(json!({"credentials": {"type": "tokenFile", "path": "token"}})), 400, "credentials.path"),
        (post, clusters, k8s(json!({"credentials": {"type": "keytab", "principal": "k", "keytab": "/etc/hostname"}})), 400, "do not apply to a kubernetes cluster"),
        (post, clusters, json!({"name": "x", "type": "local", "credentials": {"type": "tokenFile", "path": "/etc/hostname"}}).to_string(), 400, "do not apply to a local cluster"),
        (post, clusters, json!({"name": "y", "type": "yarn", "connection": {"hadoopConfDir": "/no/such/dir", "resourceManagers": "http://rm:8088", "user": "spark"}}).to_string(), 409, "connection.hadoopConfDir"),
        (post, clusters, json!({"name": "y", "type": "yarn", "connection": {"hadoopConfDir": "/tmp", "resourceManagers": "http://rm:8088,rm2"}}).to_string(), 400, "connection.resourceManagers"),
        (post, clusters, json!({"name": "y", "type": "yarn", "connection": {"hadoopConfDir": "/tmp", "resourceManagers": "http://rm:8088"}}).to_string(), 400, "connection.user is required"),
        (post, clusters, json!({"name": "x", "type": "local", "capacity": {"maxDrivers": 0}}).to_string(), 400, "capacity.maxDrivers"),
        (post, clusters, json!({"name": "x", "type": "local", "capacity": {"maxDriverCores": -2}}).to_string(), 400, "capacity.maxDriverCores"),
        (post, clusters, json!({"name": "x", "type": "local", "capacity": {"maxDriverMemory": "lots"}}).to_string(), 400, "capacity.maxDriverMemory"),
        (post, clusters, json!({"name": "x", "type": "local", "capacity": {"maxDrivers": "two"}}).to_string(), 400, "capacity.maxDrivers"),
        (post, clusters, json!({"name": "x", "type": "local", "sparkConf": {"spark.hadoop.fs.s3a.secret.key": "k"}}).to_string(), 400, "sparkConf.spark.hadoop.fs.s3a.secret.key looks like a credential"),
        (post, clusters, json!({"name": "x", "type": "local", "sparkConf": {"a": {"b": 1}}}).to_string(), 400, "sparkConf.a"),
        (post, clusters, local("local", 1).to_string(), 409, "built in"),
        (post, clusters, local("small", 1).to_string(), 409, "cluster 'small' already exists"),
        (put, "/api/v1/clusters/nope", local("nope", 1).to_string(), 404, "Cluster 'nope' not found"),
        (put, "/api/v1/clusters/local", local("local", 9).to_string(), 409, "built in"),
        (put, "/api/v1/clusters/small", local("big", 1).to_string(), 409, "cannot be renamed"),
        (put, "/api/v1/clusters/small", json!({"type": "local", "capacity": {"maxDrivers": -1}}).to_string(), 400, "capacity.maxDrivers"),
        (post, "/api/v1/batches", json!({"file": file, "cluster": "nope"}).to_string(), 409, "cluster 'nope' (from cluster or conf.kindling.cluster) does not exist; the clusters are: local, other, small"),
        (post, "/batches", json!({"file": file, "conf": {"kindling.cluster": "nope"}}).to_string(), 409, "cluster 'nope'"),
        (post, "/sessions", json!({"conf": {"kindling.cluster": "nope"}}).to_string(), 409, "cluster 'nope'"),
        (post, "/api/v1/batches", json!({"file": file, "cluster": "small", "driverCores": 8}).to_string(), 409, "driverCores: the driver needs 8 cores but cluster 'small' allows 4"),
        (post, "/api/v1/sessions", json!({"cluster": "small", "driverMemory": "4g"}).to_string(), 409, "driverMemory: the driver needs 4096 MB"),
        // Livy's body is Livy's: the cluster goes in conf.
        (post, "/batches", json!({"file": file, "cluster": "small"}).to_string(), 400, "unknown field `cluster`"),
    ];
    assert!(cases.len() >= 30);
    let http = reqwest::blocking::Client::new();
    for (method, path, body, status, needle) in &cases {
        let r = http
            .request(method.parse().unwrap(), node.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        let got = r.status().as_u16();
        let reply: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(got, *status, "{method} {path} {body} -> {reply}");
        let msg = reply["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("no msg in {reply}"));
        assert!(
            msg.contains(needle),
            "{method} {path} {body}: {msg:?} lacks {needle:?}"
        );
    }
    for (path, status) in [
        ("/api/v1/clusters/nope", 404),
        ("/api/v1/clusters/local", 200),
    ] {
        assert_eq!(node.get(path).0, status, "GET {path}");
    }
    assert_eq!(node.delete("/api/v1/clusters/nope").0, 404);
    let (status, reply) = node.delete("/api/v1/clusters/local");
    assert_eq!(status, 409, "{reply}");
    assert_eq!(
        node.log_end(),
        before,
        "no rejected request wrote to the log"
    );
}

#[test]
fn jobs_queue_per_cluster_with_a_visible_reason_and_clusters_with_jobs_stay() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let file = app(dir.path());
    for name in ["a", "b"] {
        let (status, c) = node.post("/api/v1/clusters", local(name, 1));
        assert_eq!(status, 201, "{c}");
    }
    let hold = json!(["sleep=30"]);
    // Livy clients name the cluster in conf; the native API has a field for it.
    let (status, a1) = node.post(
        "/batches",
        json!({"file": file, "args": hold, "conf": {"kindling.cluster": "a"}}),
    );
    assert_eq!(status, 201, "{a1}");
    let (_, a2) = node.post(
        "/batches",
        json!({"file": file, "args": hold, "conf": {"kindling.cluster": "a"}}),
    );
    let (status, b1) = node.post(
        "/api/v1/batches",
        json!({"file": file, "args": hold, "cluster": "b"}),
    );
    assert_eq!(status, 201, "{b1}");
    assert_eq!(b1["cluster"], "b");
    let (a1, a2, b1) = (id(&a1), id(&a2), id(&b1));
    node.wait_state(&format!("/api/v1/jobs/{a1}"), &["running"], T);
    // One full cluster does not hold back another.
    node.wait_state(&format!("/api/v1/jobs/{b1}"), &["running"], T);
    let waiting = node.wait_for(&format!("/api/v1/jobs/{a2}"), T, |j| {
        j["reason"].as_str().is_some()
    });
    assert_eq!(waiting["state"], "not_started");
    assert_eq!(waiting["cluster"], "a");
    let reason = waiting["reason"].as_str().unwrap();
    assert!(
        reason.contains("cluster 'a'") && reason.contains("limit of 1 concurrent driver"),
        "{reason}"
    );
    // What the cluster's driver takes, sized as the scheduler sizes it (Spark's defaults:
    // one core, 1g), and what waits.
    let (_, on_a) = node.get("/api/v1/jobs?cluster=a");
    let ids: Vec<u64> = on_a["jobs"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        (on_a["total"].as_u64(), ids),
        (Some(2), vec![a1, a2]),
        "{on_a}"
    );
    let (_, newest) = node.get("/api/v1/jobs?order=desc&limit=1");
    assert_eq!(id(&newest["jobs"][0]), a2.max(b1), "{newest}");
    assert_eq!(node.get("/api/v1/jobs?order=sideways").0, 400);
    let (_, a) = node.get("/api/v1/clusters/a");
    assert_eq!(a["activeJobs"], 2, "{a}");
    assert_eq!(a["queuedJobs"], 1, "{a}");
    assert_eq!(
        a["inUse"],
        json!({"drivers": 1, "driverCores": 1, "driverMemory": "1024m"}),
        "{a}"
    );
    let metrics = reqwest::blocking::get(node.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "kindling_scheduler_cluster_waiting_jobs{cluster=\"a\"} 1",
        "kindling_scheduler_cluster_drivers{cluster=\"a\"} 1",
        "kindling_scheduler_cluster_waiting_jobs{cluster=\"b\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    // Livy's shape does not change: the reason is the native API's.
    let (_, livy) = node.get(&format!("/batches/{a2}"));
    let mut keys: Vec<&str> = livy
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "appId",
            "appInfo",
            "id",
            "log",
            "name",
            "owner",
            "proxyUser",
            "state"
        ]
    );
    assert_eq!(livy["state"], "not_started");
    // The jobs on the default cluster are not affected either.
    let (_, l1) = node.post("/batches", json!({"file": file}));
    let l1 = node.wait_state(&format!("/api/v1/jobs/{}", id(&l1)), &["success"], T);
    assert_eq!(l1["cluster"], "local");

    // A cluster with jobs that have not ended cannot be deleted, nor moved.
    let (status, refused) = node.delete("/api/v1/clusters/a");
    assert_eq!(status, 409, "{refused}");
    let msg = refused["msg"].as_str().unwrap();
    assert!(
        msg.contains("cluster 'a'") && msg.contains("2 job(s)"),
        "{msg}"
    );
    let (status, refused) = node.put(
        "/api/v1/clusters/a",
        json!({"type": "standalone", "connection": {
            "restUrl": "http://127.0.0.1:1", "webUiUrl": "http://127.0.0.1:1"}}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(node.get("/api/v1/clusters/a").1["activeJobs"], 2);

    // More room on the cluster: the leader applies the update and the waiting job starts.
    let (status, _) = node.put("/api/v1/clusters/a", local("a", 2));
    assert_eq!(status, 200);
    let started = node.wait_state(&format!("/api/v1/jobs/{a2}"), &["running"], T);
    assert!(started["reason"].is_null(), "{started}");
    assert_eq!(
        events(&node, a2)
            .iter()
            .filter(|e| *e == "JobQueued")
            .count(),
        1,
        "the reason is recorded when it changes, not on every look"
    );
    assert_eq!(
        node.get(&format!("/api/v1/jobs/{a1}")).1["state"],
        "running",
        "an update leaves running drivers alone"
    );

    for j in [a1, a2, b1] {
        let (status, killed) = node.post(&format!("/api/v1/jobs/{j}/kill"), json!({}));
        assert_eq!(status, 200, "{killed}");
    }
    for j in [a1, a2, b1] {
        node.wait_state(&format!("/api/v1/jobs/{j}"), &["killed"], T);
    }
    let (status, msg) = node.delete("/api/v1/clusters/a");
    assert_eq!(status, 200, "{msg}");
    let (status, gone) = node.post("/api/v1/batches", json!({"file": file, "cluster": "a"}));
    assert_eq!(status, 409, "{gone}");
    // The jobs of a deleted cluster keep their history.
    assert_eq!(job(&node, a1)["cluster"], "a");
}

#[test]
fn clusters_that_fail_fail_their_own_jobs_while_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let file = app(dir.path());
    // A master that accepts connections and never answers: its lane waits for the HTTP
    // client's timeout, and must hold up nothing else.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut kept = vec![];
        for c in silent.incoming().take(8) {
            kept.push(c);
        }
    });
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for (name, url) in [("slow", &silent_url), ("down", &closed)] {
        let (status, c) = node.post(
            "/api/v1/clusters",
            json!({"name": name, "type": "standalone",
                "connection": {"restUrl": url, "webUiUrl": url}}),
        );
        assert_eq!(status, 201, "{c}");
    }
    // Files on a standalone cluster are the workers': the node does not look for them.
    let remote = "/opt/jobs/etl.py";
    let (_, slow) = node.post(
        "/api/v1/batches",
        json!({"file": remote, "cluster": "slow"}),
    );
    let (_, down) = node.post(
        "/api/v1/batches",
        json!({"file": remote, "cluster": "down"}),
    );
    let (slow, down) = (id(&slow), id(&down));
    let started = Instant::now();
    let dead = node.wait_state(&format!("/api/v1/jobs/{down}"), &["dead"], T);
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains("could not be launched")
            && reason.contains(&closed)
            && reason.contains("does not answer"),
        "{reason}"
    );
    // A listing reads no driver's log, so a cluster that does not answer holds it up not at
    // all; one batch's object says why its log cannot be read rather than failing.
    let asked = Instant::now();
    let (status, list) = node.get("/batches");
    assert_eq!(status, 200, "{list}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    let listed = list["sessions"].as_array().unwrap();
    assert!(listed.iter().all(|b| b["log"] == json!([])), "{list}");
    let (status, one) = node.get(&format!("/batches/{down}"));
    assert_eq!(status, 200, "{one}");
    let note = one["log"][0].as_str().unwrap_or_default();
    assert!(
        note.contains("cannot be read now") && note.contains("'down'"),
        "{one}"
    );
    let (status, log) = node.get(&format!("/batches/{down}/log"));
    assert_eq!(status, 503, "{log}");
    // The default cluster runs jobs meanwhile.
    for _ in 0..2 {
        let (_, l) = node.post("/batches", json!({"file": file}));
        node.wait_state(&format!("/api/v1/jobs/{}", id(&l)), &["success"], T);
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "other clusters waited for the silent one"
    );
    assert_eq!(
        job(&node, slow)["state"],
        "starting",
        "{}",
        job(&node, slow)
    );
    let dead = node.wait_state(&format!("/api/v1/jobs/{slow}"), &["dead"], T);
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains(&silent_url) && reason.contains("does not answer"),
        "{reason}"
    );
    drop(held);
}

/// The driver pod `pod` once the node has created it (polled, within `T`).
fn driver_pod(fake: &kube_fake::KubeFake, ns: &str, pod: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        if let Some(created) = fake.get("pods", ns, pod) {
            return created;
        }
        assert!(Instant::now() < deadline, "no driver pod {pod}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_kubernetes_cluster_runs_a_batch_through_the_registry() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(kube_fake::KubeFake::start(Some("t0ken-east")));
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), &[]);
    let good = dir.path().join("east.token");
    std::fs::write(&good, "t0ken-east").unwrap();
    let bad = dir.path().join("stale.token");
    std::fs::write(&bad, "expired").unwrap();
    let ns = "spark-jobs";
    for (name, token) in [("east", &good), ("stale", &bad)] {
        let (status, c) = node.post(
            "/api/v1/clusters",
            json!({"name": name, "type": "kubernetes",
                "connection": {"apiServer": fake.url, "namespace": ns, "image": "apache/spark:4.0.0-python3"},
                "credentials": {"type": "tokenFile", "path": token.display().to_string()},
                "sparkConf": {"spark.executor.instances": "1"}}),
        );
        assert_eq!(status, 201, "{c}");
    }
    let pi = "local:///opt/spark/examples/src/main/python/pi.py";
    let (status, b) = node.post(
        "/api/v1/batches",
        json!({"file": pi, "args": ["10"], "cluster": "east"}),
    );
    assert_eq!(status, 201, "{b}");
    let b = id(&b);
    let pod = format!("kindling-{b}-1");
    let created = driver_pod(&fake, ns, &pod);
    assert_eq!(
        created["spec"]["containers"][0]["image"],
        "apache/spark:4.0.0-python3"
    );
    // The kubelet's part.
    fake.run(ns, &pod);
    fake.log(ns, &pod, "Pi is roughly 3.14");
    node.wait_state(&format!("/api/v1/jobs/{b}"), &["running"], T);
    fake.terminate(ns, &pod, 0, "Completed");
    let done = node.wait_state(&format!("/api/v1/jobs/{b}"), &["success", "dead"], T);
    assert_eq!(done["state"], "success", "{done}");
    assert_eq!(done["driverId"], format!("{ns}/{pod}"));
    let log = node.wait_for(&format!("/api/v1/jobs/{b}/log"), T, |l| {
        l["log"].to_string().contains("Pi is roughly")
    });
    assert!(log["total"].as_u64().unwrap() >= 1);

    // A driver the kubelet kills for its memory: the job's reason says so.
    let (status, o) = node.post(
        "/api/v1/batches",
        json!({"file": pi, "args": ["10"], "cluster": "east"}),
    );
    assert_eq!(status, 201, "{o}");
    let o = id(&o);
    let pod = format!("kindling-{o}-1");
    driver_pod(&fake, ns, &pod);
    fake.run(ns, &pod);
    node.wait_state(&format!("/api/v1/jobs/{o}"), &["running"], T);
    fake.terminate(ns, &pod, 137, "OOMKilled");
    let dead = node.wait_state(&format!("/api/v1/jobs/{o}"), &["dead", "success"], T);
    assert_eq!(dead["state"], "dead", "{dead}");
    let reason = dead["reason"].as_str().unwrap();
    assert!(reason.contains("OOMKilled"), "{reason}");

    // A cluster whose credentials the API server rejects fails its jobs with the cause.
    let (_, s) = node.post("/api/v1/batches", json!({"file": pi, "cluster": "stale"}));
    let dead = node.wait_state(&format!("/api/v1/jobs/{}", id(&s)), &["dead"], T);
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains("cluster stale") && reason.contains("401"),
        "{reason}"
    );
    drop(fake);
}
