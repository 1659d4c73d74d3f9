//! The local backend: each driver is a `spark-submit --master local[N]` child process in its
//! own process group, under a small `sh` wrapper that records the exit code in a file, so a
//! node that restarts while the driver runs can still learn how it ended. Output goes to a
//! file the node tails for the application id and serves through `/log`.
//!
//! A driver is found again by the `KINDLING_DRIVER=<cluster>:<name>` variable in its
//! environment.

mod from_cluster;
use async_trait::async_trait;
pub use from_cluster::from_cluster;
use kindling_backend::{
    is_app_id, is_local_path, BackendError, BackendEvent, ClusterBackend, DriverLog, Found,
    LaunchSpec, LogSlice, LogWindow, Result,
};
use kindling_events::spec::JobKind;
use kindling_events::{Attempt, JobId};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
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

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub spark_home: PathBuf,
    pub python: PathBuf,
    pub master: String,
    /// Where each driver's directory (log, exit code, event log) lives.
    pub drivers_dir: PathBuf,
    /// The Python runner for sessions (`kindling_runner.py`, with its proto beside it).
    pub runner: PathBuf,
    /// Spark conf applied to every job before the job's own.
    pub default_conf: BTreeMap<String, String>,
    /// The cluster's id: drivers are tagged `<cluster>:<driver name>`, so two clusters on one
    /// machine never mistake each other's drivers for their own.
    pub cluster_id: String,
}

pub struct LocalBackend {
    cfg: LocalConfig,
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

    fn dir(&self, driver_name: &str) -> PathBuf {
        self.cfg.drivers_dir.join(driver_name)
    }

    /// The `spark-submit` argument list for a job.
    pub fn submit_args(&self, l: &LaunchSpec) -> Vec<String> {
        let r = &l.spec.resources;
        let mut a: Vec<String> = vec![
            "--master".into(),
            self.cfg.master.clone(),
            "--deploy-mode".into(),
            "client".into(),
            "--name".into(),
            l.spec.name.clone().unwrap_or_else(|| l.driver_name.clone()),
        ];
        let mut opt = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v.clone());
            }
        };
        opt("--driver-memory", &r.driver_memory);
        opt("--executor-memory", &r.executor_memory);
        opt("--driver-cores", &r.driver_cores.map(|c| c.to_string()));
        opt("--executor-cores", &r.executor_cores.map(|c| c.to_string()));
        opt("--num-executors", &r.num_executors.map(|c| c.to_string()));
        opt("--queue", &r.queue);
        for (flag, list) in [
            ("--jars", &r.jars),
            ("--py-files", &r.py_files),
            ("--files", &r.files),
            ("--archives", &r.archives),
        ] {
            if !list.is_empty() {
                a.push(flag.into());
                a.push(list.join(","));
            }
        }
        let mut conf = self.cfg.default_conf.clone();
        let dir = self.dir(&l.driver_name);
        if !r.conf.contains_key("spark.eventLog.enabled") {
            // Spark names the event log after the application id: that is how a local
            // driver, which never prints its id, tells us what it is.
            conf.insert("spark.eventLog.enabled".into(), "true".into());
            conf.insert(
                "spark.eventLog.dir".into(),
                format!("file://{}", dir.join("eventlog").display()),
            );
        }
        conf.extend(r.conf.clone());
        for (k, v) in conf {
            if k.starts_with("kindling.") {
                continue;
            }
            a.push("--conf".into());
            a.push(format!("{k}={v}"));
        }
        match &l.spec.kind {
            JobKind::Batch(b) => {
                if let Some(c) = &b.class_name {
                    a.push("--class".into());
                    a.push(c.clone());
                }
                a.push(b.file.clone());
                a.extend(b.args.iter().cloned());
            }
            JobKind::Session(_) => a.push(self.cfg.runner.display().to_string()),
        }
        a
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

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    if r != 0 {
        return false;
    }
    // A zombie (exited, not yet reaped by its parent) counts as ended.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                != Some('Z')
        })
        .unwrap_or(false)
}

/// Whether any process of the group led by `pgid` still runs.
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 to a process group only checks that a member exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn read_exit_code(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("exit-code"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The process-group leader whose environment carries this driver's tag, if one runs.
fn find_process(tag: &str) -> Option<i32> {
    let needle = format!("KINDLING_DRIVER={tag}");
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            // SAFETY: getpgid has no memory effects.
            let pgid = unsafe { libc::getpgid(pid) };
            if pgid == pid && alive(pid) {
                return Some(pid);
            }
            found.get_or_insert(pgid);
        }
    }
    found.filter(|p| *p > 0 && alive(*p))
}

/// Reports the application id: the name of the event log Spark writes, or an id printed in
/// the driver's output (cluster managers print theirs).
async fn find_app_id(
    job: JobId,
    attempt: Attempt,
    dir: PathBuf,
    events: mpsc::UnboundedSender<BackendEvent>,
    done: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Some(app_id) = app_id_in(&dir) {
            let _ = events.send(BackendEvent::AppIdentified {
                job,
                attempt,
                app_id,
                spark_ui_url: None,
            });
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = done.cancelled() => {
                // One last look: a short job may end before the first poll.
                if let Some(app_id) = app_id_in(&dir) {
                    let _ = events.send(BackendEvent::AppIdentified { job, attempt, app_id, spark_ui_url: None });
                }
                return;
            }
        }
    }
}

fn app_id_in(dir: &Path) -> Option<String> {
    if let Ok(entries) = std::fs::read_dir(dir.join("eventlog")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            // `local-1732…` (single file) or `eventlog_v2_local-1732…` (rolling, Spark 4).
            let id = name.trim_end_matches(".inprogress");
            let id = id.strip_prefix("eventlog_v2_").unwrap_or(id);
            if is_app_id(id) {
                return Some(id.to_string());
            }
        }
    }
    let log = std::fs::read_to_string(dir.join("driver.log")).ok()?;
    log.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| is_app_id(w))
        .map(str::to_string)
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
        let spark_submit = self.cfg.spark_home.join("bin/spark-submit");
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("kindling-driver")
            .arg(&spark_submit)
            .args(self.submit_args(&l))
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

    fn backend() -> LocalBackend {
        let (tx, _rx) = mpsc::unbounded_channel();
        LocalBackend::new(
            LocalConfig {
                spark_home: "/spark".into(),
                python: "/venv/bin/python".into(),
                master: "local[3]".into(),
                drivers_dir: "/data/drivers".into(),
                runner: "/data/runner/kindling_runner.py".into(),
                default_conf: [("spark.ui.enabled".to_string(), "false".to_string())].into(),
                cluster_id: "c1".into(),
            },
            tx,
        )
    }

    #[test]
    fn request_fields_map_to_spark_submit() {
        let spec = JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: "/apps/job.jar".into(),
                class_name: Some("com.example.Main".into()),
                args: vec!["--day".into(), "1".into()],
            }),
            name: Some("nightly".into()),
            owner: None,
            proxy_user: Some("ann".into()),
            resources: SparkResources {
                driver_memory: Some("2g".into()),
                driver_cores: Some(2),
                executor_memory: Some("4g".into()),
                executor_cores: Some(3),
                num_executors: Some(5),
                queue: Some("etl".into()),
                jars: vec!["/a.jar".into(), "/b.jar".into()],
                py_files: vec!["/deps.zip".into()],
                files: vec!["/conf.yml".into()],
                archives: vec!["/env.tgz#env".into()],
                conf: [
                    ("spark.ui.enabled".to_string(), "true".to_string()),
                    ("kindling.cluster".to_string(), "default".to_string()),
                ]
                .into(),
            },
        };
        let args = backend().submit_args(&LaunchSpec {
            job: JobId(7),
            attempt: Attempt(1),
            driver_name: "kindling-7-1".into(),
            spec,
            session: None,
        });
        let joined = args.join(" ");
        for expected in [
            "--master local[3] --deploy-mode client --name nightly",
            "--driver-memory 2g",
            "--executor-memory 4g",
            "--driver-cores 2",
            "--executor-cores 3",
            "--num-executors 5",
            "--queue etl",
            "--jars /a.jar,/b.jar",
            "--py-files /deps.zip",
            "--files /conf.yml",
            "--archives /env.tgz#env",
            "--conf spark.eventLog.dir=file:///data/drivers/kindling-7-1/eventlog",
            "--class com.example.Main /apps/job.jar --day 1",
        ] {
            assert!(
                joined.contains(expected),
                "{expected:?} missing from {joined}"
            );
        }
        // The job's conf wins over the node's default; Kindling's own keys stay out of Spark.
        assert!(joined.contains("--conf spark.ui.enabled=true"));
        assert!(!joined.contains("spark.ui.enabled=false"));
        assert!(!joined.contains("kindling.cluster"));
        assert!(
            joined.ends_with("/apps/job.jar --day 1"),
            "application args come last"
        );
    }

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
