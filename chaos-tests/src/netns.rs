//! Network namespaces the harness creates for its nodes (we run as root). Each node lives in
//! its own namespace with only a loopback interface, so every connection it makes or accepts
//! goes through a proxy the harness owns: that is how a partition cuts exactly one link, in
//! both directions, including the node's links to the broker and the MongoDB server.
//!
//! A namespace has a worker thread that has entered it; sockets the harness binds or dials
//! "inside" a node's namespace are created on that thread (a socket belongs to the namespace
//! of the thread that created it) and then used from the async runtime as usual.
//!
//! Only namespaces named `kc<pid>-...` are ever created or removed, and only by the process
//! `<pid>` (or, for leftovers of a crashed run, when `<pid>` no longer exists).

use crate::proxy::Dial;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

pub struct Netns {
    pub name: String,
    file: File,
    worker: Mutex<mpsc::Sender<Job>>,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The prefix of every namespace this process creates.
pub fn prefix() -> String {
    format!("kc{}-", std::process::id())
}

impl Netns {
    /// Creates namespace `<prefix><suffix>` with its loopback up.
    pub fn create(suffix: &str) -> Result<Arc<Netns>> {
        let name = format!("{}{suffix}", prefix());
        ip(&["netns", "add", &name]).context(
            "cannot create a network namespace (the chaos harness needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN)",
        )?;
        let ns = (|| -> Result<Arc<Netns>> {
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            let file = File::open(format!("/run/netns/{name}"))
                .with_context(|| format!("cannot open /run/netns/{name}"))?;
            let fd = file.as_raw_fd();
            let (tx, rx) = mpsc::channel::<Job>();
            let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
            std::thread::Builder::new()
                .name(format!("netns-{name}"))
                .spawn(move || {
                    // SAFETY: setns on this thread only; `fd` outlives the thread's use of it
                    // (the file is closed after the sender, which ends this loop, is dropped).
                    let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
                    let _ = ready_tx.send(if r == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    });
                    if r != 0 {
                        return;
                    }
                    for job in rx {
                        job();
                    }
                })?;
            ready_rx
                .recv()
                .context("the namespace worker died")?
                .context("setns")?;
            Ok(Arc::new(Netns {
                name: name.clone(),
                file,
                worker: Mutex::new(tx),
            }))
        })();
        if ns.is_err() {
            let _ = ip(&["netns", "del", &name]);
        }
        ns
    }

    /// Runs `f` on the thread inside this namespace and returns its result.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        let (tx, rx) = mpsc::channel();
        self.worker
            .lock()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| io::Error::other("namespace worker gone"))?;
        rx.recv()
            .map_err(|_| io::Error::other("namespace worker gone"))
    }

    /// A listener bound inside this namespace.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        self.run(move || TcpListener::bind(addr))?
    }

    /// A connection made from inside this namespace (blocking; loopback connects are quick).
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        self.run(move || TcpStream::connect_timeout(&addr, timeout))?
    }

    /// A proxy dial function that connects from inside this namespace.
    pub fn dial(self: &Arc<Self>, addr: SocketAddr) -> Dial {
        let ns = self.clone();
        Arc::new(move || {
            let ns = ns.clone();
            Box::pin(async move {
                let s =
                    tokio::task::spawn_blocking(move || ns.connect(addr, Duration::from_secs(5)))
                        .await
                        .map_err(io::Error::other)??;
                s.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(s)
            })
        })
    }

    /// Makes `cmd`'s process start inside this namespace.
    pub fn enter_on_spawn(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let fd = self.file.as_raw_fd();
        // SAFETY: setns is async-signal-safe; `fd` is open in the parent until spawn returns
        // and, though close-on-exec, still open in the child before exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Removes namespaces left by harness processes that no longer run.
pub fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix("kc") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Whether this machine lets us create namespaces (root with the capabilities).
pub fn available() -> Result<()> {
    Netns::create("probe").map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root. A listener inside a namespace is invisible from outside; a proxy bound
    /// outside and dialing inside reaches it.
    #[tokio::test]
    async fn sockets_live_in_their_namespace() {
        let ns = Netns::create("t-sock").expect("network namespaces (run as root)");
        let inside = ns.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = inside.local_addr().unwrap();
        let accept = std::thread::spawn(move || inside.accept().map(|_| ()));
        // The same address from the root namespace is not this listener.
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
        let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = crate::proxy::Proxy::spawn("ns", outside, ns.dial(addr)).unwrap();
        let _c = tokio::net::TcpStream::connect(p.addr()).await.unwrap();
        tokio::task::spawn_blocking(move || accept.join().unwrap())
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_child_starts_inside() {
        let ns = Netns::create("t-child").expect("network namespaces (run as root)");
        let mut cmd = Command::new("ip");
        cmd.args(["-o", "link"]);
        ns.enter_on_spawn(&mut cmd);
        let out = cmd.output().unwrap();
        let links = String::from_utf8_lossy(&out.stdout);
        assert_eq!(links.lines().count(), 1, "only lo inside: {links}");
        let name = ns.name.clone();
        drop(ns);
        assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
    }
}
