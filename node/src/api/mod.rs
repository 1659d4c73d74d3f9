//! The REST API: Livy's surface at the root (so sparkmagic, pylivy and Airflow's Livy
//! operator work unchanged) and the native API under `/api/v1`, described by the OpenAPI 3
//! document at `/api/v1/openapi.json`. Handlers validate, call the core, and shape replies;
//! they hold no state of their own.

pub mod cluster_model;
pub mod clusters;
pub mod error;
pub mod extract;
pub mod forward;
pub mod livy;
pub mod model;
pub mod native;
pub mod openapi;

use crate::clusters::Clusters;
use crate::core::Core;
use crate::gateway::Gateway;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use error::{ApiError, ApiResult};
use extract::{BodyLimit, Params};
use kindling_events::{Job, JobId, Statement, StatementId};
use metrics_exporter_prometheus::PrometheusHandle;
use model::Caller;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct AppState {
    pub core: Arc<Core>,
    pub gateway: Arc<Gateway>,
    /// The cluster registry: which clusters exist, and their backends (for logs).
    pub clusters: Arc<Clusters>,
    pub metrics: PrometheusHandle,
    pub trusted_user_header: Option<String>,
    /// This node's Raft member: membership, leader, term.
    pub cluster: Arc<kindling_raft::ClusterMember>,
    pub forwarder: forward::Forwarder,
}

pub type State = axum::extract::State<Arc<AppState>>;

/// Longest a log read waits for a cluster's backend.
const LOG_TIMEOUT: Duration = Duration::from_secs(15);

pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    let livy = Router::new()
        .route("/version", get(livy::version))
        .route("/batches", get(livy::list_batches).post(livy::create_batch))
        .route(
            "/batches/{id}",
            get(livy::get_batch).delete(livy::delete_batch),
        )
        .route("/batches/{id}/state", get(livy::batch_state))
        .route("/batches/{id}/log", get(livy::batch_log))
        .route(
            "/sessions",
            get(livy::list_sessions).post(livy::create_session),
        )
        .route(
            "/sessions/{id}",
            get(livy::get_session).delete(livy::delete_session),
        )
        .route("/sessions/{id}/state", get(livy::session_state))
        .route("/sessions/{id}/log", get(livy::session_log))
        .route(
            "/sessions/{id}/statements",
            get(livy::list_statements).post(livy::create_statement),
        )
        .route("/sessions/{id}/statements/{sid}", get(livy::get_statement))
        .route(
            "/sessions/{id}/statements/{sid}/cancel",
            post(livy::cancel_statement),
        )
        .route("/sessions/{id}/completion", post(livy::completion))
        .route("/metrics", get(native::metrics));
    let native = Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/health", get(native::health))
        .route("/api/v1/cluster", get(native::cluster))
        .route(
            "/api/v1/cluster/members/{id}",
            axum::routing::delete(native::remove_member),
        )
        .route("/api/v1/jobs", get(native::list_jobs))
        .route("/api/v1/batches", post(native::create_batch))
        .route("/api/v1/sessions", post(native::create_session))
        .route(
            "/api/v1/jobs/{id}",
            get(native::get_job).delete(native::kill_job),
        )
        .route("/api/v1/jobs/{id}/events", get(native::events))
        .route("/api/v1/events", get(native::log_events))
        .route("/api/v1/jobs/{id}/log", get(native::log))
        .route(
            "/api/v1/jobs/{id}/statements",
            get(native::list_statements).post(native::create_statement),
        )
        .route(
            "/api/v1/jobs/{id}/statements/{sid}",
            get(native::get_statement),
        )
        .route(
            "/api/v1/jobs/{id}/statements/{sid}/cancel",
            post(native::cancel_statement),
        )
        .route(
            "/api/v1/clusters",
            get(clusters::list_clusters).post(clusters::create_cluster),
        )
        .route(
            "/api/v1/clusters/{name}",
            get(clusters::get_cluster)
                .put(clusters::update_cluster)
                .delete(clusters::delete_cluster),
        );
    livy.merge(native)
        .fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::NOT_FOUND,
                msg: "no such endpoint; see /api/v1/openapi.json".into(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                msg: "method not allowed on this endpoint; see /api/v1/openapi.json".into(),
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::to_leader,
        ))
        .layer(axum::middleware::from_fn(
            move |mut req: Request, next: Next| async move {
                req.extensions_mut().insert(BodyLimit(body_limit));
                let r: Response = next.run(req).await;
                r
            },
        ))
        .with_state(state)
}

impl AppState {
    pub fn caller(&self, headers: &HeaderMap, params: &Params) -> Caller {
        let owner = self.trusted_user_header.as_ref().and_then(|h| {
            headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        Caller {
            owner,
            do_as: params.str("doAs").map(str::to_string),
        }
    }

    /// Validates a create request and accepts the job (Livy's and the native API alike).
    pub async fn accept(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        req: impl model::CreateJob,
    ) -> ApiResult<Job> {
        let params = Params::from_query(query)?;
        let mut spec = req.into_spec(&self.caller(headers, &params))?;
        let cluster = self.job_cluster(&mut spec).await?;
        if cluster.config.kind == kindling_events::ClusterKind::Local {
            // Elsewhere, local paths are paths on the cluster's machines or in its image.
            livy::check_local_files(&spec)?;
        }
        Ok(self.core.submit(spec).await?)
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
        let Some(cluster) = self.clusters.catalog.get(&name).await? else {
            return Err(ApiError::bad_request(format!(
                "cluster '{name}' (from cluster or conf.{}) does not exist; the clusters are: {}",
                kindling_events::CLUSTER_CONF_KEY,
                self.clusters.catalog.names().join(", ")
            )));
        };
        spec.resources
            .conf
            .insert(kindling_events::CLUSTER_CONF_KEY.into(), name.clone());
        let demand = Demand::of(spec, &cluster.config.spark_conf);
        match never_fits(&cluster.config.capacity, demand) {
            None => Ok(cluster),
            Some(Limit::Cores(n)) => Err(ApiError::bad_request(format!(
                "driverCores: the driver needs {} cores but cluster '{name}' allows {n} driver                  cores in all",
                demand.cores
            ))),
            Some(limit) => Err(ApiError::bad_request(format!(
                "driverMemory: the driver needs {} MB but cluster '{name}' allows {} MB of                  driver memory in all",
                demand.memory_mb,
                match limit {
                    Limit::MemoryMb(n) => n,
                    _ => 0,
                }
            ))),
        }
    }

    /// A job by id: the write model's on the leader, the projections' elsewhere.
    pub async fn job(&self, id: JobId) -> ApiResult<Job> {
        Ok(self.core.job(id).await?)
    }

    /// The driver's output as Livy shows it: `stdout: `, the lines, then `\nstderr: ` (the
    /// local backend merges stderr into stdout, as Livy's batches do).
    pub async fn livy_log(&self, job: &Job) -> ApiResult<Vec<String>> {
        let mut out = vec!["stdout: ".to_string()];
        out.extend(self.driver_log(job).await?);
        out.push("\nstderr: ".into());
        Ok(out)
    }

    /// The driver's output, from its cluster's backend.
    pub async fn driver_log(&self, job: &Job) -> ApiResult<Vec<String>> {
        use crate::error::Error;
        let Some(name) = &job.driver_name else {
            return Ok(vec![]);
        };
        let cluster_name = job.spec.cluster();
        let Some(cluster) = self.clusters.catalog.get(cluster_name).await? else {
            return Ok(vec![format!(
                "kindling: the driver ran on cluster '{cluster_name}', which no longer exists"
            )]);
        };
        let unavailable = |e: String| {
            ApiError::from(Error::Unavailable(format!(
                "cannot read the driver's log from cluster '{cluster_name}': {e}"
            )))
        };
        let backend = self
            .clusters
            .backends
            .get(&cluster)
            .await
            .map_err(unavailable)?;
        match tokio::time::timeout(LOG_TIMEOUT, backend.log(name)).await {
            Ok(r) => r.map_err(|e| unavailable(e.to_string())),
            Err(_) => Err(unavailable(format!(
                "no answer within {} s",
                LOG_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Reads a statement once the projections have caught up with the log, optionally
    /// waiting up to `wait` for it to end (long poll).
    pub async fn statement(
        &self,
        job: JobId,
        id: StatementId,
        wait: Duration,
    ) -> ApiResult<Statement> {
        let deadline = Instant::now() + wait;
        let mut projected = self.core.projected();
        loop {
            self.core.read_barrier().await?;
            let s = self
                .core
                .projections
                .statement(job, id)
                .await
                .map_err(crate::error::Error::from)?
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

/// Livy's `from`/`size` over a log: `size` defaults to 100 (negative: all); a missing or
/// negative `from` means the last `size` lines.
pub fn slice_log(
    lines: Vec<String>,
    from: Option<i64>,
    size: Option<i64>,
) -> (usize, usize, Vec<String>) {
    let total = lines.len();
    let size = match size {
        Some(s) if s < 0 => total,
        Some(s) => s as usize,
        None => 100,
    };
    let from = match from {
        Some(f) if f >= 0 => (f as usize).min(total),
        _ => total.saturating_sub(size),
    };
    let until = from.saturating_add(size).min(total);
    (from, total, lines[from..until].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn log_slices_like_livy() {
        let (from, total, l) = slice_log(lines(250), None, None);
        assert_eq!(
            (from, total, l.len(), l[0].as_str()),
            (150, 250, 100, "150")
        );
        let (from, _, l) = slice_log(lines(250), Some(0), Some(10));
        assert_eq!((from, l.len(), l[9].as_str()), (0, 10, "9"));
        let (_, _, l) = slice_log(lines(250), Some(240), Some(100));
        assert_eq!(l.len(), 10);
        let (_, _, l) = slice_log(lines(250), Some(0), Some(-1));
        assert_eq!(l.len(), 250);
        let (from, _, l) = slice_log(lines(5), Some(99), None);
        assert_eq!((from, l.len()), (5, 0));
    }
}
