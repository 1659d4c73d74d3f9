//! `ops/dev/cluster` driven by a test: the real script starts the real broker (tansu), the
//! MongoDB wire server and N nodes of this build on a port range of the test's own, in a
//! directory of the test's own; `stop`, `kill` and `start` act on one node. Drivers are the
//! real Python runner with a stand-in pyspark (no Spark). Dropping it runs `down`.

use super::cluster::runner_only_spark_home;
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct DevCluster {
    pub dir: tempfile::TempDir,
    pub base: u16,
    spark_home: PathBuf,
    http: reqwest::blocking::Client,
}

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl DevCluster {
    /// `ops/dev/cluster up n`.
    pub fn up(n: usize) -> DevCluster {
        let dir = tempfile::tempdir().unwrap();
        let spark_home = runner_only_spark_home(dir.path());
        let cluster = DevCluster {
            base: free_base(),
            spark_home,
            dir,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        cluster.run(&["up", &n.to_string()]);
        cluster
    }

    /// Runs `ops/dev/cluster args`, which must succeed; returns its output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new(root().join("ops/dev/cluster"))
            .args(args)
            .env("KINDLING_BIN", env!("CARGO_BIN_EXE_kindling"))
            .env("KINDLING_CLUSTER_DIR", self.dir.path().join("cluster"))
            .env("KINDLING_CLUSTER_PORT", self.base.to_string())
            .env("KINDLING_SPARK_HOME", &self.spark_home)
            .env("KINDLING_LOG", "info")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ops/dev/cluster {args:?}: {text}");
        text
    }

    /// The HTTP address (`host:port`) of node `id`.
    pub fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.base + id as u16)
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{path}", self.addr(id))
    }

    pub fn get(&self, id: u64, path: &str) -> Result<(u16, Value), String> {
        let r = self
            .http
            .get(self.url(id, path))
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.json().unwrap_or(Value::Null)))
    }

    pub fn post(&self, id: u64, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let r = self
            .http
            .post(self.url(id, path))
            .json(body)
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.json().unwrap_or(Value::Null)))
    }

    /// The leader the members agree on, once every one of `ids` names the same.
    pub fn leader(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let named: Vec<Option<u64>> = ids
                .iter()
                .map(|id| {
                    self.get(*id, "/api/v1/ready")
                        .ok()
                        .and_then(|(_, b)| b["leader"].as_u64())
                })
                .collect();
            if let Some(Some(l)) = named.first() {
                if named.iter().all(|n| *n == Some(*l)) {
                    return *l;
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {named:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("ops/dev/cluster"))
            .arg("down")
            .env("KINDLING_CLUSTER_DIR", self.dir.path().join("cluster"))
            .env("KINDLING_CLUSTER_PORT", self.base.to_string())
            .output();
    }
}

/// A base port whose range (base+1..=base+9, +101.., +201.., +300, +301) is free now.
fn free_base() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    for i in 0..200u64 {
        let base = 20_000 + ((seed + i * 7919) % 400) as u16 * 100;
        let ports = (1..=9)
            .flat_map(|k| [base + k, base + 100 + k, base + 200 + k])
            .chain([base + 300, base + 301]);
        let listeners: Option<Vec<TcpListener>> = ports
            .map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if listeners.is_some() {
            return base;
        }
    }
    panic!("no free port range for ops/dev/cluster");
}
