//! A session's statements in the native API: submit, list, read with a long poll
//! (`?wait=`, up to a minute), cancel.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{job_id, statement_id, JsonBody, Params};
use crate::livy::{cancel, statements_of, submit_statement};
use crate::State;
use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use std::time::Duration;

/// Longest accepted `?wait=` of a long poll.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[utoipa::path(post, path = "/api/v1/jobs/{id}/statements", tag = "native", params(("id" = u64, Path)),
    request_body = CreateStatement,
    responses((status = 201, body = LivyStatement), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_statement(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateStatement>,
) -> ApiResult<impl IntoResponse> {
    let job = s.job(job_id(&id, "Job")?).await?;
    let st = submit_statement(&s, &who, &job, req).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/jobs/{}/statements/{}", job.id, st.id),
        )],
        Json(st),
    ))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/statements", tag = "native",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query),
        ("order" = Option<String>, Query, description = "asc (default: oldest first) or desc (newest first)")),
    responses((status = 200, body = LivyStatements), (status = 404, body = ErrorBody)))]
pub async fn list_statements(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyStatements>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    Ok(Json(statements_of(&s, job.id, q).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/statements/{sid}", tag = "native",
    params(("id" = u64, Path), ("sid" = u64, Path),
        ("wait" = Option<String>, Query, description = "long poll: wait up to this long (e.g. 10s, at most 60s) for the statement to end")),
    responses((status = 200, body = LivyStatement), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_statement(
    axum::extract::State(s): State,
    Path((id, sid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyStatement>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    let p = Params::from_query(q.as_deref())?;
    let wait = match p.given("wait") {
        None => Duration::ZERO,
        Some(text) => match kindling_events::parse_duration(text) {
            Ok(d) if d.as_millis() <= MAX_WAIT.as_millis() => d,
            Ok(_) => {
                return Err(ApiError::bad_request(format!(
                    "wait must be at most 60s, got {text:?}"
                )))
            }
            Err(e) => return Err(ApiError::bad_request(format!("wait: {e}"))),
        },
    };
    let st = s.statement(job.id, statement_id(&sid)?, wait).await?;
    Ok(Json(LivyStatement::from(&st)))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/statements/{sid}/cancel", tag = "native",
    params(("id" = u64, Path), ("sid" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = ErrorBody)))]
pub async fn cancel_statement(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Json<Msg>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    cancel(&s, &who, job.id, statement_id(&sid)?).await
}
