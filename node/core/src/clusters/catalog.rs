//! The clusters as this node sees them: the built-in `local` cluster (the node's own local
//! backend, from its flags) and the registry as the projections hold it. Submissions resolve
//! a job's cluster here, so the registry is cached; a name the cache does not know is looked
//! up again after the projections catch up, so a cluster registered a moment ago is found.

use crate::core::Core;
use crate::error::Result;
use kindling_events::{Cluster, Registry, DEFAULT_CLUSTER};
use parking_lot::Mutex;
use std::sync::Arc;

pub struct Catalog {
    builtin: Cluster,
    core: Arc<Core>,
    cached: Mutex<Arc<Registry>>,
}

impl Catalog {
    pub fn new(builtin: Cluster, core: Arc<Core>) -> Self {
        debug_assert_eq!(builtin.name, DEFAULT_CLUSTER);
        Catalog {
            builtin,
            core,
            cached: Mutex::default(),
        }
    }

    pub fn builtin(&self) -> &Cluster {
        &self.builtin
    }

    /// The registry as the projections hold it once they reflect the log as this node knows
    /// it; refreshes the cache.
    pub async fn registry(&self) -> Result<Arc<Registry>> {
        self.core.catch_up().await;
        let fresh = Arc::new(self.core.reads().registry().await?);
        self.remember(fresh.clone());
        Ok(fresh)
    }

    /// Keeps `registry` unless the cache already holds a later one.
    pub fn remember(&self, registry: Arc<Registry>) {
        let mut cached = self.cached.lock();
        if registry.version >= cached.version {
            *cached = registry;
        }
    }

    /// The cluster called `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Cluster>> {
        if name == DEFAULT_CLUSTER {
            return Ok(Some(self.builtin.clone()));
        }
        let cached = self.cached.lock().clone();
        if let Some(c) = cached.get(name) {
            return Ok(Some(c.clone()));
        }
        Ok(self.registry().await?.get(name).cloned())
    }

    /// Every cluster, the built-in one first, fresh from the projections.
    pub async fn all(&self) -> Result<Vec<Cluster>> {
        let registry = self.registry().await?;
        Ok(std::iter::once(self.builtin.clone())
            .chain(registry.clusters.values().cloned())
            .collect())
    }

    /// The names of every cluster, for messages about an unknown one.
    pub fn names(&self) -> Vec<String> {
        let cached = self.cached.lock().clone();
        std::iter::once(self.builtin.name.clone())
            .chain(cached.clusters.keys().cloned())
            .collect()
    }
}
