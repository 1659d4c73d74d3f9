//! Registry commands (register, update, remove a cluster), decided on the leader like every
//! command on existing state: it holds the registry's write model, reloaded from the
//! projections before each decision (they are caught up with the log first, and a lock keeps
//! decisions one at a time), so two racing requests for one name cannot both succeed.

use super::catalog::Catalog;
use crate::core::Core;
use crate::error::{Error, Result};
use kindling_events::{Aggregate, Origin, Registry, RegistryCommand};
use kindling_store::JobQuery;
use std::sync::Arc;

pub struct RegistryCommands {
    core: Arc<Core>,
    catalog: Arc<Catalog>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl RegistryCommands {
    pub fn new(core: Arc<Core>, catalog: Arc<Catalog>) -> Self {
        RegistryCommands {
            core,
            catalog,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Decides `cmd`, asked for by `actor`, and appends what it decided; returns the
    /// registry after it.
    pub async fn execute(
        &self,
        cmd: RegistryCommand,
        actor: Option<String>,
    ) -> Result<Arc<Registry>> {
        if self.core.leading_term().is_none() {
            let leader = self.core.leadership().borrow().leader;
            return Err(Error::NotLeader(leader));
        }
        let _one = self.one_at_a_time.lock().await;
        let registry = self.catalog.registry().await?;
        let name = match &cmd {
            RegistryCommand::Register { name, .. }
            | RegistryCommand::Update { name, .. }
            | RegistryCommand::Remove { name } => name.clone(),
        };
        let active = self.active_jobs(&name).await?;
        let events = registry.decide(cmd, active)?;
        if events.is_empty() {
            return Ok(registry);
        }
        let new = self.core.new_events(
            Aggregate::Registry,
            registry.version,
            Origin::Api,
            actor,
            events,
        );
        // Through the leader's writer, with its term: a deposed leader's late change of the
        // registry is fenced like any of its commands.
        let envs = self.core.leader_append(new).await?;
        let mut next = (*registry).clone();
        for env in &envs {
            next.apply(env);
            tracing::info!(event = env.event.name(), cluster = %name, position = env.position.0, "cluster registry changed");
        }
        let next = Arc::new(next);
        self.catalog.remember(next.clone());
        Ok(next)
    }

    /// How many jobs on cluster `name` have not ended (queued, starting or running).
    pub async fn active_jobs(&self, name: &str) -> Result<usize> {
        self.core.catch_up().await;
        let query = JobQuery {
            include_deleted: true,
            limit: usize::MAX,
            ..Default::default()
        };
        let jobs = self.core.reads().jobs(&query).await?;
        Ok(jobs
            .items
            .iter()
            .filter(|j| !j.state.is_terminal() && j.spec.cluster() == name)
            .count())
    }
}
