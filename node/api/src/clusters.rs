//! `/api/v1/clusters`: the cluster registry. Reads are served by any node from its
//! projections; changes are decided by the leader (followers forward them, see `forward`).

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::JsonBody;
use super::State;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::cluster::{ClusterDoc, ClusterList, ClusterRequest, UsageDoc};
use kindling_api_model::cluster_schema::{ClusterChange, NewCluster};
use kindling_api_model::model::Msg;
use kindling_backend::settings;
use kindling_events::{ClusterConfig, RegistryCommand, DEFAULT_CLUSTER};

fn doc(s: &super::AppState, c: &kindling_events::Cluster) -> ClusterDoc {
    let _ = s;
    ClusterDoc::new(c, c.name == DEFAULT_CLUSTER)
}

#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters",
    responses((status = 200, body = ClusterList)))]
pub async fn list_clusters(axum::extract::State(s): State) -> ApiResult<Json<ClusterList>> {
    let all = s.clusters.catalog.all().await?;
    Ok(Json(ClusterList {
        clusters: all.iter().map(|c| doc(&s, c)).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", request_body = NewCluster,
    responses((status = 201, body = ClusterDoc), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the name is taken (or is the built-in local cluster), or a file or directory it names is not on this node (or, for credentials, not in its credentials directory)")))]
pub async fn create_cluster(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    JsonBody(req): JsonBody<ClusterRequest>,
) -> ApiResult<impl IntoResponse> {
    let (name, config) = req.into_config(None, None)?;
    let doc = record(&s, &who, &name, config, |name, config| {
        RegistryCommand::Register { name, config }
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/clusters/{name}"))],
        Json(doc),
    ))
}

/// Records a registration or an update once what it names is on this node, and shows the
/// cluster as the registry has it then.
async fn record(
    s: &super::AppState,
    who: &kindling_auth::Principal,
    name: &str,
    config: ClusterConfig,
    command: impl FnOnce(String, ClusterConfig) -> RegistryCommand,
) -> ApiResult<ClusterDoc> {
    // Where this node takes credentials from is its configuration, like the files it has:
    // a well-formed request it cannot take here is a conflict with the node, not a 400.
    settings::in_credentials_dir(&s.credentials_dir, &config.credentials)
        .map_err(ApiError::conflict)?;
    settings::present(&config).map_err(ApiError::conflict)?;
    let registry = s
        .clusters
        .commands
        .execute(command(name.to_string(), config), who.user.clone())
        .await?;
    let c = registry
        .get(name)
        .ok_or_else(|| ApiError::not_found("Cluster", name))?;
    Ok(doc(s, c))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)),
    responses((status = 200, body = ClusterDoc), (status = 404, body = ErrorBody)))]
pub async fn get_cluster(
    axum::extract::State(s): State,
    Path(name): Path<String>,
) -> ApiResult<Json<ClusterDoc>> {
    s.clusters.catalog.registry().await?;
    let c = s
        .clusters
        .catalog
        .get(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("Cluster", &name))?;
    let mut d = doc(&s, &c);
    let load = s
        .clusters
        .commands
        .load(&name, &c.config.spark_conf)
        .await?;
    d.active_jobs = Some(load.active());
    d.queued_jobs = Some(load.queued);
    d.in_use = Some(UsageDoc::from(load.in_use));
    Ok(Json(d))
}

#[utoipa::path(put, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)), request_body = ClusterChange,
    responses((status = 200, body = ClusterDoc), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the built-in cluster, a move (type, location) while jobs run there, a rename, or a file or directory it names is not on this node (or, for credentials, not in its credentials directory)")))]
pub async fn update_cluster(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<ClusterRequest>,
) -> ApiResult<Json<ClusterDoc>> {
    if let Some(other) = req.name.as_deref().filter(|n| *n != name) {
        return Err(ApiError::conflict(format!(
            "name {other:?} differs from the cluster in the path, {name:?}; a cluster cannot be \
             renamed"
        )));
    }
    let current = s.clusters.catalog.registry().await?;
    let current = current.get(&name).map(|c| c.config.credentials.clone());
    let (name, config) = req.into_config(Some(&name), current.as_ref())?;
    let doc = record(&s, &who, &name, config, |name, config| {
        RegistryCommand::Update { name, config }
    })
    .await?;
    Ok(Json(doc))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)),
    responses((status = 200, body = Msg), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "jobs on the cluster have not ended, or it is the built-in cluster")))]
pub async fn delete_cluster(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Msg>> {
    s.clusters
        .commands
        .execute(
            RegistryCommand::Remove { name: name.clone() },
            who.user.clone(),
        )
        .await?;
    Ok(Json(Msg {
        msg: format!("cluster '{name}' deleted"),
    }))
}
