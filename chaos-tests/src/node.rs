//! Starting a node process for a benchmark, and reading its memory.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct BenchNode {
    pub child: Child,
    pub base: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl BenchNode {
    /// The node's `/api/v1/health` answer.
    pub async fn health(&self, http: &reqwest::Client) -> Result<serde_json::Value> {
        Ok(http
            .get(format!("{}/api/v1/health", self.base))
            .send()
            .await?
            .json()
            .await?)
    }
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The project venv's Spark.
pub fn spark_home() -> Result<PathBuf> {
    let venv = std::env::var_os("KINDLING_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/kindling/venv")
        });
    std::fs::read_dir(venv.join("lib"))
        .context("no project venv: run ops/dev/install-spark")?
        .flatten()
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-submit").exists())
        .context("pyspark is not installed in the project venv")
}

/// A Spark home whose `spark-submit` just waits: for measuring the node, not Spark.
pub fn idle_spark_home(dir: &Path) -> Result<PathBuf> {
    let home = dir.join("idle-spark");
    std::fs::create_dir_all(home.join("bin"))?;
    let path = home.join("bin/spark-submit");
    std::fs::write(&path, "#!/bin/sh\nexec sleep 3600\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(home)
}

pub fn start(kindling: &Path, data: &Path, spark_home: &Path, extra: &[&str]) -> Result<BenchNode> {
    if !kindling.exists() {
        bail!(
            "{} not found: cargo build --release -p kindling-node",
            kindling.display()
        );
    }
    let mut child = Command::new(kindling)
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--driver-listen", "127.0.0.1:0"])
        .arg("--spark-home")
        .arg(spark_home)
        .args(extra)
        .env("KINDLING_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line)?;
    let ready: serde_json::Value = serde_json::from_str(&line).context("no ready line")?;
    Ok(BenchNode {
        child,
        base: format!("http://{}", ready["http"].as_str().unwrap_or_default()),
        _stdout: out,
    })
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

pub async fn idle_rss(kindling: &Path, idle_secs: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = start(kindling, &dir.path().join("data"), &spark_home()?, &[])?;
    let http = reqwest::Client::new();
    let health = node.health(&http).await?;
    anyhow::ensure!(health["status"] == "ok", "node not healthy: {health}");
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let kib = rss_kib(node.child.id())?;
    println!(
        "idle node resident memory after {idle_secs} s: {:.1} MB ({kib} KiB)",
        kib as f64 / 1024.0
    );
    Ok(())
}
