//! The Kubernetes backend: each driver attempt is a pod in one namespace of one Kubernetes
//! cluster, named after (job, attempt) and labelled with Kindling's cluster id, the job and
//! the attempt. Kindling builds the driver pod itself, as Spark's cluster-mode submission
//! would ([`pod`]), so no JVM starts on the Kindling node per submission; Spark inside the pod
//! creates the executors. A driver also gets a headless service and, with credentials, a secret.
//!
//! It owns the conversation with one API server: a label-selector watch over the cluster's
//! driver pods ([`watch`]) feeds a cache of their latest state; drivers the scheduler launched
//! or found are reported from it (application id once the container runs, exit with Kubernetes'
//! reason once it ends, [`state`]); logs are copied to local files as they stream ([`logs`]).
//! It keeps nothing else: what it must find again after a restart it finds on the cluster
//! (or, for a driver whose pod is gone, in the end it kept).
//! It must not touch pods that are not labelled with its Kindling cluster id. What a driver
//! pod owns (its service and secret) is created and deleted in `companions`.

mod from_cluster;
pub use from_cluster::from_cluster;
mod companions;
pub mod config;
mod copy;
pub mod logs;
pub mod pod;
pub mod state;
mod tracker;
mod watch;

use async_trait::async_trait;
use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, DriverLog, Found, LaunchSpec, LogSlice, LogWindow,
    Result,
};
// The configuration's vocabulary, for the cluster registry; test binaries that compile this
// module without it leave some unused.
#[allow(unused_imports)]
pub use config::{KubeAuth, KubernetesConfig, PodRetention, IN_CLUSTER_MASTER};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kindling_events::{Attempt, JobId};
use kube::api::{Api, LogParams, PostParams};
use logs::LogStore;
use parking_lot::Mutex;
use state::DriverPhase;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracker::State;

/// Pause between attempts to reach the API server again.
const RETRY: Duration = Duration::from_millis(500);
/// The most of a running pod's log read from the API before this node's copy of it begins.
const LIVE_LOG_BYTES: i64 = 16 * 1024 * 1024;

struct Inner {
    cfg: KubernetesConfig,
    pods: Api<Pod>,
    services: Api<Service>,
    secrets: Api<Secret>,
    events: mpsc::UnboundedSender<BackendEvent>,
    logs: LogStore,
    state: Mutex<State>,
    shutdown: CancellationToken,
}

/// One Kubernetes cluster's backend.
pub struct KubernetesBackend {
    inner: Arc<Inner>,
}

impl KubernetesBackend {
    /// Builds the cluster's client and starts the watch, which reports watched drivers until
    /// `shutdown`. Fails only on local problems (unreadable kubeconfig or CA, bad URL); an
    /// API server that does not answer is retried in the background and makes launches fail.
    pub async fn new(
        cfg: KubernetesConfig,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let client = cfg.client().await.map_err(BackendError::Io)?;
        let ns = cfg.namespace.as_str();
        let inner = Arc::new(Inner {
            pods: Api::namespaced(client.clone(), ns),
            services: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client, ns),
            logs: LogStore::new(cfg.logs_dir.join(&cfg.name)),
            cfg,
            events,
            state: Mutex::default(),
            shutdown,
        });
        tokio::spawn(watch::run(inner.clone()));
        Ok(KubernetesBackend { inner })
    }

    // For tests/kubernetes.rs.
    #[allow(dead_code)]
    pub fn config(&self) -> &KubernetesConfig {
        &self.inner.cfg
    }

    /// How the driver ended, as kept on this node (`None` while it runs, or if this node
    /// never saw it end).
    #[allow(dead_code)]
    pub fn end_of(&self, driver_name: &str) -> Option<String> {
        self.inner.logs.read_end(driver_name)
    }
}

/// Whether the request certainly never reached the API server.
fn is_connect_error(e: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect())
        {
            return true;
        }
        source = s.source();
    }
    false
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

impl Inner {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn driver_id(&self, name: &str) -> String {
        format!("{}/{name}", self.cfg.namespace)
    }

    fn server(&self) -> String {
        self.cfg
            .api_server
            .clone()
            .unwrap_or_else(|| "the kubeconfig's server".into())
    }

    /// An error that may have left something behind on the cluster.
    fn io(&self, what: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Io(format!("cluster {}: {what}: {e}", self.name()))
    }

    /// A failed launch step: certain when the API server refused or was never reached.
    fn launch_error(&self, what: &str, e: kube::Error) -> BackendError {
        let name = self.name();
        let server = self.server();
        match &e {
            kube::Error::Api(s) if s.code == 401 => BackendError::LaunchFailed(format!(
                "cluster {name}: the API server at {server} rejected Kindling's credentials \
                 (401 Unauthorized) while {what}"
            )),
            kube::Error::Api(s) if (400..500).contains(&s.code) => {
                BackendError::LaunchFailed(format!(
                    "cluster {name}: the API server refused {what} ({} {}): {}",
                    s.code, s.reason, s.message
                ))
            }
            _ if is_connect_error(&e) => BackendError::LaunchFailed(format!(
                "cluster {name}: the API server at {server} does not answer ({what}): {e}"
            )),
            _ => self.io(what, e),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }
}

#[async_trait]
impl ClusterBackend for KubernetesBackend {
    async fn launch(&self, l: LaunchSpec) -> Result<String> {
        let inner = &self.inner;
        let name = &l.driver_name;
        let wanted = pod::driver_pod(&inner.cfg, &l)
            .map_err(|e| BackendError::LaunchFailed(format!("cluster {}: {e}", inner.name())))?;
        // The secret first: the pod reads it when its container starts.
        inner.create_secret(&l).await?;
        let pod = match inner.pods.create(&PostParams::default(), &wanted).await {
            Ok(created) => {
                tracing::info!(cluster = %inner.name(), driver = %name, "driver pod created");
                created
            }
            Err(e) if api_code(&e) == Some(409) => {
                // A re-issued launch: the pod exists already.
                let existing =
                    inner.pods.get_opt(name).await.map_err(|e| {
                        inner.io(&format!("cannot read the existing pod {name}"), e)
                    })?;
                match existing {
                    Some(p) if pod::is_driver_of(&p, &inner.cfg, l.job, l.attempt) => p,
                    Some(_) => {
                        return Err(BackendError::LaunchFailed(format!(
                            "cluster {}: pod {} exists and is not the driver of job {} attempt {} \
                             of this Kindling cluster",
                            inner.name(),
                            inner.driver_id(name),
                            l.job.0,
                            l.attempt.0
                        )))
                    }
                    None => {
                        return Err(inner.io(
                            "launch",
                            format!("pod {name} existed and was deleted meanwhile"),
                        ))
                    }
                }
            }
            Err(e) => return Err(inner.launch_error("creating the driver pod", e)),
        };
        // From here on the driver exists: a failure is "may have happened".
        inner
            .ensure_companions(name, l.job, l.attempt, &pod)
            .await?;
        inner.watch_driver(l.job, l.attempt, name, pod);
        Ok(inner.driver_id(name))
    }

    async fn find(&self, job: JobId, attempt: Attempt, driver_name: &str) -> Result<Found> {
        let inner = &self.inner;
        if inner.is_watched(driver_name) {
            return Ok(Found::Running {
                driver_id: inner.driver_id(driver_name),
            });
        }
        let pod = inner
            .pods
            .get_opt(driver_name)
            .await
            .map_err(|e| inner.io(&format!("cannot read pod {driver_name}"), e))?;
        let Some(pod) = pod else {
            // The cluster has no trace of it; this node may have: the end of a driver whose
            // pod a kill or the retention deleted.
            return Ok(match inner.logs.read_exit(driver_name) {
                Some(exit_code) => Found::Ended { exit_code },
                None => Found::Never,
            });
        };
        if !pod::is_driver_of(&pod, &inner.cfg, job, attempt) {
            return Err(BackendError::Io(format!(
                "cluster {}: pod {} exists and is not the driver of job {} attempt {} of this \
                 Kindling cluster",
                inner.name(),
                inner.driver_id(driver_name),
                job.0,
                attempt.0
            )));
        }
        match state::driver_phase(&pod) {
            DriverPhase::Ended(exit) => {
                if state::has_run(&pod) && inner.logs.read_end(driver_name).is_none() {
                    inner.copy_log(driver_name);
                }
                inner.record_end(driver_name, &exit);
                inner.expire(driver_name);
                Ok(Found::Ended {
                    exit_code: exit.exit_code,
                })
            }
            DriverPhase::Pending | DriverPhase::Running => {
                if let Err(e) = inner
                    .ensure_companions(driver_name, job, attempt, &pod)
                    .await
                {
                    tracing::warn!(cluster = %inner.name(), driver = %driver_name, error = %e, "driver found without its service");
                }
                inner.watch_driver(job, attempt, driver_name, pod);
                Ok(Found::Running {
                    driver_id: inner.driver_id(driver_name),
                })
            }
        }
    }

    async fn kill(&self, driver_name: &str) -> Result<()> {
        let inner = &self.inner;
        inner.mark_killed(driver_name);
        inner.delete_driver(driver_name).await
    }

    async fn log(&self, driver_name: &str, window: LogWindow) -> Result<LogSlice> {
        let inner = &self.inner;
        // The copy kept on this node (it follows the pod's log as it streams); the pod's own
        // log, bounded, only before the copy has begun.
        let mut log = match inner.logs.kept(driver_name) {
            Some(path) => DriverLog::new().file_shown(path, logs::text_of),
            None => {
                let lp = LogParams {
                    container: Some(pod::DRIVER_CONTAINER.into()),
                    limit_bytes: Some(LIVE_LOG_BYTES),
                    ..LogParams::default()
                };
                let lines: Vec<String> = match inner.pods.logs(driver_name, &lp).await {
                    Ok(text) => text.lines().map(str::to_string).collect(),
                    Err(kube::Error::Api(s)) if s.code == 404 => vec![],
                    // The container has not started: the API says why.
                    Err(kube::Error::Api(s)) if s.code == 400 => {
                        vec![format!("kindling: no log yet: {}", s.message)]
                    }
                    Err(e) => return Err(inner.io("cannot read the driver's log", e)),
                };
                DriverLog::new().lines(lines)
            }
        };
        if let Some(end) = inner.logs.read_end(driver_name) {
            log = log.line(end);
        }
        log.read_async(window)
            .await
            .map_err(|e| inner.io("cannot read the driver's kept log", e))
    }
}
