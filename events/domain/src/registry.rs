//! The registry of Spark clusters as an aggregate: what a client may ask of it
//! ([`RegistryCommand`]), what `decide` allows (names unique, the built-in cluster fixed, no
//! move or removal under active jobs) and how `apply` folds its events, queues included.

use crate::cluster::{Cluster, ClusterConfig, DEFAULT_CLUSTER};
use crate::error::{DomainError, Result};
use crate::event::{Aggregate, Envelope, Event};
use crate::ids::LogPosition;
use crate::job::Applied;
use crate::queues::Queues;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a client asks of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryCommand {
    Register {
        name: String,
        config: ClusterConfig,
    },
    Update {
        name: String,
        config: ClusterConfig,
    },
    Remove {
        name: String,
    },
    /// How the cluster (the built-in one too) shares its capacity.
    SetQueues {
        name: String,
        queues: Queues,
    },
}

/// Every registered cluster: the write model the leader decides against, and the document
/// projections store.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registry {
    pub clusters: BTreeMap<String, Cluster>,
    /// Number of registry events applied (the aggregate version).
    pub version: u64,
    /// The last log position reflected; meaningful once `version > 0`.
    pub applied: LogPosition,
    /// How each cluster that set them shares its capacity (the built-in cluster included).
    pub queues: BTreeMap<String, Queues>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    /// How the cluster called `name` shares its capacity (the defaults if it set nothing).
    pub fn queues(&self, name: &str) -> Queues {
        self.queues.get(name).cloned().unwrap_or_default()
    }

    /// Decides `cmd`. `active_jobs` is how many jobs on the named cluster have not ended (the
    /// caller counts them): a cluster with such jobs cannot be removed or moved. An update
    /// that changes nothing decides nothing.
    pub fn decide(&self, cmd: RegistryCommand, active_jobs: usize) -> Result<Vec<Event>> {
        let name = match &cmd {
            RegistryCommand::Register { name, .. }
            | RegistryCommand::Update { name, .. }
            | RegistryCommand::Remove { name } => name.clone(),
            RegistryCommand::SetQueues { name, queues } => {
                if name != DEFAULT_CLUSTER && !self.clusters.contains_key(name) {
                    return Err(DomainError::UnknownCluster(name.clone()));
                }
                if self.queues(name) == *queues {
                    return Ok(vec![]);
                }
                return Ok(vec![Event::ClusterQueuesSet {
                    name: name.clone(),
                    queues: queues.clone(),
                }]);
            }
        };
        if name == DEFAULT_CLUSTER {
            return Err(DomainError::BuiltInCluster(name));
        }
        let existing = self.clusters.get(&name);
        match cmd {
            RegistryCommand::Register { name, config } => {
                if existing.is_some() {
                    return Err(DomainError::ClusterExists(name));
                }
                Ok(vec![Event::ClusterRegistered { name, config }])
            }
            RegistryCommand::Update { name, config } => {
                let Some(existing) = existing else {
                    return Err(DomainError::UnknownCluster(name));
                };
                if existing.config == config {
                    return Ok(vec![]);
                }
                if active_jobs > 0 && existing.config.moves_from(&config) {
                    return Err(DomainError::ClusterBusy {
                        name,
                        active: active_jobs,
                        action: "change its type or location",
                    });
                }
                Ok(vec![Event::ClusterUpdated { name, config }])
            }
            RegistryCommand::Remove { name } => {
                if existing.is_none() {
                    return Err(DomainError::UnknownCluster(name));
                }
                if active_jobs > 0 {
                    return Err(DomainError::ClusterBusy {
                        name,
                        active: active_jobs,
                        action: "be deleted",
                    });
                }
                Ok(vec![Event::ClusterRemoved { name }])
            }
            RegistryCommand::SetQueues { .. } => unreachable!("decided above"),
        }
    }

    /// Folds one event in. Events of other aggregates are ignored; so are facts that do not
    /// fit (an update of a cluster that is gone): they can only come from a racing writer.
    pub fn apply(&mut self, env: &Envelope) -> Applied {
        if !env.advances(Aggregate::Registry, &mut self.version, &mut self.applied) {
            return Applied::AlreadyApplied;
        }
        match &env.event {
            Event::ClusterRegistered { name, config } => {
                self.clusters.insert(
                    name.clone(),
                    Cluster {
                        name: name.clone(),
                        config: config.clone(),
                        revision: env.position,
                        registered_at_ms: env.at_ms,
                        updated_at_ms: env.at_ms,
                    },
                );
            }
            Event::ClusterUpdated { name, config } => {
                if let Some(c) = self.clusters.get_mut(name) {
                    c.config = config.clone();
                    c.revision = env.position;
                    c.updated_at_ms = env.at_ms;
                }
            }
            Event::ClusterRemoved { name } => {
                self.clusters.remove(name);
                self.queues.remove(name);
            }
            Event::ClusterQueuesSet { name, queues } => {
                if *queues == Queues::default() {
                    self.queues.remove(name);
                } else {
                    self.queues.insert(name.clone(), queues.clone());
                }
            }
            _ => {}
        }
        Applied::Yes
    }
}
