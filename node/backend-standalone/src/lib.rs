//! The Spark standalone backend: drivers run on the cluster's workers (cluster mode), submitted
//! through the master's REST submission server (`spark.master.rest.enabled=true`, port 6066:
//! `POST /v1/submissions/create`, `GET /v1/submissions/status/<id>`,
//! `POST /v1/submissions/kill/<id>`). It owns the conversation with one master; it never runs
//! Spark on the node and keeps nothing on disk: what it must find again it finds on the cluster.
//!
//! **PySpark in cluster mode.** `spark-submit --deploy-mode cluster` still refuses Python apps
//! on standalone, but Spark 4.3's REST server accepts `mainClass =
//! org.apache.spark.deploy.SparkSubmit` (it then adds `-c spark.app.name=…` to the arguments;
//! verified in its bytecode and against a real master). The worker starts the driver JVM as
//! `DriverWrapper <worker> <local copy of appResource> SparkSubmit <appArgs>`, so `appArgs` is an
//! ordinary `spark-submit --master spark://… --deploy-mode client … <app> <args>` command run
//! *on the worker*, which runs Python apps and jars alike. The worker first copies
//! `appResource` into the driver's working directory and puts that copy where `{{USER_JAR}}`
//! stands in the arguments: a batch's file is submitted as `{{USER_JAR}}`. A session's
//! `appResource` is the runner's `driver.proto`, so it lands in the driver's working directory,
//! where the runner looks for a flat `driver.proto`; the runner itself is the application. (Files
//! passed with `--files` do not help: in client mode they land in Spark's `userFiles-*`
//! temporary directory, not in the working directory.) So the runner and the proto must be at a
//! path every worker can read, or at a URL they can fetch. The SparkSubmit inside the driver
//! reads `--master` from its arguments only (the `spark.master` system property the server sets
//! is ignored, and the app would silently run in `local[*]`), so the backend passes the master's
//! RPC URL, read from the master's `/json/`.
//!
//! **Finding a driver again.** The master's `/json/` lists drivers with id, state, worker and
//! main class only; a driver's properties are nowhere in the master's answers. They are in the
//! first line of the driver's `stderr` on its worker (`Launch Command: … "-Dspark.kindling.driver=
//! <cluster>:<name>" …`), read through the worker's `/log/` page. A driver still queued on the
//! master, or on a worker that does not answer, cannot be identified: `find` then says it cannot
//! tell yet rather than claiming the launch never happened. Ended drivers that cannot be read
//! are skipped: relaunching over one of them can never leave two drivers running.
//!
//! **States.** See [`driver_phase`]: the standalone master records no exit code, only the state.

mod from_cluster;
use async_trait::async_trait;
pub use from_cluster::from_cluster;
use futures::StreamExt;
use kindling_backend::is_app_id;
use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, DriverLog, Found, LaunchSpec, LogSlice, LogWindow,
    Result,
};
use kindling_events::spec::JobKind;
use kindling_events::{Attempt, JobId};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The driver's main class: Spark's own `spark-submit`, run on the worker in client mode.
const SPARK_SUBMIT: &str = "org.apache.spark.deploy.SparkSubmit";
/// The Spark property that tags a driver with `<cluster>:<driver name>`.
pub const TAG_PROPERTY: &str = "spark.kindling.driver";
/// The REST server only requires the field to be set; it does not compare versions.
const CLIENT_SPARK_VERSION: &str = "4.3.0";
/// Exit code reported for FAILED: the master records only that the exit was non-zero.
pub const EXIT_FAILED: i32 = 1;
/// Exit code reported for KILLED: the worker stops a killed driver with SIGTERM (128 + 15).
pub const EXIT_KILLED: i32 = 143;
/// How much of a driver's `stderr` head is read for its launch command and application id.
const HEAD_BYTES: u64 = 256 * 1024;
/// How much of the end of each of a driver's `stdout` and `stderr` `log` returns.
const TAIL_BYTES: u64 = 4 * 1024 * 1024;
/// Consecutive polls on which the master does not know a watched driver before it counts as
/// ended: it forgot the driver (restart without recovery, or `spark.deploy.retainedDrivers`).
const MISSING_POLLS: u32 = 3;

#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    /// The master's REST submission server, e.g. `http://127.0.0.1:6066`.
    pub rest_url: String,
    /// The master's web UI, e.g. `http://127.0.0.1:8080`; its `/json/` lists drivers and workers.
    pub web_ui_url: String,
    /// Drivers are tagged `<cluster>:<driver name>`, so two Kindling clusters sharing a Spark
    /// cluster never mistake each other's drivers for their own.
    pub cluster_id: String,
    /// Spark conf applied to every job before the job's own.
    pub default_conf: BTreeMap<String, String>,
    /// Python on the workers, for drivers and executors (`spark.pyspark.python`).
    pub python: String,
    /// The session runner (`kindling_runner.py`): a path on every worker, or a URL.
    pub runner: String,
    /// The runner's `driver.proto`: a path on every worker, or a URL. Shipped as the session
    /// driver's `appResource`, so its file name must stay `driver.proto`.
    pub proto: String,
    pub poll_interval: Duration,
}

/// What Kindling makes of a standalone driver state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverPhase {
    /// Not running on a worker yet: SUBMITTED (queued for a worker), UNKNOWN (a recovered
    /// master waiting for the driver's worker to come back).
    Pending,
    Running,
    /// RELAUNCHING: the worker of a supervised driver (`spark.driver.supervise`) was lost. This
    /// id is over; the master submitted the same driver again under a new id.
    Replaced,
    Ended {
        exit_code: Option<i32>,
    },
}

impl DriverPhase {
    /// Whether this driver id can still run.
    fn live(self) -> bool {
        matches!(self, DriverPhase::Pending | DriverPhase::Running)
    }
}

/// Maps a driver state (Spark's `DriverState`) to a phase and, once ended, an exit code:
/// - FINISHED: exited with 0 → `Some(0)`;
/// - FAILED: exited non-zero → `Some(EXIT_FAILED)` (the master keeps no code);
/// - KILLED: stopped on request (REST kill, UI) → `Some(EXIT_KILLED)`;
/// - ERROR: the worker could not start the driver (e.g. `appResource` unreadable) or was lost
///   while the driver ran unsupervised; no process exit status exists → `None`;
/// - RELAUNCHING: not an end; the driver lives on under another id (see [`DriverPhase`]).
///
/// An unrecognised state counts as pending: only a state known to be final ends a driver.
pub fn driver_phase(state: &str) -> DriverPhase {
    let ended = |exit_code| DriverPhase::Ended { exit_code };
    match state {
        "RUNNING" => DriverPhase::Running,
        "RELAUNCHING" => DriverPhase::Replaced,
        "FINISHED" => ended(Some(0)),
        "FAILED" => ended(Some(EXIT_FAILED)),
        "KILLED" => ended(Some(EXIT_KILLED)),
        "ERROR" => ended(None),
        _ => DriverPhase::Pending,
    }
}

/// The body of `POST /v1/submissions/create`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubmission {
    pub action: &'static str,
    pub app_resource: String,
    pub main_class: &'static str,
    pub app_args: Vec<String>,
    pub spark_properties: BTreeMap<String, String>,
    pub environment_variables: BTreeMap<String, String>,
    pub client_spark_version: &'static str,
}

/// The submission for one driver. `master` is the master's RPC URL (`spark://host:7077`).
pub fn submission(cfg: &StandaloneConfig, l: &LaunchSpec, master: &str) -> CreateSubmission {
    let r = &l.spec.resources;
    let mut props = cfg.default_conf.clone();
    props.extend(r.conf.clone());
    props.retain(|k, _| !k.starts_with("kindling."));
    // The typed fields win over conf, as spark-submit's flags do. The driver's memory and
    // cores must be properties: the master places the driver and the worker sizes its JVM.
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            props.insert(k.into(), v);
        }
    };
    set("spark.driver.memory", r.driver_memory.clone());
    set("spark.driver.cores", r.driver_cores.map(|c| c.to_string()));
    set("spark.executor.memory", r.executor_memory.clone());
    set(
        "spark.executor.cores",
        r.executor_cores.map(|c| c.to_string()),
    );
    set(
        "spark.executor.instances",
        r.num_executors.map(|c| c.to_string()),
    );
    // `queue` is YARN's: standalone has none.
    let name = l
        .spec
        .name
        .clone()
        .or_else(|| props.get("spark.app.name").cloned())
        .unwrap_or_else(|| l.driver_name.clone());
    props.insert("spark.app.name".into(), name);
    props
        .entry("spark.pyspark.python".into())
        .or_insert_with(|| cfg.python.clone());
    props.insert(TAG_PROPERTY.into(), tag(cfg, &l.driver_name));

    let mut args: Vec<String> = vec![
        "--master".into(),
        master.into(),
        "--deploy-mode".into(),
        "client".into(),
    ];
    for (flag, list) in [
        ("--jars", &r.jars),
        ("--py-files", &r.py_files),
        ("--files", &r.files),
        ("--archives", &r.archives),
    ] {
        if !list.is_empty() {
            args.push(flag.into());
            args.push(list.join(","));
        }
    }
    let mut env: BTreeMap<String, String> = [
        ("KINDLING_DRIVER", tag(cfg, &l.driver_name)),
        ("KINDLING_JOB_ID", l.job.0.to_string()),
        ("KINDLING_ATTEMPT", l.attempt.0.to_string()),
        ("PYSPARK_PYTHON", props["spark.pyspark.python"].clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let app_resource = match &l.spec.kind {
        JobKind::Batch(b) => {
            if let Some(c) = &b.class_name {
                args.push("--class".into());
                args.push(c.clone());
            }
            // The worker's copy of the application, in the driver's directory.
            args.push("{{USER_JAR}}".into());
            args.extend(b.args.iter().cloned());
            fetchable(&b.file)
        }
        JobKind::Session(s) => {
            args.push(cfg.runner.clone());
            env.insert("KINDLING_SESSION_KIND".into(), s.kind.as_str().into());
            fetchable(&cfg.proto)
        }
    };
    if let Some(link) = &l.session {
        env.extend(
            link.route_env()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        env.insert("KINDLING_SECRET".into(), link.secret.clone());
    }
    CreateSubmission {
        action: "CreateSubmissionRequest",
        app_resource,
        main_class: SPARK_SUBMIT,
        app_args: args,
        spark_properties: props,
        environment_variables: env,
        client_spark_version: CLIENT_SPARK_VERSION,
    }
}

fn tag(cfg: &StandaloneConfig, driver_name: &str) -> String {
    format!("{}:{driver_name}", cfg.cluster_id)
}

/// `appResource` as the worker fetches it: a plain path becomes a `file:` URL.
fn fetchable(file: &str) -> String {
    if let Some(path) = file.strip_prefix("local:") {
        return format!("file:{path}");
    }
    if file.contains("://") || file.starts_with("file:") {
        return file.to_string();
    }
    format!("file:{file}")
}

/// The tag in a driver's launch command (the first line of its `stderr`): `Some(None)` for a
/// driver Kindling did not tag, `None` when the text holds no launch command.
pub fn launch_tag(stderr_head: &str) -> Option<Option<String>> {
    let line = stderr_head
        .lines()
        .find(|l| l.starts_with("Launch Command:"))?;
    let key = format!("\"-D{TAG_PROPERTY}=");
    Some(
        line.split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"').map(|(tag, _)| tag.to_string())),
    )
}

/// The application id and Spark UI port a driver's `stderr` shows.
pub fn app_in(stderr: &str) -> (Option<String>, Option<u16>) {
    let word = |s: &str| {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .find(|w| w.starts_with("app-") && is_app_id(w))
            .map(str::to_string)
    };
    let app = stderr.lines().find_map(|l| {
        l.split_once("with app ID ")
            .and_then(|(_, rest)| word(rest))
    });
    let port = stderr.lines().find_map(|l| {
        let rest = l.split_once("service 'SparkUI' on port ")?.1;
        rest.trim_end_matches('.').trim().parse().ok()
    });
    (app, port)
}

/// Splits a worker `/log/` page into the text and, when the page says so, the number of
/// bytes before it. `None` when the worker has no such log.
pub fn log_page(body: &str) -> Option<(String, u64)> {
    let (head, text) = body.split_once('\n').unwrap_or((body, ""));
    // `==== Bytes <start>-<end> of <total> of <path> ====`
    let start = head
        .strip_prefix("==== Bytes ")
        .and_then(|r| r.split_once('-'))
        .and_then(|(s, _)| s.parse().ok());
    let Some(start) = start else {
        return Some((body.to_string(), 0));
    };
    if text.starts_with("Error: invalid log directory") {
        return None;
    }
    Some((text.to_string(), start))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestResponse {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    submission_id: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    driver_state: Option<String>,
    #[serde(default)]
    worker_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct MasterState {
    url: String,
    #[serde(default)]
    workers: Vec<WorkerInfo>,
    #[serde(default)]
    activedrivers: Vec<DriverInfo>,
    #[serde(default)]
    completeddrivers: Vec<DriverInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct WorkerInfo {
    id: String,
    host: String,
    webuiaddress: String,
}

#[derive(Debug, Clone, Deserialize)]
struct DriverInfo {
    id: String,
    state: String,
    /// The worker's id, or `"None"` while the driver is queued.
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    mainclass: Option<String>,
}

struct Watch {
    job: JobId,
    attempt: Attempt,
    driver_id: String,
    app_reported: bool,
    missing: u32,
}

/// What the cluster says about a tag.
enum Located {
    Found {
        driver_id: String,
        state: String,
    },
    Absent,
    /// Not found among the drivers that could be read, but some live ones could not be.
    Unsure(String),
}

struct Inner {
    cfg: StandaloneConfig,
    http: reqwest::Client,
    events: mpsc::UnboundedSender<BackendEvent>,
    /// The drivers this node watches, by driver name.
    watched: Mutex<HashMap<String, Watch>>,
    /// The tag each driver id was launched with (`None`: not a Kindling driver). Immutable,
    /// so read from the worker once.
    tags: Mutex<HashMap<String, Option<String>>>,
}

pub struct StandaloneBackend {
    inner: Arc<Inner>,
}

impl StandaloneBackend {
    /// Starts the poller, which reports watched drivers' exits until `shutdown`.
    pub fn new(
        cfg: StandaloneConfig,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            cfg,
            http,
            events,
            watched: Mutex::default(),
            tags: Mutex::default(),
        });
        tokio::spawn(poll(inner.clone(), shutdown));
        StandaloneBackend { inner }
    }
}

async fn poll(inner: Arc<Inner>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(inner.cfg.poll_interval) => {}
        }
        inner.poll_once().await;
    }
}

impl Inner {
    fn io(&self, what: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Io(format!("{what}: {e}"))
    }

    async fn master_state(&self) -> Result<MasterState, reqwest::Error> {
        let url = format!("{}/json/", self.cfg.web_ui_url.trim_end_matches('/'));
        self.http.get(url).send().await?.json().await
    }

    async fn status(&self, driver_id: &str) -> Result<RestResponse, reqwest::Error> {
        let url = format!(
            "{}/v1/submissions/status/{driver_id}",
            self.cfg.rest_url.trim_end_matches('/')
        );
        self.http.get(url).send().await?.json().await
    }

    /// A driver's log from its worker: the text and how many bytes precede it.
    async fn worker_log(
        &self,
        web_ui: &str,
        driver_id: &str,
        kind: &str,
        range: &str,
    ) -> Result<Option<(String, u64)>, reqwest::Error> {
        let url = format!(
            "{}/log/?driverId={driver_id}&logType={kind}&{range}",
            web_ui.trim_end_matches('/')
        );
        let body = self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(log_page(&body))
    }

    /// The web UI of a worker, by its id.
    async fn worker_ui(&self, worker_id: &str) -> Option<String> {
        let state = self.master_state().await.ok()?;
        state
            .workers
            .into_iter()
            .find(|w| w.id == worker_id)
            .map(|w| w.webuiaddress)
    }

    /// Looks for the driver tagged `tag` among all the drivers the master knows.
    async fn locate(&self, tag: &str) -> Result<(Located, MasterState), reqwest::Error> {
        let state = self.master_state().await?;
        let ui: HashMap<&str, &str> = state
            .workers
            .iter()
            .map(|w| (w.id.as_str(), w.webuiaddress.as_str()))
            .collect();
        let ours: Vec<&DriverInfo> = state
            .activedrivers
            .iter()
            .chain(&state.completeddrivers)
            .filter(|d| d.mainclass.as_deref() == Some(SPARK_SUBMIT))
            .collect();
        let unread: Vec<(String, Option<String>)> = {
            let tags = self.tags.lock();
            ours.iter()
                .filter(|d| !tags.contains_key(&d.id))
                .map(|d| {
                    let web_ui = d.worker.as_deref().and_then(|w| ui.get(w));
                    (d.id.clone(), web_ui.map(|u| u.to_string()))
                })
                .collect()
        };
        let read: Vec<(String, Option<Option<String>>)> = futures::stream::iter(
            unread
                .into_iter()
                .map(|(id, web_ui)| self.read_tag(id, web_ui)),
        )
        .buffer_unordered(8)
        .collect()
        .await;
        let mut tags = self.tags.lock();
        // Forget drivers the master has forgotten: the cache stays as small as its list.
        tags.retain(|id, _| ours.iter().any(|d| &d.id == id));
        for (id, found) in read {
            if let Some(t) = found {
                tags.insert(id, t);
            }
        }
        let mut found: Option<&DriverInfo> = None;
        let mut unsure = Vec::new();
        for d in ours {
            match tags.get(&d.id) {
                Some(Some(t)) if t == tag => {
                    // A relaunched driver's tag is on its old ids too: the live or else the
                    // latest id counts.
                    let live = |d: &DriverInfo| driver_phase(&d.state).live();
                    if found.is_none_or(|f| (live(d), &d.id) > (live(f), &f.id)) {
                        found = Some(d);
                    }
                }
                Some(_) => {}
                None if !driver_phase(&d.state).live() => {}
                None => unsure.push(format!("{} ({})", d.id, d.state)),
            }
        }
        let located = match (found, unsure.is_empty()) {
            (Some(d), _) => Located::Found {
                driver_id: d.id.clone(),
                state: d.state.clone(),
            },
            (None, true) => Located::Absent,
            (None, false) => Located::Unsure(unsure.join(", ")),
        };
        drop(tags);
        Ok((located, state))
    }

    /// The tag in a driver's launch command, read from its worker; `None` if unreadable.
    async fn read_tag(
        &self,
        driver_id: String,
        web_ui: Option<String>,
    ) -> (String, Option<Option<String>>) {
        let Some(web_ui) = web_ui else {
            return (driver_id, None);
        };
        let range = format!("offset=0&byteLength={HEAD_BYTES}");
        let found = match self.worker_log(&web_ui, &driver_id, "stderr", &range).await {
            Ok(Some((text, _))) => launch_tag(&text),
            _ => None,
        };
        (driver_id, found)
    }

    fn watch(&self, job: JobId, attempt: Attempt, name: &str, driver_id: &str) {
        self.tags
            .lock()
            .insert(driver_id.to_string(), Some(tag(&self.cfg, name)));
        let mut watched = self.watched.lock();
        if watched.get(name).is_some_and(|w| w.driver_id == driver_id) {
            return;
        }
        watched.insert(
            name.to_string(),
            Watch {
                job,
                attempt,
                driver_id: driver_id.to_string(),
                app_reported: false,
                missing: 0,
            },
        );
    }

    /// The id of the driver called `name`: the watched one, else the one the cluster holds.
    async fn driver_id(&self, name: &str) -> Result<Option<String>> {
        if let Some(w) = self.watched.lock().get(name) {
            return Ok(Some(w.driver_id.clone()));
        }
        let tag = tag(&self.cfg, name);
        let (located, _) = self
            .locate(&tag)
            .await
            .map_err(|e| self.io("cannot list the standalone master's drivers", e))?;
        Ok(match located {
            Located::Found { driver_id, .. } => Some(driver_id),
            _ => None,
        })
    }

    /// One look at every watched driver: their states from the master's `/json/`, or from
    /// the REST status of a driver the list no longer holds.
    async fn poll_once(&self) {
        let watched: Vec<(String, String, bool)> = self
            .watched
            .lock()
            .iter()
            .map(|(n, w)| (n.clone(), w.driver_id.clone(), w.app_reported))
            .collect();
        if watched.is_empty() {
            return;
        }
        let master = match self.master_state().await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "cannot reach the standalone master");
                return;
            }
        };
        for (name, driver_id, app_reported) in watched {
            let listed = master
                .activedrivers
                .iter()
                .chain(&master.completeddrivers)
                .find(|d| d.id == driver_id);
            let (state, worker) = match listed {
                Some(d) => (d.state.clone(), d.worker.clone()),
                None => match self.status(&driver_id).await {
                    Ok(RestResponse {
                        driver_state: Some(state),
                        worker_id,
                        ..
                    }) => (state, worker_id),
                    Ok(_) => {
                        self.on_missing(&name, &driver_id);
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(driver = %name, error = %e, "cannot reach the standalone master");
                        continue;
                    }
                },
            };
            if let Some(w) = self.watched.lock().get_mut(&name) {
                w.missing = 0;
            }
            let phase = driver_phase(&state);
            let worker = worker.and_then(|id| master.workers.iter().find(|w| w.id == id));
            if let (false, DriverPhase::Running | DriverPhase::Ended { .. }, Some(worker)) =
                (app_reported, phase, worker)
            {
                self.learn_app(&name, &driver_id, worker).await;
            }
            match phase {
                DriverPhase::Ended { exit_code } => {
                    tracing::info!(driver = %name, %driver_id, %state, "driver ended");
                    self.end(&name, &driver_id, exit_code);
                }
                DriverPhase::Replaced => self.follow(&name, &driver_id).await,
                DriverPhase::Pending | DriverPhase::Running => {}
            }
        }
    }

    /// Watches the id a relaunched driver runs under now, once the cluster shows it.
    async fn follow(&self, name: &str, old_id: &str) {
        let Ok((Located::Found { driver_id, state }, _)) = self.locate(&tag(&self.cfg, name)).await
        else {
            return;
        };
        if driver_id == old_id || !driver_phase(&state).live() {
            return;
        }
        let mut watched = self.watched.lock();
        if let Some(w) = watched.get_mut(name).filter(|w| w.driver_id == old_id) {
            tracing::info!(driver = %name, %old_id, new_id = %driver_id, "the master relaunched the driver");
            w.driver_id = driver_id;
            w.app_reported = false;
            w.missing = 0;
        }
    }

    fn on_missing(&self, name: &str, driver_id: &str) {
        let gone = {
            let mut watched = self.watched.lock();
            match watched.get_mut(name) {
                Some(w) if w.driver_id == driver_id => {
                    w.missing += 1;
                    w.missing >= MISSING_POLLS
                }
                _ => false,
            }
        };
        if gone {
            tracing::warn!(driver = %name, %driver_id, "the standalone master no longer knows the driver");
            self.end(name, driver_id, None);
        }
    }

    fn end(&self, name: &str, driver_id: &str, exit_code: Option<i32>) {
        let w = {
            let mut watched = self.watched.lock();
            match watched.get(name) {
                Some(w) if w.driver_id == driver_id => watched.remove(name),
                _ => None,
            }
        };
        if let Some(w) = w {
            let _ = self.events.send(BackendEvent::Exited {
                job: w.job,
                attempt: w.attempt,
                exit_code,
                reason: None,
            });
        }
    }

    /// Reports the application id once the driver's `stderr` shows it.
    async fn learn_app(&self, name: &str, driver_id: &str, worker: &WorkerInfo) {
        let range = format!("offset=0&byteLength={HEAD_BYTES}");
        let head = self
            .worker_log(&worker.webuiaddress, driver_id, "stderr", &range)
            .await;
        let Ok(Some((text, _))) = head else {
            return;
        };
        let (Some(app_id), ui_port) = app_in(&text) else {
            return;
        };
        // The driver runs on the worker's host.
        let spark_ui_url = ui_port.map(|port| format!("http://{}:{port}", worker.host));
        let w = {
            let mut watched = self.watched.lock();
            match watched.get_mut(name) {
                Some(w) if w.driver_id == driver_id && !w.app_reported => {
                    w.app_reported = true;
                    Some((w.job, w.attempt))
                }
                _ => None,
            }
        };
        if let Some((job, attempt)) = w {
            let _ = self.events.send(BackendEvent::AppIdentified {
                job,
                attempt,
                app_id,
                spark_ui_url,
            });
        }
    }
}

#[async_trait]
impl ClusterBackend for StandaloneBackend {
    async fn launch(&self, l: LaunchSpec) -> Result<String> {
        let inner = &self.inner;
        let tag = tag(&inner.cfg, &l.driver_name);
        let (located, state) = inner.locate(&tag).await.map_err(|e| {
            BackendError::LaunchFailed(format!(
                "the standalone master at {} does not answer: {e}",
                inner.cfg.web_ui_url
            ))
        })?;
        match located {
            Located::Found { driver_id, .. } => {
                // Re-issued launch: the driver exists already.
                inner.watch(l.job, l.attempt, &l.driver_name, &driver_id);
                return Ok(driver_id);
            }
            Located::Unsure(which) => {
                // A first launch is the usual reason to get here; queued drivers of other
                // jobs must not block it.
                tracing::debug!(driver = %l.driver_name, %which, "some drivers could not be identified");
            }
            Located::Absent => {}
        }
        let body = submission(&inner.cfg, &l, &state.url);
        let url = format!(
            "{}/v1/submissions/create",
            inner.cfg.rest_url.trim_end_matches('/')
        );
        let sent = inner.http.post(&url).json(&body).send().await;
        let reply: RestResponse = match sent {
            Ok(r) => r.json().await.map_err(|e| {
                inner.io(
                    "the standalone master's answer to a submission is unreadable",
                    e,
                )
            })?,
            Err(e) if e.is_connect() => {
                return Err(BackendError::LaunchFailed(format!(
                    "the standalone master at {url} does not answer: {e}"
                )))
            }
            // The request may have reached the master: only a later `find` can tell.
            Err(e) => return Err(inner.io("submission to the standalone master", e)),
        };
        match (reply.success, reply.submission_id) {
            (Some(true), Some(driver_id)) => {
                tracing::info!(driver = %l.driver_name, %driver_id, "driver submitted");
                inner.watch(l.job, l.attempt, &l.driver_name, &driver_id);
                Ok(driver_id)
            }
            _ => {
                let message = reply.message.unwrap_or_default();
                let first = message.lines().next().unwrap_or("no reason given");
                Err(BackendError::LaunchFailed(format!(
                    "the standalone master refused the driver: {first}"
                )))
            }
        }
    }

    async fn find(&self, job: JobId, attempt: Attempt, driver_name: &str) -> Result<Found> {
        let inner = &self.inner;
        if let Some(w) = inner.watched.lock().get(driver_name) {
            return Ok(Found::Running {
                driver_id: w.driver_id.clone(),
            });
        }
        let (located, _) = inner
            .locate(&tag(&inner.cfg, driver_name))
            .await
            .map_err(|e| inner.io("cannot list the standalone master's drivers", e))?;
        match located {
            Located::Found { driver_id, state } => match driver_phase(&state) {
                DriverPhase::Ended { exit_code } => Ok(Found::Ended { exit_code }),
                // A replaced id is followed to the one the driver runs under now.
                _ => {
                    inner.watch(job, attempt, driver_name, &driver_id);
                    Ok(Found::Running { driver_id })
                }
            },
            Located::Absent => Ok(Found::Never),
            Located::Unsure(which) => Err(BackendError::Io(format!(
                "cannot tell yet whether {driver_name} was launched: drivers {which} are queued \
                 or on workers that do not answer"
            ))),
        }
    }

    async fn kill(&self, driver_name: &str) -> Result<()> {
        let inner = &self.inner;
        let Some(driver_id) = inner.driver_id(driver_name).await? else {
            return Ok(());
        };
        let url = format!(
            "{}/v1/submissions/kill/{driver_id}",
            inner.cfg.rest_url.trim_end_matches('/')
        );
        let reply: RestResponse = inner
            .http
            .post(&url)
            .send()
            .await
            .map_err(|e| inner.io("kill request to the standalone master", e))?
            .json()
            .await
            .map_err(|e| inner.io("the standalone master's answer to a kill", e))?;
        if reply.success != Some(true) {
            // Typically: the driver has already ended. Its end is reported as usual.
            tracing::info!(driver = %driver_name, %driver_id, message = ?reply.message, "kill not applied");
        }
        Ok(())
    }

    async fn log(&self, driver_name: &str, window: LogWindow) -> Result<LogSlice> {
        // The worker serves the ends of the driver's files (HEAD_BYTES, TAIL_BYTES), so what
        // is held here is bounded whatever the driver wrote.
        let lines = self.lines(driver_name).await?;
        DriverLog::new()
            .lines(lines)
            .read(window)
            .map_err(|e| BackendError::Io(e.to_string()))
    }
}

impl StandaloneBackend {
    /// The driver's output as the worker and the master tell it.
    async fn lines(&self, driver_name: &str) -> Result<Vec<String>> {
        let inner = &self.inner;
        let Some(driver_id) = inner.driver_id(driver_name).await? else {
            return Ok(vec![]);
        };
        let status = inner
            .status(&driver_id)
            .await
            .map_err(|e| inner.io("cannot reach the standalone master", e))?;
        let state = status.driver_state.as_deref().unwrap_or("UNKNOWN");
        let mut lines = match &status.worker_id {
            Some(worker) => inner.driver_log(&driver_id, worker).await,
            None => vec![format!(
                "driver {driver_id} ({state}) is on no worker, so it has no log"
            )],
        };
        match &status.message {
            Some(m) => {
                lines.push(format!(
                    "kindling: the standalone master reports driver {driver_id} {state}:"
                ));
                lines.extend(m.lines().map(str::to_string));
            }
            None if state == "ERROR" => lines.push(format!(
                "kindling: the standalone master reports driver {driver_id} ERROR: \
                 its worker was lost, or could not start it"
            )),
            None => {}
        }
        Ok(lines)
    }
}

impl Inner {
    /// The end of a driver's `stdout` and `stderr` (Livy's layout), or where they are.
    async fn driver_log(&self, driver_id: &str, worker: &str) -> Vec<String> {
        let Some(web_ui) = self.worker_ui(worker).await else {
            return vec![format!(
                "the driver's log is on worker {worker}, which the master no longer lists"
            )];
        };
        let mut lines = Vec::new();
        for kind in ["stdout", "stderr"] {
            let range = format!("byteLength={TAIL_BYTES}");
            match self.worker_log(&web_ui, driver_id, kind, &range).await {
                Ok(Some((text, skipped))) => {
                    lines.push(format!("{kind}: "));
                    if skipped > 0 {
                        lines.push(format!(
                            "({skipped} earlier bytes are on worker {worker} at {web_ui})"
                        ));
                    }
                    lines.extend(text.lines().map(str::to_string));
                }
                Ok(None) => lines.push(format!("{kind}: (none on worker {worker})")),
                Err(e) => {
                    lines.push(format!(
                        "the driver's log is on worker {worker} at {web_ui}, which does not answer: {e}"
                    ));
                    break;
                }
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_backend::SessionLink;
    use kindling_events::spec::{BatchSpec, JobSpec, SessionKind, SessionSpec, SparkResources};

    fn cfg() -> StandaloneConfig {
        StandaloneConfig {
            rest_url: "http://m:6066".into(),
            web_ui_url: "http://m:8080".into(),
            cluster_id: "c1".into(),
            default_conf: [
                ("spark.ui.enabled".to_string(), "false".to_string()),
                ("spark.driver.memory".to_string(), "1g".to_string()),
            ]
            .into(),
            python: "/venv/bin/python".into(),
            runner: "/shared/runner/kindling_runner.py".into(),
            proto: "/shared/proto/driver.proto".into(),
            poll_interval: Duration::from_secs(1),
        }
    }

    fn batch() -> LaunchSpec {
        LaunchSpec {
            job: JobId(7),
            attempt: Attempt(2),
            driver_name: "kindling-7-2".into(),
            spec: JobSpec {
                kind: JobKind::Batch(BatchSpec {
                    file: "/apps/job.jar".into(),
                    class_name: Some("com.example.Main".into()),
                    args: vec!["--day".into(), "1".into()],
                }),
                name: None,
                owner: None,
                proxy_user: None,
                resources: SparkResources {
                    driver_memory: Some("2g".into()),
                    driver_cores: Some(2),
                    executor_memory: Some("4g".into()),
                    executor_cores: Some(3),
                    num_executors: Some(5),
                    queue: Some("etl".into()),
                    jars: vec!["/a.jar".into(), "hdfs:///b.jar".into()],
                    py_files: vec!["/deps.zip".into()],
                    files: vec!["/conf.yml".into()],
                    archives: vec!["/env.tgz#env".into()],
                    conf: [
                        ("spark.ui.enabled".to_string(), "true".to_string()),
                        ("spark.app.name".to_string(), "from-conf".to_string()),
                        ("kindling.cluster".to_string(), "default".to_string()),
                    ]
                    .into(),
                },
            },
            session: None,
        }
    }

    #[test]
    fn driver_states_map_to_phases_and_exit_codes() {
        let ended = |exit_code| DriverPhase::Ended { exit_code };
        for (state, phase) in [
            ("SUBMITTED", DriverPhase::Pending),
            ("RELAUNCHING", DriverPhase::Replaced),
            ("UNKNOWN", DriverPhase::Pending),
            ("RUNNING", DriverPhase::Running),
            ("FINISHED", ended(Some(0))),
            ("FAILED", ended(Some(EXIT_FAILED))),
            ("KILLED", ended(Some(EXIT_KILLED))),
            ("ERROR", ended(None)),
            ("SOMETHING_NEW", DriverPhase::Pending),
        ] {
            assert_eq!(driver_phase(state), phase, "{state}");
        }
    }

    #[test]
    fn a_batch_becomes_a_spark_submit_run_on_the_worker() {
        let s = submission(&cfg(), &batch(), "spark://m:7077");
        assert_eq!(s.action, "CreateSubmissionRequest");
        assert_eq!(s.main_class, "org.apache.spark.deploy.SparkSubmit");
        assert_eq!(s.app_resource, "file:/apps/job.jar");
        assert_eq!(
            s.app_args.join(" "),
            "--master spark://m:7077 --deploy-mode client --jars /a.jar,hdfs:///b.jar \
             --py-files /deps.zip --files /conf.yml --archives /env.tgz#env \
             --class com.example.Main {{USER_JAR}} --day 1"
        );
        let p = &s.spark_properties;
        // Typed resources win over conf, the job's conf over the defaults.
        assert_eq!(p["spark.driver.memory"], "2g");
        assert_eq!(p["spark.driver.cores"], "2");
        assert_eq!(p["spark.executor.memory"], "4g");
        assert_eq!(p["spark.executor.cores"], "3");
        assert_eq!(p["spark.executor.instances"], "5");
        assert_eq!(p["spark.ui.enabled"], "true");
        assert_eq!(p["spark.app.name"], "from-conf");
        assert_eq!(p["spark.pyspark.python"], "/venv/bin/python");
        assert_eq!(p[TAG_PROPERTY], "c1:kindling-7-2");
        assert!(!p.contains_key("kindling.cluster"));
        assert!(!p.keys().any(|k| k.contains("queue")));
        let e = &s.environment_variables;
        assert_eq!(e["KINDLING_DRIVER"], "c1:kindling-7-2");
        assert_eq!(e["KINDLING_JOB_ID"], "7");
        assert_eq!(e["KINDLING_ATTEMPT"], "2");
        assert!(!e.contains_key("KINDLING_SECRET"));

        let json = serde_json::to_value(&s).unwrap();
        for key in [
            "action",
            "appResource",
            "mainClass",
            "appArgs",
            "sparkProperties",
            "environmentVariables",
            "clientSparkVersion",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
    }

    #[test]
    fn the_app_name_is_the_jobs_or_else_the_drivers() {
        let mut l = batch();
        l.spec.name = Some("nightly".into());
        let s = submission(&cfg(), &l, "spark://m:7077");
        assert_eq!(s.spark_properties["spark.app.name"], "nightly");
        l.spec.name = None;
        l.spec.resources.conf.clear();
        let s = submission(&cfg(), &l, "spark://m:7077");
        assert_eq!(s.spark_properties["spark.app.name"], "kindling-7-2");
    }

    #[test]
    fn a_session_runs_the_runner_with_its_proto_as_the_app_resource() {
        let mut l = batch();
        l.spec.kind = JobKind::Session(SessionSpec {
            kind: SessionKind::Sql,
            heartbeat_timeout_secs: 60,
            ttl: None,
            idle_timeout: None,
        });
        l.spec.resources = SparkResources::default();
        l.session = Some(SessionLink {
            endpoints: "node1:7000,node2:7000".into(),
            kafka: None,
            secret: "s3cret".into(),
        });
        let s = submission(&cfg(), &l, "spark://m:7077");
        assert_eq!(s.app_resource, "file:/shared/proto/driver.proto");
        assert_eq!(
            s.app_args.last().map(String::as_str),
            Some("/shared/runner/kindling_runner.py")
        );
        let e = &s.environment_variables;
        assert_eq!(e["KINDLING_ENDPOINTS"], "node1:7000,node2:7000");
        assert_eq!(e["KINDLING_SECRET"], "s3cret");
        assert_eq!(e["KINDLING_SESSION_KIND"], "sql");
        assert_eq!(e["PYSPARK_PYTHON"], "/venv/bin/python");
        // The secret stays out of the properties, which the worker prints in the driver's log.
        assert!(!s.spark_properties.values().any(|v| v.contains("s3cret")));
    }

    #[test]
    fn app_resources_are_urls_the_worker_can_fetch() {
        assert_eq!(fetchable("/a/b.py"), "file:/a/b.py");
        assert_eq!(fetchable("local:/a/b.py"), "file:/a/b.py");
        assert_eq!(fetchable("file:///a/b.py"), "file:///a/b.py");
        assert_eq!(fetchable("hdfs://nn/a.jar"), "hdfs://nn/a.jar");
        assert_eq!(fetchable("http://node/r.py"), "http://node/r.py");
    }

    #[test]
    fn reads_the_tag_from_the_launch_command() {
        let head = "==== preamble\nLaunch Command: \"java\" \"-cp\" \"x\" \
            \"-Dspark.kindling.driver=c1:kindling-1-10\" \"-Dspark.app.name=a\" \
            \"org.apache.spark.deploy.worker.DriverWrapper\"\n=====\nmore";
        assert_eq!(launch_tag(head), Some(Some("c1:kindling-1-10".into())));
        let untagged = "Launch Command: \"java\" \"-Dspark.app.name=a\"\n";
        assert_eq!(launch_tag(untagged), Some(None));
        assert_eq!(launch_tag("26/11/21 INFO nothing yet"), None);
    }

    #[test]
    fn reads_the_app_id_and_ui_port_from_the_driver_log() {
        let log = "26/11/21 11:11:38 INFO Utils: Successfully started service 'SparkUI' on port 4041.\n\
            26/11/21 11:11:39 INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20261121111139-0000\n";
        assert_eq!(
            app_in(log),
            (Some("app-20261121111139-0000".into()), Some(4041))
        );
        assert_eq!(app_in("nothing here"), (None, None));
    }

    #[test]
    fn parses_worker_log_pages() {
        assert_eq!(
            log_page("==== Bytes 0-7 of 7 of /w/driver-1/stdout ====\nsum 45\n"),
            Some(("sum 45\n".into(), 0))
        );
        assert_eq!(
            log_page("==== Bytes 100-107 of 107 of /w/d/stdout ====\nsum 45"),
            Some(("sum 45".into(), 100))
        );
        assert_eq!(
            log_page(
                "==== Bytes 0-0 of 0 of /w/d/stdout ====\nError: invalid log directory /w/d/\n"
            ),
            None
        );
    }
}
