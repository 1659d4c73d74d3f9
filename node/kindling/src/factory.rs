//! Which adapter each kind of cluster gets: the node's [`BackendFactory`], the one place
//! that knows every backend crate.

use async_trait::async_trait;
use kindling_backend::{BackendEvent, BackendFactory, ClusterBackend, NodeContext};
use kindling_events::{Cluster, ClusterKind};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct NodeBackends(pub NodeContext);

#[async_trait]
impl BackendFactory for NodeBackends {
    async fn build(
        &self,
        cluster: &Cluster,
        events: mpsc::UnboundedSender<BackendEvent>,
        stop: CancellationToken,
    ) -> Result<Arc<dyn ClusterBackend>, String> {
        let ctx = &self.0;
        match cluster.config.kind {
            ClusterKind::Local => Ok(kindling_backend_local::from_cluster(ctx, cluster, events)),
            ClusterKind::Standalone => {
                kindling_backend_standalone::from_cluster(ctx, cluster, events, stop)
            }
            ClusterKind::Kubernetes => {
                kindling_backend_kubernetes::from_cluster(ctx, cluster, events, stop).await
            }
            ClusterKind::Yarn => kindling_backend_yarn::from_cluster(ctx, cluster, events, stop),
        }
    }
}
