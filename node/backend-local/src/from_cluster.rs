//! The local backend of a registered (or the built-in) cluster: its settings read from the
//! cluster's configuration, the rest from the node.

use crate::{LocalBackend, LocalConfig};
use kindling_backend::{BackendEvent, ClusterBackend, NodeContext};
use kindling_events::Cluster;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The backend a local cluster's configuration describes.
pub fn from_cluster(
    ctx: &NodeContext,
    cluster: &Cluster,
    events: mpsc::UnboundedSender<BackendEvent>,
) -> Arc<dyn ClusterBackend> {
    let c = &cluster.config;
    Arc::new(LocalBackend::new(
        LocalConfig {
            spark_home: ctx.spark_home.clone(),
            python: ctx.python.clone(),
            master: c
                .setting("master")
                .map(str::to_string)
                .unwrap_or_else(|| ctx.local_master.clone()),
            drivers_dir: ctx.drivers_dir.clone(),
            runner: ctx.runner.clone(),
            default_conf: c.spark_conf.clone(),
            // Driver names are unique in the Kindling cluster, so its local clusters share one
            // tag (and one drivers directory).
            cluster_id: ctx.kindling_id.clone(),
        },
        events,
    ))
}
