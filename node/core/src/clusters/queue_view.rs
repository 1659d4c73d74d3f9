//! What a cluster's queues hold now, read from the projections: each queue's configuration,
//! what its drivers take, and its waiting jobs in their order (priority, then submission).
//! Shares between users may let another user's job go first; the scheduler's own reason for
//! each waiting job is in the job.

use super::commands::RegistryCommands;
use crate::error::Result;
use kindling_events::plan::{Demand, Usage};
use kindling_events::queues::{priority_of, queue_of};
use kindling_events::{Job, JobState, QueueConfig};
use kindling_store::JobQuery;
use std::collections::BTreeMap;

/// One queue of a cluster, now.
#[derive(Debug, Clone)]
pub struct QueueView {
    pub name: String,
    pub config: QueueConfig,
    /// Whether the cluster defines it (else it has the defaults: weight 1, no limits).
    pub defined: bool,
    pub in_use: Usage,
    /// Its waiting jobs, first in line first.
    pub waiting: Vec<Job>,
}

impl RegistryCommands {
    /// Every queue of cluster `name` that is defined or has active jobs, sizing drivers with
    /// the cluster's Spark conf `conf`.
    pub async fn queue_views(
        &self,
        name: &str,
        conf: &BTreeMap<String, String>,
    ) -> Result<Vec<QueueView>> {
        self.core().read_barrier().await?;
        let registry = self.catalog().registry().await?;
        let queues = registry.queues(name);
        let mut views: BTreeMap<String, QueueView> = queues
            .queues
            .iter()
            .map(|(q, config)| {
                let view = QueueView {
                    name: q.clone(),
                    config: config.clone(),
                    defined: true,
                    in_use: Usage::default(),
                    waiting: vec![],
                };
                (q.clone(), view)
            })
            .collect();
        let query = JobQuery {
            cluster: Some(name.to_string()),
            limit: usize::MAX,
            ..Default::default()
        };
        for job in self.core().reads().jobs(&query).await?.items {
            if job.state.is_terminal() {
                continue;
            }
            let q = queue_of(&job.spec).to_string();
            let view = views.entry(q.clone()).or_insert_with(|| QueueView {
                name: q,
                config: QueueConfig::default(),
                defined: false,
                in_use: Usage::default(),
                waiting: vec![],
            });
            if job.state == JobState::NotStarted {
                view.waiting.push(job);
            } else {
                view.in_use.add(Demand::of(&job.spec, conf));
            }
        }
        let mut out: Vec<QueueView> = views.into_values().collect();
        for view in &mut out {
            view.waiting.sort_by_key(|j| {
                (
                    -priority_of(&j.spec.resources.conf).unwrap_or(0),
                    j.submitted_at_ms,
                    j.id,
                )
            });
        }
        Ok(out)
    }
}
