//! A cluster of `kindling` processes for failover tests: members on fixed Raft addresses (so
//! one can be killed and started again), waits on what `GET /api/v1/cluster` shows, a job's
//! events, and a Spark home that runs the session runner without Spark.

use crate::common::{free_addr, Node};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: PathBuf,
    pub spark_home: PathBuf,
    /// Flags every member gets (storage, driver route, drivers directory, ...).
    pub flags: Vec<String>,
}

impl Cluster {
    /// Starts member `id`: the first bootstraps, the others join it. Returns the member and
    /// its Raft address.
    pub fn start(&self, id: u64, join: Option<&str>) -> (Node, String) {
        self.start_with(id, join, &[])
    }

    /// `start`, with flags of this member only (e.g. its own projection database).
    pub fn start_with(&self, id: u64, join: Option<&str>, own: &[String]) -> (Node, String) {
        let raft = free_addr();
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id.to_string(),
            "--raft-listen".into(),
            raft.clone(),
        ];
        args.extend(self.flags.iter().cloned());
        args.extend(own.iter().cloned());
        if let Some(j) = join {
            args.push("--join".into());
            args.push(j.into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = Node::start(&self.dir.join(format!("node{id}")), &self.spark_home, &args);
        (node, raft)
    }
}

pub fn cluster_view(node: &Node) -> Value {
    node.get("/api/v1/cluster").1
}

/// Waits until `nodes` agree on a leader among `voters` voters and that leader schedules;
/// returns its id.
pub fn wait_for_leader(nodes: &[&Node], voters: usize, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let views: Vec<Value> = nodes.iter().map(|n| cluster_view(n)).collect();
        let leader = views[0]["leader_id"].as_u64();
        let agreed = views.iter().all(|v| {
            v["leader_id"].as_u64() == leader
                && v["members"]
                    .as_array()
                    .map(|m| m.iter().filter(|m| m["voter"] == true).count() == voters)
                    .unwrap_or(false)
        });
        let scheduling = views
            .iter()
            .any(|v| v["scheduling"] == true && v["node_id"].as_u64() == leader);
        if let (Some(l), true, true) = (leader, agreed, scheduling) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no agreed, scheduling leader: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn events(node: &Node, id: u64) -> Vec<Value> {
    node.get(&format!("/api/v1/jobs/{id}/events")).1["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// The statement ids of a job's `StatementCompleted` events, in log order.
pub fn completed(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["type"] == "StatementCompleted")
        .map(|e| e["data"]["statement"].as_u64().unwrap())
        .collect()
}

pub fn text(statement: &Value) -> String {
    statement["output"]["data"]["text/plain"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the file at `path` has a line containing `needle`; returns the file.
pub fn wait_for_line(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?} in {} within {timeout:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Spark home whose `spark-submit` runs the session runner (its last argument) with the
/// driver's Python and a stand-in `pyspark` whose SparkSession runs no Spark: for tests of
/// the node's side of sessions (routes, failover) where Spark itself is not what is checked.
/// The real runner, its Kafka and gRPC clients and its statement execution all run.
pub fn runner_only_spark_home(dir: &Path) -> PathBuf {
    let home = dir.join("runner-only-spark");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::create_dir_all(home.join("python/pyspark/sql")).unwrap();
    let submit = r#"#!/bin/sh
# Stand-in spark-submit: the session runner is the last argument.
for a; do last="$a"; done
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$here/python" exec "$PYSPARK_DRIVER_PYTHON" "$last"
"#;
    let path = home.join("bin/spark-submit");
    std::fs::write(&path, submit).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        home.join("python/pyspark/__init__.py"),
        "# Stand-in pyspark for tests: no Spark.\n",
    )
    .unwrap();
    let sql = r#"import os


class Row(tuple):
    pass


class DataFrame:
    pass


class _Context:
    def __init__(self):
        self.applicationId = f"local-runner-only-{os.getpid()}"
        self.uiWebUrl = None

    def setJobGroup(self, *args, **kwargs):
        pass

    def cancelJobGroup(self, *args):
        pass


class SparkSession:
    class _Builder:
        def appName(self, name):
            return self

        def getOrCreate(self):
            return SparkSession()

    builder = _Builder()

    def __init__(self):
        self.sparkContext = _Context()

    def stop(self):
        pass
"#;
    std::fs::write(home.join("python/pyspark/sql/__init__.py"), sql).unwrap();
    home
}
