//! Registry commands (register, update, remove a cluster, set its queues), decided on the leader like every
//! command on existing state: it holds the registry's write model, reloaded from the
//! projections before each decision (they are caught up with the log first, and a lock keeps
//! decisions one at a time), so two racing requests for one name cannot both succeed.

use super::catalog::Catalog;
use crate::core::Core;
use crate::error::{Error, Result};
use kindling_events::plan::{Demand, Usage};
use kindling_events::{Aggregate, JobState, Origin, Registry, RegistryCommand};
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
            | RegistryCommand::Remove { name }
            | RegistryCommand::SetQueues { name, .. } => name.clone(),
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

    pub(super) fn core(&self) -> &Core {
        &self.core
    }

    pub(super) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How many jobs on cluster `name` have not ended (queued, starting or running).
    pub async fn active_jobs(&self, name: &str) -> Result<usize> {
        Ok(self.load(name, &Default::default()).await?.active())
    }

    /// What cluster `name` runs and what waits for it; drivers sized as the scheduler sizes
    /// them, with the cluster's Spark conf `conf`.
    pub async fn load(
        &self,
        name: &str,
        conf: &std::collections::BTreeMap<String, String>,
    ) -> Result<ClusterLoad> {
        self.core.catch_up().await;
        let query = JobQuery {
            include_deleted: true,
            limit: usize::MAX,
            ..Default::default()
        };
        let jobs = self.core.reads().jobs(&query).await?;
        let mut load = ClusterLoad::default();
        for job in jobs.items.iter().filter(|j| j.spec.cluster() == name) {
            match job.state {
                s if s.is_terminal() => {}
                JobState::NotStarted => load.queued += 1,
                _ => load.in_use.add(Demand::of(&job.spec, conf)),
            }
        }
        Ok(load)
    }
}

/// What one cluster runs (its drivers and what they take) and how many jobs wait for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterLoad {
    pub in_use: Usage,
    pub queued: usize,
}

impl ClusterLoad {
    /// Jobs that have not ended.
    pub fn active(&self) -> usize {
        self.queued + self.in_use.drivers as usize
    }
}
