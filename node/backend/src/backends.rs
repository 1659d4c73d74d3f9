//! One backend instance per cluster on this node, built from the cluster's configuration the
//! first time something needs it (the scheduler's launches, a log read) and rebuilt when the
//! registry hands out a newer revision of it; the instance it replaces is stopped (its
//! watches and pollers end). Every instance reports to the node's one stream of
//! `BackendEvent`s, which the scheduler reads: job ids are unique across clusters.
//!
//! A build that fails (an unreadable kubeconfig, a backend not in this build) is not kept:
//! the next use tries again, and its error, which names the cluster, reaches the job or the
//! API as the cause. Which adapter a kind of cluster gets is the [`BackendFactory`]'s
//! business, wired by the node.

use crate::{BackendEvent, ClusterBackend};
use async_trait::async_trait;
use kindling_events::{Cluster, LogPosition};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Builds the backend a cluster's configuration describes. Every backend it builds reports
/// to `events`; `stop` ends its watches and pollers.
#[async_trait]
pub trait BackendFactory: Send + Sync + 'static {
    async fn build(
        &self,
        cluster: &Cluster,
        events: mpsc::UnboundedSender<BackendEvent>,
        stop: CancellationToken,
    ) -> Result<Arc<dyn ClusterBackend>, String>;
}

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
    /// Where drivers' logs are kept once the cluster no longer serves them (Kubernetes pods
    /// that are gone, YARN applications that ended).
    pub kept_logs_dir: PathBuf,
}

struct Slot {
    revision: LogPosition,
    stop: CancellationToken,
    built: tokio::sync::Mutex<Option<Arc<dyn ClusterBackend>>>,
}

pub struct Backends {
    factory: Arc<dyn BackendFactory>,
    events: mpsc::UnboundedSender<BackendEvent>,
    shutdown: CancellationToken,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Backends {
    pub fn new(
        factory: Arc<dyn BackendFactory>,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Self {
        Backends {
            factory,
            events,
            shutdown,
            slots: Mutex::default(),
        }
    }

    /// The backend of `cluster`, built for its revision (or a newer one already built).
    pub async fn get(&self, cluster: &Cluster) -> Result<Arc<dyn ClusterBackend>, String> {
        let slot = {
            let mut slots = self.slots.lock();
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
        let b = self
            .factory
            .build(cluster, self.events.clone(), slot.stop.clone())
            .await
        .inspect_err(|e| tracing::warn!(cluster = %cluster.name, error = %e, "cannot build the cluster's backend"))?;
        *built = Some(b.clone());
        Ok(b)
    }

    /// Stops and drops the backend of a cluster that left the registry.
    pub fn forget(&self, name: &str) {
        if let Some(slot) = self.slots.lock().remove(name) {
            slot.stop.cancel();
        }
    }
}
