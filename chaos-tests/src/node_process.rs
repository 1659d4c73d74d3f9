//! One `kindling` node as a process: started inside its network namespace with the HA
//! contract's flags, waited for until it prints its ready line, killed with -9, paused and
//! continued. Also the check that a `kindling` binary has those flags at all, and the
//! clean-up of the drivers a run's nodes started.

use crate::netns::Netns;
use crate::topology::NodePorts;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The `kindling serve` flags the harness relies on.
pub const CLUSTER_FLAGS: [&str; 6] = [
    "--raft-listen",
    "--raft-advertise",
    "--join",
    "--drivers-dir",
    "--node-id",
    "--mongo-database",
];

/// Checks that `kindling serve --help` lists every flag of the cluster contract.
pub fn check_kindling(kindling: &Path) -> Result<()> {
    if !kindling.exists() {
        bail!(
            "{} does not exist: build it with `cargo build -p kindling-node` or pass --kindling",
            kindling.display()
        );
    }
    let out = Command::new(kindling)
        .args(["serve", "--help"])
        .output()
        .with_context(|| format!("cannot run {} serve --help", kindling.display()))?;
    let help =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let missing: Vec<&str> = CLUSTER_FLAGS
        .iter()
        .copied()
        .filter(|f| {
            !help.contains(&format!("{f} "))
                && !help.contains(&format!("{f}\n"))
                && !help.contains(&format!("{f}="))
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks the HA cluster flags {} (`kindling serve --help` does not list them): \
             the chaos harness needs the Raft-clustered node of issue 3",
            kindling.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

pub struct NodeProc {
    pub id: u64,
    pub ports: NodePorts,
    pub dir: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) child: Option<Child>,
    pub(crate) paused: bool,
    pub(crate) ns: Arc<Netns>,
}

impl NodeProc {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Starts the node and waits for its ready line (60 s at most).
    pub(crate) fn start(&mut self, kindling: &Path, log_filter: &str) -> Result<()> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        let mut cmd = Command::new(kindling);
        cmd.args(&self.args)
            .env("KINDLING_LOG", log_filter)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        self.ns.enter_on_spawn(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", kindling.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let out_path = self.dir.join("stdout.log");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining: the node's stdout must stay writable.
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(out_path)
                .ok();
            for line in lines.map_while(|l| l.ok()) {
                if let Some(f) = f.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        self.child = Some(child);
        self.paused = false;
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                // A node still alive is waiting for something (its log, when the broker is
                // down or slow): leave it to become ready, as a supervisor would. Invariant 7
                // measures when the cluster serves again.
                let alive = self
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
                if !alive {
                    self.kill9();
                }
                bail!(
                    "node {} printed no ready line within 60 s ({}); see {}:\n{}",
                    self.id,
                    if alive { "left running" } else { "it exited" },
                    self.log().display(),
                    tail(&self.log(), 15)
                );
            }
        };
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if ready["event"] != "ready" {
            self.kill9();
            bail!(
                "node {} printed {line:?} instead of its ready line; see {}",
                self.id,
                self.log().display()
            );
        }
        if ready["http"].as_str() != Some(&self.ports.http_addr().to_string()) {
            self.kill9();
            bail!(
                "node {} is ready on {} instead of {}",
                self.id,
                ready["http"],
                self.ports.http_addr()
            );
        }
        Ok(())
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    pub(crate) fn signal(&mut self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: signals our own child.
            unsafe { libc::kill(pid as i32, sig) };
        }
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kills every driver process group this run's nodes started: those whose
/// `KINDLING_EXIT_FILE` lies under this run's drivers directory.
pub fn kill_drivers(drivers_dir: &Path) {
    let prefix = format!("KINDLING_EXIT_FILE={}/", drivers_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env
            .split(|b| *b == 0)
            .any(|kv| kv.starts_with(prefix.as_bytes()))
        {
            // SAFETY: signals a driver of this run (its group, then itself).
            unsafe {
                let pgid = libc::getpgid(pid);
                if pgid > 1 {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_without_the_cluster_flags_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kindling");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'Usage: kindling serve [OPTIONS]'\necho '      --listen <LISTEN>'\necho '      --node-id <NODE_ID>'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_kindling(&fake).unwrap_err().to_string();
        assert!(e.contains("--raft-listen") && e.contains("issue 3"), "{e}");
        assert!(!e.contains("--node-id,"), "{e}");
        let e = check_kindling(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cargo build -p kindling-node"), "{e}");
    }

    #[test]
    fn a_binary_with_the_cluster_flags_passes() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kindling");
        let mut script = "#!/bin/sh\n".to_string();
        for f in CLUSTER_FLAGS {
            script += &format!("echo '      {f} <X>'\n");
        }
        std::fs::write(&fake, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_kindling(&fake).unwrap();
    }
}
