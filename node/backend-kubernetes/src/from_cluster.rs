//! The Kubernetes backend of a registered cluster: its settings and credentials read from the
//! cluster's configuration, where logs are kept from the node.

use crate::{KubeAuth, KubernetesBackend, KubernetesConfig, PodRetention, IN_CLUSTER_MASTER};
use kindling_backend::settings::parse_duration;
use kindling_backend::{BackendEvent, ClusterBackend, NodeContext};
use kindling_events::{Cluster, Credentials};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The backend a Kubernetes cluster's configuration describes.
pub async fn from_cluster(
    ctx: &NodeContext,
    cluster: &Cluster,
    events: mpsc::UnboundedSender<BackendEvent>,
    stop: CancellationToken,
) -> Result<Arc<dyn ClusterBackend>, String> {
    let c = &cluster.config;
    let name = &cluster.name;
    let setting = |key: &str| c.setting(key).map(str::to_string);
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
        default_conf: c.spark_conf.clone(),
        runner: setting("runner")
            .unwrap_or_else(|| "local:///opt/kindling/kindling_runner.py".into()),
        retention,
        logs_dir: ctx.kept_logs_dir.clone(),
        in_cluster_master: setting("inClusterMaster")
            .unwrap_or_else(|| IN_CLUSTER_MASTER.to_string()),
    };
    let backend = KubernetesBackend::new(cfg, events, stop)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(backend))
}
