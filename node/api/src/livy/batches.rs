//! Livy's `/batches`: submit, list, show, state, log, delete.

use super::*;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::State;
use axum::extract::{Path, RawQuery};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_store::KindFilter;

#[utoipa::path(post, path = "/batches", tag = "livy", request_body = CreateBatch,
    params(("doAs" = Option<String>, Query, description = "user to run the job as")),
    responses((status = 201, body = LivyBatch), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "an active job of its kind has its name, or its cluster does not exist"),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn create_batch(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<CreateBatch>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&who, q.as_deref(), req).await?;
    Ok(created(
        format!("/batches/{}", job.id),
        LivyBatch::from_job(&job, vec![]),
    ))
}

#[utoipa::path(get, path = "/batches", tag = "livy",
    params(("from" = Option<i64>, Query, minimum = 0),
        ("size" = Option<i64>, Query, minimum = 0, maximum = 10000)),
    responses((status = 200, body = LivyList<LivyBatch>)))]
pub async fn list_batches(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyList<LivyBatch>>> {
    let (from, total, jobs) = list(&s, &who, q, KindFilter::Batch).await?;
    let mut sessions = Vec::with_capacity(jobs.len());
    for j in &jobs {
        // A listing never reads drivers' logs: one unreachable cluster would fail it, and a
        // slow one make it wait per job. One batch's log is read where it is asked for.
        sessions.push(LivyBatch::from_job(j, vec![]));
    }
    Ok(Json(LivyList {
        from,
        total,
        sessions,
    }))
}

#[utoipa::path(get, path = "/batches/{id}", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = LivyBatch), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_batch(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<LivyBatch>> {
    let job = livy_job(&s, &id, false).await?;
    Ok(Json(LivyBatch::from_job(&job, tail(&s, &job).await?)))
}

#[utoipa::path(get, path = "/batches/{id}/state", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = LivyState), (status = 404, body = crate::error::ErrorBody)))]
pub async fn batch_state(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<LivyState>> {
    let job = livy_job(&s, &id, false).await?;
    Ok(Json(LivyState {
        id: job.id.0,
        state: job.state.as_str().into(),
    }))
}

#[utoipa::path(get, path = "/batches/{id}/log", tag = "livy",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyLog), (status = 404, body = crate::error::ErrorBody)))]
pub async fn batch_log(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyLog>> {
    let job = livy_job(&s, &id, false).await?;
    log_of(&s, &job, q).await
}

#[utoipa::path(delete, path = "/batches/{id}", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_batch(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Msg>> {
    delete(&s, &who, &id, false).await
}
