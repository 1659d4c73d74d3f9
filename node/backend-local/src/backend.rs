//! The backend itself: the drivers this node watches, by process group, and the
//! `ClusterBackend` operations (launch under the exit-code wrapper, find, kill, log).

use crate::app_id::find_app_id;
use crate::process::{alive, find_process, group_alive, read_exit_code};
use crate::submit::PROPERTIES_FILE;
use crate::LocalConfig;
use async_trait::async_trait;
use kindling_backend::{
    is_local_path, BackendError, BackendEvent, ClusterBackend, DriverLog, Found, LaunchSpec,
    LogSlice, LogWindow, Result,
};
use kindling_events::spec::JobKind;
use kindling_events::{Attempt, JobId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs the driver command, then writes its exit status where the node will look. A kill
/// signals the whole process group: the wrapper outlives the SIGTERM (its trap runs only once
/// the driver has exited) so that a killed driver's status (143 from a JVM) is recorded too.
const WRAPPER: &str =
    r#"trap : TERM; "$@"; code=$?; echo "$code" > "$KINDLING_EXIT_FILE"; exit "$code""#;

pub struct LocalBackend {
    pub(crate) cfg: LocalConfig,
    events: mpsc::UnboundedSender<BackendEvent>,
    /// Process-group leaders of the drivers this node watches, by driver name.
    pids: Arc<Mutex<HashMap<String, i32>>>,
}

impl LocalBackend {
    pub fn new(cfg: LocalConfig, events: mpsc::UnboundedSender<BackendEvent>) -> Self {
        LocalBackend {
            cfg,
            events,
            pids: Arc::default(),
        }
    }

    fn tag(&self, driver_name: &str) -> String {
        format!("{}:{driver_name}", self.cfg.cluster_id)
    }

    pub(crate) fn dir(&self, driver_name: &str) -> PathBuf {
        self.cfg.drivers_dir.join(driver_name)
    }

    fn watch(
        &self,
        job: JobId,
        attempt: Attempt,
        name: &str,
        pid: i32,
        child: Option<tokio::process::Child>,
    ) {
        self.pids.lock().insert(name.to_string(), pid);
        let events = self.events.clone();
        let pids = self.pids.clone();
        let dir = self.dir(name);
        let name = name.to_string();
        let done = tokio_util::sync::CancellationToken::new();
        tokio::spawn(find_app_id(
            job,
            attempt,
            dir.clone(),
            events.clone(),
            done.clone(),
        ));
        tokio::spawn(async move {
            let exit_code = match child {
                Some(mut c) => c.wait().await.ok().and_then(|s| s.code()),
                None => {
                    while alive(pid) {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    read_exit_code(&dir)
                }
            };
            // The driver has ended only when its whole process group has: the JVM and
            // Python workers may outlive the wrapper by a moment.
            while group_alive(pid) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done.cancel();
            pids.lock().remove(&name);
            let _ = events.send(BackendEvent::Exited {
                job,
                attempt,
                exit_code,
                reason: None,
            });
        });
    }
}

#[async_trait]
impl ClusterBackend for LocalBackend {
    async fn launch(&self, l: LaunchSpec) -> Result<String> {
        if let Some(pid) = self.pids.lock().get(&l.driver_name) {
            // Re-issued launch of a driver this node watches already: a second watch would
            // report its end twice.
            return Ok(format!("local:{pid}"));
        }
        if let Some(pid) = find_process(&self.tag(&l.driver_name)) {
            // Re-issued launch: the driver exists already.
            self.watch(l.job, l.attempt, &l.driver_name, pid, None);
            return Ok(format!("local:{pid}"));
        }
        if let Some(exit_code) = read_exit_code(&self.dir(&l.driver_name)) {
            // Re-issued launch of a driver that ran and ended already (its launch was in
            // flight when another leader looked for it): it is not started again; its end is
            // reported, as a watch of it would have.
            let _ = self.events.send(BackendEvent::Exited {
                job: l.job,
                attempt: l.attempt,
                exit_code: Some(exit_code),
                reason: None,
            });
            return Ok(format!("local:ended:{}", l.driver_name));
        }
        if let JobKind::Batch(b) = &l.spec.kind {
            if is_local_path(&b.file) && !Path::new(local_path(&b.file)).exists() {
                return Err(BackendError::LaunchFailed(format!(
                    "file {} does not exist on this node",
                    b.file
                )));
            }
        }
        let dir = self.dir(&l.driver_name);
        std::fs::create_dir_all(dir.join("eventlog"))
            .map_err(|e| BackendError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("driver.log"))
            .map_err(|e| BackendError::Io(format!("cannot open the driver log: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| BackendError::Io(e.to_string()))?;
        let (args, properties) = self.submit_args(&l);
        if let Some(text) = properties {
            let path = dir.join(PROPERTIES_FILE);
            kindling_backend::spark_properties::write_private(&path, &text)
                .map_err(|e| BackendError::Io(format!("cannot write {}: {e}", path.display())))?;
        }
        let spark_submit = self.cfg.spark_home.join("bin/spark-submit");
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("kindling-driver")
            .arg(&spark_submit)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0)
            .env("SPARK_HOME", &self.cfg.spark_home)
            .env("PYSPARK_PYTHON", &self.cfg.python)
            .env("PYSPARK_DRIVER_PYTHON", &self.cfg.python)
            .env("KINDLING_DRIVER", self.tag(&l.driver_name))
            .env("KINDLING_EXIT_FILE", dir.join("exit-code"))
            .env("KINDLING_JOB_ID", l.job.0.to_string())
            .env("KINDLING_ATTEMPT", l.attempt.0.to_string());
        if let Some(link) = &l.session {
            cmd.envs(link.route_env())
                .env("KINDLING_SECRET", &link.secret);
            if let JobKind::Session(s) = &l.spec.kind {
                cmd.env("KINDLING_SESSION_KIND", s.kind.as_str());
            }
        }
        let child = cmd.spawn().map_err(|e| {
            BackendError::LaunchFailed(format!("cannot start {}: {e}", spark_submit.display()))
        })?;
        let pid = child.id().map(|p| p as i32).unwrap_or_default();
        tracing::info!(driver = %l.driver_name, pid, "driver started");
        self.watch(l.job, l.attempt, &l.driver_name, pid, Some(child));
        Ok(format!("local:{pid}"))
    }

    async fn find(&self, job: JobId, attempt: Attempt, driver_name: &str) -> Result<Found> {
        if let Some(pid) = self.pids.lock().get(driver_name) {
            return Ok(Found::Running {
                driver_id: format!("local:{pid}"),
            });
        }
        if let Some(pid) = find_process(&self.tag(driver_name)) {
            self.watch(job, attempt, driver_name, pid, None);
            return Ok(Found::Running {
                driver_id: format!("local:{pid}"),
            });
        }
        let dir = self.dir(driver_name);
        if !dir.exists() {
            return Ok(Found::Never);
        }
        Ok(Found::Ended {
            exit_code: read_exit_code(&dir),
        })
    }

    async fn kill(&self, driver_name: &str) -> Result<()> {
        let pid = self
            .pids
            .lock()
            .get(driver_name)
            .copied()
            .or_else(|| find_process(&self.tag(driver_name)));
        let Some(pid) = pid else { return Ok(()) };
        // SAFETY: signals the driver's own process group. SIGCONT after SIGTERM so that a
        // stopped (paused) driver acts on it instead of holding it pending.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
            libc::kill(-pid, libc::SIGCONT);
        }
        tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if !group_alive(pid) {
                    return;
                }
            }
            // SAFETY: as above; the driver ignored SIGTERM for 10 s.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        });
        Ok(())
    }

    async fn log(&self, driver_name: &str, window: LogWindow) -> Result<LogSlice> {
        DriverLog::new()
            .file(self.dir(driver_name).join("driver.log"))
            .read_async(window)
            .await
            .map_err(|e| BackendError::Io(e.to_string()))
    }
}

fn local_path(file: &str) -> &str {
    file.strip_prefix("file://")
        .or_else(|| file.strip_prefix("local://"))
        .unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_events::spec::{BatchSpec, JobSpec, SparkResources};
    use std::collections::BTreeMap;

    /// A launch re-issued after its driver ran and ended starts nothing and reports the end.
    #[tokio::test]
    async fn a_relaunch_of_an_ended_driver_starts_nothing_and_reports_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("spark");
        std::fs::create_dir_all(home.join("bin")).unwrap();
        let starts = dir.path().join("starts");
        let submit = home.join("bin/spark-submit");
        std::fs::write(
            &submit,
            format!("#!/bin/sh\necho started >> {}\nexit 3\n", starts.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&submit, std::fs::Permissions::from_mode(0o755)).unwrap();
        let app = dir.path().join("app.py");
        std::fs::write(&app, "").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let b = LocalBackend::new(
            LocalConfig {
                spark_home: home,
                python: "python3".into(),
                master: "local[1]".into(),
                drivers_dir: dir.path().join("drivers"),
                runner: dir.path().join("runner.py"),
                default_conf: BTreeMap::new(),
                cluster_id: format!("test-{}", std::process::id()),
            },
            tx,
        );
        let launch = LaunchSpec {
            job: JobId(5),
            attempt: Attempt(1),
            driver_name: "kindling-5-1".into(),
            spec: JobSpec {
                kind: JobKind::Batch(BatchSpec {
                    file: app.display().to_string(),
                    class_name: None,
                    args: vec![],
                }),
                name: None,
                owner: None,
                proxy_user: None,
                resources: SparkResources::default(),
            },
            session: None,
        };
        let exited = |e: Option<BackendEvent>| match e {
            Some(BackendEvent::Exited { exit_code, .. }) => exit_code,
            other => panic!("expected an exit, got {other:?}"),
        };
        b.launch(launch.clone()).await.unwrap();
        assert_eq!(exited(rx.recv().await), Some(3));
        b.launch(launch).await.unwrap();
        assert_eq!(exited(rx.recv().await), Some(3));
        let started = std::fs::read_to_string(&starts).unwrap();
        assert_eq!(started.lines().count(), 1, "the driver ran once");
    }
}
