//! The standalone backend of a registered cluster: its settings read from the cluster's
//! configuration, the runner's defaults from the node.

use crate::{StandaloneBackend, StandaloneConfig};
use kindling_backend::settings::parse_duration;
use kindling_backend::{BackendEvent, ClusterBackend, NodeContext};
use kindling_events::Cluster;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The backend a standalone cluster's configuration describes.
pub fn from_cluster(
    ctx: &NodeContext,
    cluster: &Cluster,
    events: mpsc::UnboundedSender<BackendEvent>,
    stop: CancellationToken,
) -> Result<Arc<dyn ClusterBackend>, String> {
    let c = &cluster.config;
    let name = &cluster.name;
    let setting = |key: &str| c.setting(key).map(str::to_string);
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
            default_conf: c.spark_conf.clone(),
            python: setting("python").unwrap_or_else(|| "python3".into()),
            runner: setting("runner").unwrap_or_else(|| ctx.runner.display().to_string()),
            proto: setting("proto").unwrap_or_else(|| proto.display().to_string()),
            poll_interval: poll,
        },
        events,
        stop,
    )))
}
