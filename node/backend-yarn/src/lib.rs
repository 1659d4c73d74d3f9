//! The YARN backend: each driver attempt is one YARN application, submitted with
//! `spark-submit --master yarn --deploy-mode cluster` ([`command`], [`submit`]) with the cluster's
//! `HADOOP_CONF_DIR`, so the driver runs in YARN's ApplicationMaster container and not on the
//! Kindling node. Applications are tagged with Kindling's cluster id and the driver's name;
//! that is how a driver is found again (a re-issued launch, `find` after a restart).
//!
//! It owns the conversation with one YARN cluster: submissions, and the ResourceManager's REST
//! API ([`rm`], with HA failover) for finding applications by tag, following their state
//! ([`tracker`], mapped by [`state`]) and killing them; the driver's log is copied from its
//! log link once it ended ([`copy`], kept by [`logs`]). It keeps nothing else: what it must
//! find again after a restart it finds on the cluster. It never kills or adopts an application
//! without this Kindling cluster's tag.

mod from_cluster;
pub use from_cluster::from_cluster;
pub mod command;
pub mod config;
mod copy;
pub mod logs;
pub mod rm;
pub mod state;
pub mod submit;
mod tracker;

use async_trait::async_trait;
use kindling_backend::is_local_path;
use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, DriverLog, Found, LaunchSpec, LogSlice, LogWindow,
    Result,
};
// The configuration's vocabulary, for the cluster registry (and the tests) once wired.
#[allow(unused_imports)]
pub use config::{
    YarnAuth, YarnConfig, DEFAULT_LOG_WAIT, DEFAULT_POLL_INTERVAL, DEFAULT_SUBMIT_TIMEOUT,
};
use kindling_events::spec::JobKind;
use kindling_events::{Attempt, JobId};
use logs::LogStore;
use parking_lot::Mutex;
use rm::{App, Killed, Rm, RmError};
use state::AppPhase;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracker::Watched;

/// How many `spark-submit`s run at once for one cluster: each is a JVM (~0.4 GB) for the few
/// seconds it takes to upload the job's files and submit.
const MAX_SUBMITS: usize = 4;

struct Inner {
    cfg: YarnConfig,
    rm: Rm,
    /// For log pages: follows the NodeManager's redirect to the log server.
    web: reqwest::Client,
    events: mpsc::UnboundedSender<BackendEvent>,
    logs: LogStore,
    /// The drivers the scheduler waits on, by driver name.
    watched: Mutex<HashMap<String, Watched>>,
    submits: Semaphore,
    /// One launch at a time per driver on this node: a launch re-issued while the first is
    /// still submitting waits for it, then finds its application.
    launching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Wakes the tracker before its next poll (a kill went through).
    wake: Notify,
    shutdown: CancellationToken,
}

/// One YARN cluster's backend.
pub struct YarnBackend {
    inner: Arc<Inner>,
}

impl YarnBackend {
    /// Checks the configuration and starts the tracker, which reports watched drivers until
    /// `shutdown`. Fails only on local problems (see [`YarnConfig::validate`]); a
    /// ResourceManager that does not answer makes launches fail, and is retried by the tracker.
    pub fn new(
        cfg: YarnConfig,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        cfg.validate().map_err(BackendError::Io)?;
        let web = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .timeout(std::time::Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| BackendError::Io(format!("cluster {}: {e}", cfg.name)))?;
        let inner = Arc::new(Inner {
            rm: Rm::new(cfg.rm_urls(), cfg.auth.user().to_string()),
            web,
            events,
            logs: LogStore::new(cfg.logs_dir.join(&cfg.name)),
            watched: Mutex::default(),
            submits: Semaphore::new(MAX_SUBMITS),
            launching: Mutex::default(),
            wake: Notify::new(),
            shutdown,
            cfg,
        });
        tokio::spawn(tracker::run(inner.clone()));
        Ok(YarnBackend { inner })
    }

    // For tests/yarn.rs.
    #[allow(dead_code)]
    pub fn config(&self) -> &YarnConfig {
        &self.inner.cfg
    }

    /// How the driver ended, as kept on this node (`None` while it runs, or if this node
    /// never saw it end): `kindling: YARN application <id> ended: <state>/<finalStatus> …`.
    /// Read by tests; the job's reason comes from the kept log until `BackendEvent::Exited`
    /// carries one.
    #[allow(dead_code)]
    pub fn end_of(&self, driver_name: &str) -> Option<String> {
        self.inner.logs.read_end(driver_name)
    }
}

impl Inner {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn io(&self, what: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Io(format!("cluster {}: {what}: {e}", self.name()))
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Watched>> {
        self.watched.lock()
    }

    /// The application of the driver called `name` on this cluster: the first submitted, if
    /// launches raced.
    async fn find_app(&self, name: &str) -> std::result::Result<Option<App>, RmError> {
        let (cluster, driver) = (self.cfg.cluster_tag(), self.cfg.driver_tag(name));
        let apps = self.rm.apps_tagged(&driver).await?;
        let ours = apps
            .iter()
            .filter(|a| state::is_driver_app(a, &cluster, &driver));
        Ok(state::first_submitted(ours).cloned())
    }

    /// The application id of a driver: the watched one, else the one the cluster holds.
    async fn app_id_of(&self, name: &str) -> Result<Option<String>> {
        if let Some(w) = self.lock().get(name) {
            return Ok(Some(w.app_id.clone()));
        }
        let app = self
            .find_app(name)
            .await
            .map_err(|e| self.io(&format!("cannot look for the application of {name}"), e))?;
        Ok(app.map(|a| a.id))
    }

    /// After a submission: if another launch of the same driver submitted too, the first
    /// application the ResourceManager accepted is the driver, and ours goes.
    async fn settle(&self, name: &str, ours: &str) -> String {
        let first = match self.find_app(name).await {
            Ok(Some(app)) => app.id,
            Ok(None) => return ours.to_string(),
            Err(e) => {
                tracing::warn!(cluster = %self.name(), driver = %name, error = %e,
                    "cannot check for a concurrent submission of the same driver");
                return ours.to_string();
            }
        };
        if first != ours {
            tracing::warn!(cluster = %self.name(), driver = %name, kept = %first, killed = %ours,
                "the driver was submitted twice; killing the later application");
            if let Err(e) = self.rm.kill(ours).await {
                tracing::warn!(cluster = %self.name(), app = %ours, error = %e,
                    "cannot kill the duplicate application");
            }
        }
        first
    }

    async fn submit(&self, l: &LaunchSpec) -> Result<String> {
        let name = &l.driver_name;
        let cluster = self.name();
        if let JobKind::Batch(b) = &l.spec.kind {
            let path = b.file.trim_start_matches("file://");
            if is_local_path(&b.file) && !b.file.starts_with("local:") && !Path::new(path).exists()
            {
                return Err(BackendError::LaunchFailed(format!(
                    "cluster {cluster}: file {} does not exist on this node (spark-submit uploads \
                     local files from the Kindling node; use an hdfs:// path otherwise)",
                    b.file
                )));
            }
        }
        let _permit = self
            .submits
            .acquire()
            .await
            .map_err(|e| self.io("submission", e))?;
        // Files of this run only: another launch of the same driver may be submitting too.
        let run: u64 = rand::random();
        let properties = self.logs.properties_path(name, run);
        let defaults = kindling_backend::spark_properties::spark_defaults(&self.cfg.spark_home);
        let sub = command::submission(&self.cfg, l, defaults.as_deref(), &properties);
        tracing::info!(cluster = %cluster, driver = %name, "running spark-submit");
        let out = submit::run(
            &self.cfg.spark_home,
            &sub,
            &properties,
            &self.logs.submit_run_path(name, run),
            self.cfg.submit_timeout,
        )
        .await
        .map_err(|e| BackendError::LaunchFailed(format!("cluster {cluster}: {e}")));
        let log = self.logs.keep_submit(name, run);
        let out = out?;

        if let Some(app_id) = submit::submitted_app(&out.output) {
            if out.exit_code != Some(0) {
                // Fire-and-forget mode fails when the first report says FAILED or KILLED:
                // the application exists all the same, and its end is reported as usual.
                tracing::warn!(cluster = %cluster, driver = %name, %app_id, exit_code = ?out.exit_code,
                    "spark-submit failed after YARN accepted the application");
            }
            tracing::info!(cluster = %cluster, driver = %name, %app_id, "application submitted");
            return Ok(self.settle(name, &app_id).await);
        }
        let how = if out.timed_out {
            format!(
                "did not finish within {:?} and was stopped",
                self.cfg.submit_timeout
            )
        } else {
            match out.exit_code {
                Some(code) => format!("exited with code {code}"),
                None => "was killed".into(),
            }
        };
        // It printed no application id; whether YARN got one anyway, the tag tells.
        match self.find_app(name).await {
            // YARN took the application in and refused it at once (an unknown queue, a
            // queue's limits): it ended without ever getting a container, so the driver
            // certainly never ran.
            Ok(Some(app))
                if matches!(state::phase_of(&app), AppPhase::Ended(_))
                    && app.am_container_logs.is_none() =>
            {
                let why = app.diagnostics.lines().next().unwrap_or("no diagnostics");
                Err(BackendError::LaunchFailed(format!(
                    "cluster {cluster}: YARN rejected application {} ({}): {why} (spark-submit's \
                     output is in {})",
                    app.id,
                    app.state,
                    log.display()
                )))
            }
            Ok(Some(app)) => {
                tracing::warn!(cluster = %cluster, driver = %name, app_id = %app.id,
                    "spark-submit {how} without printing the application id, which exists");
                Ok(app.id)
            }
            Ok(None) if !out.timed_out => Err(BackendError::LaunchFailed(format!(
                "cluster {cluster}: spark-submit {how} before YARN accepted an application: {} \
                 (its output is in {})",
                submit::failure_summary(&out.output),
                log.display()
            ))),
            Ok(None) => Err(self.io(
                "launch",
                format!(
                    "spark-submit {how} and YARN has no application of {name} yet; it may still \
                     appear"
                ),
            )),
            Err(e) => Err(self.io(
                "launch",
                format!(
                    "spark-submit {how} without printing an application id, and whether YARN \
                     has one cannot be told: {e}"
                ),
            )),
        }
    }
}

impl Inner {
    /// The lock of one driver's launches on this node.
    fn launch_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut launching = self.launching.lock();
        launching.entry(name.to_string()).or_default().clone()
    }

    fn launch_done(&self, name: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut launching = self.launching.lock();
        // Only the map and this launch hold it: nobody waits.
        if Arc::strong_count(&lock) == 2 {
            launching.remove(name);
        }
    }

    async fn launch(&self, l: &LaunchSpec) -> Result<String> {
        let name = &l.driver_name;
        // A re-issued launch finds the application that exists instead of submitting again.
        let existing = self.find_app(name).await.map_err(|e| {
            BackendError::LaunchFailed(format!(
                "cluster {}: cannot look for an existing application of {name} before \
                 submitting it: {e}",
                self.name()
            ))
        })?;
        let app_id = match existing {
            Some(app) => {
                tracing::info!(cluster = %self.name(), driver = %name, app_id = %app.id,
                    "the driver's application exists already");
                app.id
            }
            None => self.submit(l).await?,
        };
        self.watch(l.job, l.attempt, name, &app_id);
        Ok(app_id)
    }
}

#[async_trait]
impl ClusterBackend for YarnBackend {
    async fn launch(&self, l: LaunchSpec) -> Result<String> {
        let inner = &self.inner;
        let lock = inner.launch_lock(&l.driver_name);
        let launched = {
            let _one = lock.lock().await;
            inner.launch(&l).await
        };
        inner.launch_done(&l.driver_name, lock);
        launched
    }
    async fn find(&self, job: JobId, attempt: Attempt, driver_name: &str) -> Result<Found> {
        let inner = &self.inner;
        if let Some(w) = inner.lock().get(driver_name) {
            return Ok(Found::Running {
                driver_id: w.app_id.clone(),
            });
        }
        let app = inner.find_app(driver_name).await.map_err(|e| {
            inner.io(
                &format!("cannot look for the application of {driver_name}"),
                e,
            )
        })?;
        let Some(app) = app else {
            return Ok(Found::Never);
        };
        match state::phase_of(&app) {
            AppPhase::Ended(end) => {
                let exit_code = end.exit_code;
                inner.keep_end_later(driver_name, app, end);
                Ok(Found::Ended { exit_code })
            }
            AppPhase::Pending | AppPhase::Running => {
                inner.watch(job, attempt, driver_name, &app.id);
                Ok(Found::Running { driver_id: app.id })
            }
        }
    }

    async fn kill(&self, driver_name: &str) -> Result<()> {
        let inner = &self.inner;
        let Some(app_id) = inner.app_id_of(driver_name).await? else {
            return Ok(());
        };
        match inner.rm.kill(&app_id).await {
            Ok(Killed::Done { state }) => {
                tracing::info!(cluster = %inner.name(), driver = %driver_name, %app_id, %state,
                    "application killed (or ended before)");
                inner.wake.notify_one();
                Ok(())
            }
            Ok(Killed::Accepted) => {
                tracing::info!(cluster = %inner.name(), driver = %driver_name, %app_id,
                    "the ResourceManager is killing the application");
                inner.confirm_kill(&app_id);
                Ok(())
            }
            Ok(Killed::Unknown) => Ok(()),
            Err(e) => Err(inner.io(&format!("cannot kill application {app_id}"), e)),
        }
    }

    async fn log(&self, driver_name: &str, window: LogWindow) -> Result<LogSlice> {
        let inner = &self.inner;
        let mut log = DriverLog::new();
        if let Some(submitted) = inner.logs.kept_submit(driver_name) {
            log = log.line("kindling: spark-submit output:").file(submitted);
        }
        log = match inner.logs.kept(driver_name) {
            Some(kept) => log.file(kept),
            None => log.lines(inner.live_log(driver_name).await),
        };
        if let Some(end) = inner.logs.read_end(driver_name) {
            log = log.line(end);
        }
        log.read_async(window)
            .await
            .map_err(|e| BackendError::Io(format!("cannot read the driver's kept log: {e}")))
    }
}
