//! `/api/v1/clusters/{name}/queues`: how a cluster shares its capacity (set by an admin,
//! decided on the leader like every registry change) and what its queues hold now (read by
//! any node from its projections).

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::JsonBody;
use super::State;
use axum::extract::Path;
use axum::Json;
use kindling_api_model::cluster::{CapacityDoc, UsageDoc};
use kindling_api_model::queues::{QueueDoc, QueuesDoc, QueuesRequest, WaitingJobDoc};
use kindling_auth::Principal;
use kindling_core::clusters::queue_view::QueueView;
use kindling_events::RegistryCommand;

#[utoipa::path(put, path = "/api/v1/clusters/{name}/queues", tag = "clusters",
    params(("name" = String, Path)), request_body = QueuesRequest,
    responses((status = 200, body = QueuesDoc), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_queues(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<QueuesRequest>,
) -> ApiResult<Json<QueuesDoc>> {
    let queues = req.into_queues()?;
    let cmd = RegistryCommand::SetQueues {
        name: name.clone(),
        queues,
    };
    s.clusters.commands.execute(cmd, who.user.clone()).await?;
    Ok(Json(queues_doc(&s, &who, &name, None).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/queues", tag = "clusters",
    params(("name" = String, Path)),
    responses((status = 200, body = QueuesDoc), (status = 404, body = ErrorBody)))]
pub async fn list_queues(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<QueuesDoc>> {
    Ok(Json(queues_doc(&s, &who, &name, None).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/queues/{queue}", tag = "clusters",
    params(("name" = String, Path), ("queue" = String, Path)),
    responses((status = 200, body = QueueDoc), (status = 404, body = ErrorBody)))]
pub async fn get_queue(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    Path((name, queue)): Path<(String, String)>,
) -> ApiResult<Json<QueueDoc>> {
    let doc = queues_doc(&s, &who, &name, Some(&queue)).await?;
    match doc.queues.into_iter().find(|q| q.name == queue) {
        Some(q) => Ok(Json(q)),
        // A queue nobody defined nor uses: what it would be.
        None => Ok(Json(QueueDoc {
            name: queue,
            weight: 1,
            limits: CapacityDoc::from(&kindling_events::Capacity::default()),
            defined: false,
            in_use: UsageDoc::from(kindling_events::plan::Usage::default()),
            waiting: 0,
            waiting_jobs: Some(vec![]),
        })),
    }
}

/// The queues of cluster `name`; with `detail`, that queue's waiting jobs the caller may see.
async fn queues_doc(
    s: &super::AppState,
    who: &Principal,
    name: &str,
    detail: Option<&str>,
) -> ApiResult<QueuesDoc> {
    let cluster = s
        .clusters
        .catalog
        .get(name)
        .await?
        .ok_or_else(|| ApiError::not_found("Cluster", name))?;
    let registry = s.clusters.catalog.registry().await?;
    let views = s
        .clusters
        .commands
        .queue_views(name, &cluster.config.spark_conf)
        .await?;
    let visible_to = s.visible_to(who);
    let doc = |v: QueueView| {
        let waiting_jobs = (detail == Some(v.name.as_str())).then(|| {
            v.waiting
                .iter()
                .enumerate()
                .filter(|(_, j)| {
                    visible_to.as_deref().is_none_or(|u| {
                        j.spec.owner.as_deref() == Some(u)
                            || j.spec.proxy_user.as_deref() == Some(u)
                    })
                })
                .map(|(i, j)| WaitingJobDoc::new(j, i + 1))
                .collect()
        });
        QueueDoc {
            weight: v.config.weight,
            limits: CapacityDoc::from(&v.config.limits),
            defined: v.defined,
            in_use: UsageDoc::from(v.in_use),
            waiting: v.waiting.len(),
            waiting_jobs,
            name: v.name,
        }
    };
    Ok(QueuesDoc {
        cluster: name.to_string(),
        max_drivers_per_user: registry.queues(name).max_drivers_per_user,
        queues: views.into_iter().map(doc).collect(),
    })
}
