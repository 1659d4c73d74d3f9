//! Livy's `/sessions`: create, list, show, state, log, delete.

use super::*;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::State;
use axum::extract::{Path, RawQuery};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_store::KindFilter;

#[utoipa::path(post, path = "/sessions", tag = "livy", request_body = CreateSession,
    params(("doAs" = Option<String>, Query, description = "user to run the session as")),
    responses((status = 201, body = LivySession), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "an active job of its kind has its name, or its cluster does not exist"),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn create_session(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<CreateSession>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&who, q.as_deref(), req).await?;
    Ok(created(
        format!("/sessions/{}", job.id),
        LivySession::from_job(&job, vec![]),
    ))
}

#[utoipa::path(get, path = "/sessions", tag = "livy",
    params(("from" = Option<i64>, Query, minimum = 0),
        ("size" = Option<i64>, Query, minimum = 0, maximum = 10000)),
    responses((status = 200, body = LivyList<LivySession>)))]
pub async fn list_sessions(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyList<LivySession>>> {
    let (from, total, jobs) = list(&s, &who, q, KindFilter::Session).await?;
    let mut sessions = Vec::with_capacity(jobs.len());
    for j in &jobs {
        sessions.push(LivySession::from_job(j, vec![]));
    }
    Ok(Json(LivyList {
        from,
        total,
        sessions,
    }))
}

#[utoipa::path(get, path = "/sessions/{id}", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = LivySession), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_session(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<LivySession>> {
    let job = livy_job(&s, &id, true).await?;
    Ok(Json(LivySession::from_job(&job, tail(&s, &job).await?)))
}

#[utoipa::path(get, path = "/sessions/{id}/state", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = LivyState), (status = 404, body = crate::error::ErrorBody)))]
pub async fn session_state(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<LivyState>> {
    let job = livy_job(&s, &id, true).await?;
    Ok(Json(LivyState {
        id: job.id.0,
        state: job.state.as_str().into(),
    }))
}

#[utoipa::path(get, path = "/sessions/{id}/log", tag = "livy",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyLog), (status = 404, body = crate::error::ErrorBody)))]
pub async fn session_log(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyLog>> {
    let job = livy_job(&s, &id, true).await?;
    log_of(&s, &job, q).await
}

#[utoipa::path(delete, path = "/sessions/{id}", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_session(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Msg>> {
    delete(&s, &who, &id, true).await
}
