//! A real Prometheus server (Debian's package, installed by `ops/dev/install-prometheus`) on
//! a free port with a configuration of the test's own, and `promtool`. Queries go through
//! its HTTP API; dropping it kills the server.

use super::free_addr;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

pub struct Prometheus {
    child: Child,
    pub addr: String,
    http: reqwest::blocking::Client,
}

impl Prometheus {
    /// Starts Prometheus on `config` (a prometheus.yml), its data in `dir`.
    pub fn start(config: &Path, dir: &Path) -> Prometheus {
        let addr = free_addr();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus runs (ops/dev/install-prometheus installs it)");
        let p = Prometheus {
            child,
            addr,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p
            .http
            .get(format!("http://{}/-/ready", p.addr))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "prometheus not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// The result of an instant query, or Prometheus's error.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let body: Value = self
            .http
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", expr)])
            .send()
            .map_err(|e| e.to_string())?
            .json()
            .map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The alerts firing now, as (alertname, instance).
    pub fn firing(&self) -> Vec<(String, String)> {
        let body: Value = self
            .http
            .get(format!("http://{}/api/v1/alerts", self.addr))
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        body["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let label = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
                (label("alertname"), label("instance"))
            })
            .collect()
    }

    /// Polls `probe` until it holds, for at most `timeout`; says what it saw last if not.
    pub fn until<T: std::fmt::Debug>(
        &self,
        what: &str,
        timeout: Duration,
        probe: impl Fn(&Prometheus) -> (bool, T),
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let (done, seen) = probe(self);
            if done {
                return seen;
            }
            assert!(Instant::now() < deadline, "{what}: last seen {seen:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs promtool with `args` (and `stdin`), returning (success, stdout + stderr).
pub fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(PROMTOOL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (ops/dev/install-prometheus installs it)");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
