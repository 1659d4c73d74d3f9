//! Test harness: runs the real `kindling` binary as a process on ports chosen by the OS,
//! talks to it over HTTP, and can kill -9 and restart it on the same data directory.
//! Waits poll observable state against a deadline; nothing sleeps to synchronise.

#![allow(dead_code)]

pub mod cluster;
pub mod dev_cluster;
pub mod gate;
pub mod prometheus;
pub mod sse;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    /// Kept open: the node's stdout must stay writable.
    _stdout: BufReader<std::process::ChildStdout>,
    pub data: PathBuf,
    pub base: String,
    http_addr: String,
    pub driver_addr: String,
    pub child: Child,
    pub extra: Vec<String>,
    pub spark_home: PathBuf,
    /// The limit of open files the node runs under, if the test set one.
    fd_limit: Option<u64>,
    http: reqwest::blocking::Client,
}

pub use kindling_testkit::spark::{fake_spark_home, program, real_spark_home};

impl Node {
    pub fn start(data: &Path, spark_home: &Path, extra: &[&str]) -> Node {
        Node::start_limited(data, spark_home, extra, None)
    }

    /// `start`, under a limit of `fd_limit` open files (soft and hard) if given.
    pub fn start_limited(
        data: &Path,
        spark_home: &Path,
        extra: &[&str],
        fd_limit: Option<u64>,
    ) -> Node {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, addrs, stdout) = spawn_at(
            data,
            spark_home,
            &extra,
            "127.0.0.1:0",
            "127.0.0.1:0",
            fd_limit,
        );
        let (base, driver) = addrs.split_once(' ').unwrap();
        Node {
            http_addr: base.trim_start_matches("http://").to_string(),
            driver_addr: driver.to_string(),
            base: base.to_string(),
            _stdout: stdout,
            data: data.to_path_buf(),
            child,
            extra,
            spark_home: spark_home.to_path_buf(),
            fd_limit,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
        }
    }

    /// This node, whose helpers (`get`, `post`, `wait_for`, ...) authenticate as `user`
    /// with HTTP Basic from now on.
    pub fn authenticating(mut self, user: &str, password: &str) -> Node {
        let probe = reqwest::blocking::Client::new()
            .get(self.url("/"))
            .basic_auth(user, Some(password))
            .build()
            .unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        let name = reqwest::header::AUTHORIZATION;
        headers.insert(name.clone(), probe.headers()[&name].clone());
        self.http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(90))
            .default_headers(headers)
            .build()
            .unwrap();
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string())
    }

    pub fn post_raw(&self, path: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Polls `GET path` until `done` holds for the body, or fails after `timeout`.
    pub fn wait_for(&self, path: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let (status, body) = self.get(path);
            if status == 200 && done(&body) {
                return body;
            }
            last = body;
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {timeout:?} waiting on {path}; last answer: {last}");
    }

    pub fn wait_state(&self, path: &str, states: &[&str], timeout: Duration) -> Value {
        self.wait_for(path, timeout, |b| {
            states.iter().any(|s| b["state"].as_str() == Some(s))
        })
    }

    pub fn log_end(&self) -> u64 {
        self.get("/api/v1/health").1["logEnd"].as_u64().unwrap()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the node again on the same data and the same addresses (drivers reconnect to
    /// the address they were given).
    pub fn restart(&mut self) {
        let (child, base, stdout) = spawn_at(
            &self.data,
            &self.spark_home,
            &self.extra,
            &self.http_addr,
            &self.driver_addr,
            self.fd_limit,
        );
        assert_eq!(
            base,
            format!("http://{} {}", self.http_addr, self.driver_addr)
        );
        self._stdout = stdout;
        self.child = child;
    }

    pub fn stop(&mut self) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
    }

    /// Process ids whose environment carries this node's tag for `driver`.
    pub fn driver_pids(&self, driver: &str) -> Vec<i32> {
        let cluster = std::fs::read_to_string(self.data.join("cluster.id")).unwrap();
        let needle = format!("KINDLING_DRIVER={}:{driver}", cluster.trim());
        let mut out = vec![];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(env) = std::fs::read(e.path().join("environ")) {
                if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    let zombie = stat
                        .rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                        .unwrap_or(true);
                    if !zombie {
                        out.push(pid);
                    }
                }
            }
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Stop every driver this node started, so tests leave no Spark behind.
        let drivers = self
            .extra
            .iter()
            .position(|a| a == "--drivers-dir")
            .and_then(|i| self.extra.get(i + 1))
            .map(PathBuf::from)
            .unwrap_or_else(|| self.data.join("drivers"));
        for e in std::fs::read_dir(drivers).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            for pid in self.driver_pids(&name) {
                // SAFETY: the driver's process group was created by the node for it.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

type Spawned = (Child, String, BufReader<std::process::ChildStdout>);

fn spawn_at(
    data: &Path,
    spark_home: &Path,
    extra: &[String],
    http: &str,
    driver: &str,
    fd_limit: Option<u64>,
) -> Spawned {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kindling"));
    if let Some(n) = fd_limit {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec, only setrlimit (async-signal-safe) runs.
        unsafe {
            command.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &lim) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
    }
    let mut child = command
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(http)
        .arg("--driver-listen")
        .arg(driver)
        .arg("--spark-home")
        .arg(spark_home)
        .args(extra)
        .env("KINDLING_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data.with_extension("node.log"))
                .unwrap(),
        ))
        .spawn()
        .expect("kindling starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    stdout.read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
        panic!(
            "kindling did not print its ready line; got {line:?}; see {}",
            data.with_extension("node.log").display()
        )
    });
    assert_eq!(ready["event"], "ready");
    let base = format!("http://{}", ready["http"].as_str().unwrap());
    let driver = ready["driver"].as_str().unwrap().to_string();
    (child, format!("{base} {driver}"), stdout)
}

/// A program of one of the project's Python venvs under `~/.cache/kindling` (the dev scripts
/// make them), or of the venv `var` names.
pub fn venv_program(var: &str, venv: &str, program: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/kindling")
                .join(venv)
        })
        .join("bin")
        .join(program)
}

/// A loopback address whose port was free a moment ago, for a process that must be started
/// again on the same address (a cluster member's Raft link).
pub fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// Everything a client can read about every job: for comparing a node with itself after a
/// restart or a rebuild.
pub fn snapshot(node: &Node) -> Value {
    let jobs = node.get("/api/v1/jobs?limit=1000").1;
    let mut out = vec![];
    for j in jobs["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /api/v1/jobs: {jobs}"))
    {
        let id = j["id"].as_u64().unwrap();
        out.push(json!({
            "job": j,
            "events": node.get(&format!("/api/v1/jobs/{id}/events")).1,
            "statements": node.get(&format!("/api/v1/jobs/{id}/statements")).1,
        }));
    }
    Value::Array(out)
}

pub fn spark_conf() -> Vec<&'static str> {
    vec![
        "--spark-conf",
        "spark.ui.enabled=false",
        "--spark-conf",
        "spark.sql.shuffle.partitions=2",
        "--spark-conf",
        "spark.driver.memory=512m",
    ]
}
