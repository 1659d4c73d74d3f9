//! One backend instance per cluster on this node, built from the cluster's configuration the
//! first time something needs it (the scheduler's launches, a log read) and rebuilt when the
//! registry hands out a newer revision of it; the instance it replaces is stopped (its
//! watches and pollers end). Every instance reports to the node's one stream of
//! `BackendEvent`s, which the scheduler reads: job ids are unique across clusters.
//!
//! A build that fails (an unreadable kubeconfig, a backend not in this build) is not kept:
//! the next use tries again, and its error, which names the cluster, reaches the job or the
//! API as the cause.

use super::settings::parse_duration;
use crate::backend::kubernetes::{KubeAuth, KubernetesBackend, KubernetesConfig, PodRetention};
use crate::backend::local::{LocalBackend, LocalConfig};
use crate::backend::standalone::{StandaloneBackend, StandaloneConfig};
use crate::backend::yarn::{self, YarnAuth, YarnBackend, YarnConfig};
use crate::backend::{BackendEvent, ClusterBackend};
use kindling_events::{Cluster, ClusterKind, Credentials, LogPosition};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What backends take from the node rather than from the registry.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// The Kindling cluster's id: drivers are tagged with it, so two Kindling clusters that
    /// share a Spark cluster never take each other's drivers for their own.
    pub kindling_id: String,
    pub spark_home: PathBuf,
    pub python: PathBuf,
    pub local_master: String,
    pub drivers_dir: PathBuf,
    /// The session runner installed on this node (its `driver.proto` under
    /// `kindling/driver/v1/` beside it).
    pub runner: PathBuf,
    /// Where Kubernetes driver logs are kept once their pods are gone.
    pub kube_logs_dir: PathBuf,
}

struct Slot {
    revision: LogPosition,
    stop: CancellationToken,
    built: tokio::sync::Mutex<Option<Arc<dyn ClusterBackend>>>,
}

pub struct Backends {
    ctx: NodeContext,
    events: mpsc::UnboundedSender<BackendEvent>,
    shutdown: CancellationToken,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Set only by `fixed` (tests): the one backend of every cluster.
    fixed: Option<Arc<dyn ClusterBackend>>,
}

impl Backends {
    pub fn new(
        ctx: NodeContext,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Self {
        Backends {
            ctx,
            events,
            shutdown,
            slots: Mutex::default(),
            fixed: None,
        }
    }

    /// Backends that are all `backend`, whatever the cluster: for the scheduler simulation,
    /// whose clusters are a model.
    #[cfg(test)]
    pub fn fixed(
        backend: Arc<dyn ClusterBackend>,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Self {
        let ctx = NodeContext {
            kindling_id: "sim".into(),
            spark_home: PathBuf::new(),
            python: PathBuf::new(),
            local_master: String::new(),
            drivers_dir: PathBuf::new(),
            runner: PathBuf::new(),
            kube_logs_dir: PathBuf::new(),
        };
        Backends {
            ctx,
            events,
            shutdown,
            slots: Mutex::default(),
            fixed: Some(backend),
        }
    }

    /// The backend of `cluster`, built for its revision (or a newer one already built).
    pub async fn get(&self, cluster: &Cluster) -> Result<Arc<dyn ClusterBackend>, String> {
        if let Some(b) = &self.fixed {
            return Ok(b.clone());
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap();
            match slots.get(&cluster.name) {
                Some(s) if s.revision >= cluster.revision => s.clone(),
                old => {
                    if let Some(old) = old {
                        old.stop.cancel();
                        tracing::info!(cluster = %cluster.name, revision = cluster.revision.0, "cluster changed; its backend is rebuilt");
                    }
                    let slot = Arc::new(Slot {
                        revision: cluster.revision,
                        stop: self.shutdown.child_token(),
                        built: tokio::sync::Mutex::new(None),
                    });
                    slots.insert(cluster.name.clone(), slot.clone());
                    slot
                }
            }
        };
        let mut built = slot.built.lock().await;
        if let Some(b) = built.as_ref() {
            return Ok(b.clone());
        }
        let b = build(
            &self.ctx,
            cluster,
            self.events.clone(),
            slot.stop.clone(),
        )
        .await
        .inspect_err(|e| tracing::warn!(cluster = %cluster.name, error = %e, "cannot build the cluster's backend"))?;
        *built = Some(b.clone());
        Ok(b)
    }

    /// Stops and drops the backend of a cluster that left the registry.
    pub fn forget(&self, name: &str) {
        if let Some(slot) = self.slots.lock().unwrap().remove(name) {
            slot.stop.cancel();
        }
    }
}

/// Builds the backend a cluster's configuration describes.
async fn build(
    ctx: &NodeContext,
    cluster: &Cluster,
    events: mpsc::UnboundedSender<BackendEvent>,
    stop: CancellationToken,
) -> Result<Arc<dyn ClusterBackend>, String> {
    let c = &cluster.config;
    let name = &cluster.name;
    let setting = |key: &str| c.setting(key).map(str::to_string);
    let conf: BTreeMap<String, String> = c.spark_conf.clone();
    match c.kind {
        ClusterKind::Local => Ok(Arc::new(LocalBackend::new(
            LocalConfig {
                spark_home: ctx.spark_home.clone(),
                python: ctx.python.clone(),
                master: setting("master").unwrap_or_else(|| ctx.local_master.clone()),
                drivers_dir: ctx.drivers_dir.clone(),
                runner: ctx.runner.clone(),
                default_conf: conf,
                // Driver names are unique in the Kindling cluster, so its local clusters
                // share one tag (and one drivers directory).
                cluster_id: ctx.kindling_id.clone(),
            },
            events,
        ))),
        ClusterKind::Standalone => {
            let proto = ctx
                .runner
                .parent()
                .map(|d| d.join("kindling/driver/v1/driver.proto"))
                .unwrap_or_default();
            let poll = setting("pollInterval")
                .and_then(|v| parse_duration(&v))
                .unwrap_or(Duration::from_secs(2));
            let required = |key: &str| {
                setting(key).ok_or_else(|| format!("cluster {name}: connection.{key} is not set"))
            };
            Ok(Arc::new(StandaloneBackend::new(
                StandaloneConfig {
                    rest_url: required("restUrl")?,
                    web_ui_url: required("webUiUrl")?,
                    cluster_id: ctx.kindling_id.clone(),
                    default_conf: conf,
                    python: setting("python").unwrap_or_else(|| "python3".into()),
                    runner: setting("runner").unwrap_or_else(|| ctx.runner.display().to_string()),
                    proto: setting("proto").unwrap_or_else(|| proto.display().to_string()),
                    poll_interval: poll,
                },
                events,
                stop,
            )))
        }
        ClusterKind::Kubernetes => {
            let auth = match &c.credentials {
                Credentials::Kubeconfig { path, context } => KubeAuth::Kubeconfig {
                    path: path.into(),
                    context: context.clone(),
                },
                Credentials::TokenFile { path } => KubeAuth::TokenFile(path.into()),
                Credentials::ClientCertificate { cert, key } => KubeAuth::ClientCertificate {
                    cert: cert.into(),
                    key: key.into(),
                },
                Credentials::None => KubeAuth::Anonymous,
                Credentials::Keytab { .. } => {
                    return Err(format!(
                        "cluster {name}: a keytab does not authenticate to Kubernetes"
                    ))
                }
            };
            let retention = match setting("podRetention").as_deref() {
                None | Some("keep") => PodRetention::Keep,
                Some(d) => PodRetention::DeleteAfter(parse_duration(d).ok_or_else(|| {
                    format!("cluster {name}: connection.podRetention {d:?} is not a duration")
                })?),
            };
            let cfg = KubernetesConfig {
                name: name.clone(),
                cluster_id: ctx.kindling_id.clone(),
                api_server: setting("apiServer"),
                namespace: setting("namespace").unwrap_or_else(|| "default".into()),
                auth,
                ca_file: setting("caFile").map(PathBuf::from),
                image: setting("image").unwrap_or_default(),
                image_pull_policy: setting("imagePullPolicy"),
                service_account: setting("serviceAccount").unwrap_or_else(|| "spark".into()),
                driver_command: None,
                default_conf: conf,
                runner: setting("runner")
                    .unwrap_or_else(|| "local:///opt/kindling/kindling_runner.py".into()),
                retention,
                logs_dir: ctx.kube_logs_dir.clone(),
                in_cluster_master: setting("inClusterMaster")
                    .unwrap_or_else(|| crate::backend::kubernetes::IN_CLUSTER_MASTER.to_string()),
            };
            let backend = KubernetesBackend::new(cfg, events, stop)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(backend))
        }
        ClusterKind::Yarn => {
            let auth = match &c.credentials {
                Credentials::Keytab { principal, keytab } => YarnAuth::Kerberos {
                    principal: principal.clone(),
                    keytab: keytab.into(),
                },
                Credentials::None => YarnAuth::Simple {
                    user: setting("user").ok_or_else(|| {
                        format!("cluster {name}: connection.user is required without a keytab")
                    })?,
                },
                other => {
                    return Err(format!(
                        "cluster {name}: {} credentials do not authenticate to YARN",
                        other.kind_name()
                    ))
                }
            };
            let required = |key: &str| {
                setting(key).ok_or_else(|| format!("cluster {name}: connection.{key} is not set"))
            };
            let poll = match setting("pollInterval") {
                None => yarn::DEFAULT_POLL_INTERVAL,
                Some(v) => parse_duration(&v).ok_or_else(|| {
                    format!("cluster {name}: connection.pollInterval {v:?} is not a duration")
                })?,
            };
            let cfg = YarnConfig {
                name: name.clone(),
                cluster_id: ctx.kindling_id.clone(),
                spark_home: ctx.spark_home.clone(),
                hadoop_conf_dir: required("hadoopConfDir")?.into(),
                resource_managers: required("resourceManagers")?
                    .split(',')
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect(),
                queue: setting("queue"),
                auth,
                default_conf: conf,
                logs_dir: ctx.kube_logs_dir.clone(),
                runner: ctx.runner.clone(),
                log_server_url: setting("logServerUrl"),
                poll_interval: poll,
                submit_timeout: yarn::DEFAULT_SUBMIT_TIMEOUT,
                log_wait: yarn::DEFAULT_LOG_WAIT,
            };
            let backend = YarnBackend::new(cfg, events, stop).map_err(|e| e.to_string())?;
            Ok(Arc::new(backend))
        }
    }
}
