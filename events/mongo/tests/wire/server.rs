//! A real nx-27017 wire-protocol server for one test: started on a free port with its own data
//! directory, ready once it answers a ping, killed when the guard drops.

use mongodb::bson::doc;
use mongodb::Client;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first ping (INFRA: 1-3 s on a quiet machine).
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct NxServer {
    child: Option<Child>,
    port: u16,
    data: PathBuf,
    log: PathBuf,
}

/// The nx-27017 binary: `KINDLING_NX27017`, else the venv `ops/dev/install-mongo` makes.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KINDLING_NX27017") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("KINDLING_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/kindling")))
        .expect("neither KINDLING_CACHE nor HOME is set");
    cache.join("mongo/bin/nx-27017")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl NxServer {
    /// Starts a server on a fresh data directory inside `dir`.
    pub async fn start(dir: &Path) -> NxServer {
        let mut s = NxServer {
            child: None,
            port: 0,
            data: dir.join("data"),
            log: dir.join("nx-27017.log"),
        };
        std::fs::create_dir_all(&s.data).expect("create the data directory");
        s.restart().await;
        s
    }

    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=20000",
            self.port
        )
    }

    /// Kills the server at once (no shutdown: a crash as far as its storage can tell).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory (and a new port), killing it first
    /// if it runs.
    pub async fn restart(&mut self) {
        self.kill();
        let bin = binary();
        assert!(
            bin.exists(),
            "nx-27017 not found at {}: run ops/dev/install-mongo (or set KINDLING_NX27017)",
            bin.display()
        );
        self.port = free_port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server's log");
        let child = Command::new(&bin)
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--host", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--log-file")
            .arg(&self.log)
            .arg("--pid-file")
            .arg(self.data.with_extension("pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        let uri = format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=250&connectTimeoutMS=250",
            self.port
        );
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("nx-27017 exited with {status}: {}", self.log_tail());
            }
            if let Ok(client) = Client::with_uri_str(&uri).await {
                let ping = client
                    .database("admin")
                    .run_command(doc! { "ping": 1 })
                    .await;
                if ping.is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nx-27017 did not answer a ping within {READY_WITHIN:?}: {}",
                self.log_tail()
            );
            // The poll interval; the ping's own timeout bounds each try.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NxServer {
    fn drop(&mut self) {
        self.kill();
    }
}
