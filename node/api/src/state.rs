//! What every handler shares: the node's core, its drivers, its clusters and metrics, and
//! the helpers that several routes use (accepting a job, reading one, its driver's log, a
//! statement with a long poll).

use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::forward::Forwarder;
use crate::livy;
use kindling_api_model::model::{self, Caller};
use kindling_auth::{Authenticator, JobRules, Principal};
use kindling_core::clusters::Clusters;
use kindling_core::{Core, DriverLinks, ErrorCode};
use kindling_events::{Job, JobId, Statement, StatementId};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct AppState {
    pub core: Arc<Core>,
    /// The session drivers, through the driver gateway.
    pub gateway: Arc<dyn DriverLinks>,
    /// The cluster registry: which clusters exist, and their backends (for logs).
    pub clusters: Arc<Clusters>,
    pub metrics: PrometheusHandle,
    /// Who callers are.
    pub auth: Arc<Authenticator>,
    /// Who may view and modify which job, and run jobs as someone else.
    pub job_rules: JobRules,
    /// Where registered clusters' credential files must lie.
    pub credentials_dir: std::path::PathBuf,
    /// Long polls that may wait at once; past them a long poll answers at once.
    pub long_polls: Arc<tokio::sync::Semaphore>,
    /// How long an event stream may wait on its client before it is closed.
    pub stream_stall: Duration,
    /// The secret members prove to each other, here on the requests they forward.
    pub cluster_secret: Option<Arc<kindling_raft::ClusterSecret>>,
    /// This node's Raft member: membership, leader, term.
    pub cluster: Arc<kindling_raft::ClusterMember>,
    pub forwarder: Forwarder,
    /// The API tokens issued to users.
    pub tokens: Arc<kindling_core::tokens::TokenBook>,
}

impl AppState {
    /// Who a new job is for: the authenticated user (none without authentication).
    pub fn caller(&self, who: &Principal, params: &Params) -> Caller {
        Caller {
            owner: who.user.clone(),
            do_as: params.str("doAs").map(str::to_string),
        }
    }

    /// Validates a create request and accepts the job (Livy's and the native API alike).
    pub async fn accept(
        &self,
        who: &Principal,
        query: Option<&str>,
        req: impl model::CreateJob,
    ) -> ApiResult<Job> {
        let params = Params::from_query(query)?;
        let mut spec = req.into_spec(&self.caller(who, &params))?;
        if let Some(proxy_user) = &spec.proxy_user {
            self.job_rules
                .may_impersonate(who, proxy_user)
                .map_err(|d| ApiError::new(ErrorCode::Forbidden, d.0))?;
        }
        // Every rule of the domain, so nothing that would fail at launch is accepted.
        spec.check().map_err(|e| ApiError::bad_request(e.0))?;
        let cluster = self.job_cluster(&mut spec).await?;
        if cluster.config.kind == kindling_events::ClusterKind::Local {
            // Elsewhere, local paths are paths on the cluster's machines or in its image.
            livy::check_local_files(&spec)?;
        }
        Ok(self.core.submit(spec, who.user.clone()).await?)
    }

    /// The cluster a new job names (its `kindling.cluster` conf key, else the default
    /// cluster), recorded in that key; refuses a cluster that does not exist and a driver
    /// bigger than the cluster's whole capacity.
    async fn job_cluster(
        &self,
        spec: &mut kindling_events::JobSpec,
    ) -> ApiResult<kindling_events::Cluster> {
        use kindling_events::plan::{never_fits, Demand, Limit};
        let name = spec.cluster().to_string();
        // The request is well formed; what refuses it is the registry as it is now (a
        // cluster that does not exist, or is smaller than the driver): a 409.
        let conflict = |msg: String| ApiError::new(ErrorCode::Conflict, msg);
        let Some(cluster) = self.clusters.catalog.get(&name).await? else {
            return Err(conflict(format!(
                "cluster '{name}' (from cluster or conf.{}) does not exist; the clusters are: {}",
                kindling_events::CLUSTER_CONF_KEY,
                self.clusters.catalog.names().join(", ")
            )));
        };
        spec.resources
            .conf
            .insert(kindling_events::CLUSTER_CONF_KEY.into(), name.clone());
        inherit_restart_policy(spec, &cluster.config.spark_conf);
        let demand = Demand::of(spec, &cluster.config.spark_conf);
        match never_fits(&cluster.config.capacity, demand) {
            None => Ok(cluster),
            Some(Limit::Cores(n)) => Err(conflict(format!(
                "driverCores: the driver needs {} cores but cluster '{name}' allows {n} driver \
                 cores in all",
                demand.cores
            ))),
            Some(limit) => Err(conflict(format!(
                "driverMemory: the driver needs {} MB but cluster '{name}' allows {} MB of \
                 driver memory in all",
                demand.memory_mb,
                match limit {
                    Limit::MemoryMb(n) => n,
                    _ => 0,
                }
            ))),
        }
    }

    /// Where a job that waits for a driver stands in its queue (1 first), if it waits.
    pub async fn queue_position(&self, job: &Job) -> ApiResult<Option<usize>> {
        if job.state != kindling_events::JobState::NotStarted || job.kill_requested {
            return Ok(None);
        }
        let cluster = job.spec.cluster();
        let Some(c) = self.clusters.catalog.get(cluster).await? else {
            return Ok(None);
        };
        let queue = kindling_events::queues::queue_of(&job.spec);
        let views = self
            .clusters
            .commands
            .queue_views(cluster, &c.config.spark_conf)
            .await?;
        Ok(views
            .iter()
            .find(|v| v.name == queue)
            .and_then(|v| v.waiting.iter().position(|w| w.id == job.id))
            .map(|i| i + 1))
    }

    /// The user a listing is limited to: `None` when `who` may view every job.
    pub fn visible_to(&self, who: &Principal) -> Option<String> {
        if self.job_rules.views_all(who) {
            None
        } else {
            who.user.clone()
        }
    }

    /// A job by id: the write model's on the leader, the projections' elsewhere.
    pub async fn job(&self, id: JobId) -> ApiResult<Job> {
        Ok(self.core.job(id).await?)
    }

    /// Reads a statement once the projections have caught up with the log, optionally
    /// waiting up to `wait` for it to end (long poll).
    pub async fn statement(
        &self,
        job: JobId,
        id: StatementId,
        wait: Duration,
    ) -> ApiResult<Statement> {
        // Each waiting poll holds a connection and a task: past the cap, answer now.
        let permit = match wait.is_zero() {
            true => None,
            false => self.long_polls.clone().try_acquire_owned().ok(),
        };
        let wait = if permit.is_some() {
            wait
        } else {
            Duration::ZERO
        };
        let _waiting = permit.as_ref().map(|_| crate::metrics::long_poll_waiting());
        let deadline = Instant::now() + wait;
        let mut projected = self.core.projected();
        loop {
            self.core.read_barrier().await?;
            let s = self
                .core
                .reads()
                .statement(job, id)
                .await?
                .ok_or_else(|| ApiError::not_found("Statement", &id.to_string()))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if s.state.is_terminal() || left.is_zero() {
                return Ok(s);
            }
            projected.borrow_and_update();
            let _ = tokio::time::timeout(left, projected.changed()).await;
        }
    }
}

/// A batch that sets no restart policy of its own runs under its cluster's, fixed in its
/// spec when it is accepted (a later change of the cluster does not change it).
fn inherit_restart_policy(
    spec: &mut kindling_events::JobSpec,
    cluster_conf: &std::collections::BTreeMap<String, String>,
) {
    use kindling_events::restart::KEYS;
    if spec.is_session() {
        return;
    }
    let conf = &mut spec.resources.conf;
    if KEYS.iter().any(|k| conf.contains_key(*k)) {
        return;
    }
    for key in KEYS {
        if let Some(v) = cluster_conf.get(key) {
            conf.insert(key.to_string(), v.clone());
        }
    }
}
