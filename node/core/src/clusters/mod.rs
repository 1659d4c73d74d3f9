//! The cluster registry on a node: which Spark clusters exist ([`catalog`]), how a client
//! changes them ([`commands`], on the leader), what its queues hold ([`queue_view`]), and the backend instance that runs each
//! cluster's drivers (`kindling_backend::Backends`). The registry itself is the domain's
//! `Registry`, folded from the log; nothing here stores anything.
//!
//! It must not decide anything about jobs: the scheduler routes a job's driver to its
//! cluster's backend, and the API validates a job's cluster through the catalog.

pub mod catalog;
pub mod commands;
pub mod queue_view;

use catalog::Catalog;
use commands::RegistryCommands;
use kindling_backend::Backends;
use std::sync::Arc;

/// The registry's pieces, shared by the API and the scheduler.
pub struct Clusters {
    pub catalog: Arc<Catalog>,
    pub backends: Arc<Backends>,
    pub commands: RegistryCommands,
}

impl Clusters {
    pub fn new(
        catalog: Arc<Catalog>,
        backends: Arc<Backends>,
        core: Arc<crate::core::Core>,
    ) -> Self {
        Clusters {
            commands: RegistryCommands::new(core, catalog.clone()),
            catalog,
            backends,
        }
    }
}
