//! Livy's statements (`/sessions/{id}/statements`) and completion; the native API's
//! statement routes share `submit_statement`, `statements_of` and `cancel`.

use super::*;
use crate::error::{ApiError, ApiResult};
use crate::extract::{statement_id, JsonBody, Params};
use crate::{AppState, State};
use axum::extract::{Path, RawQuery};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_core::{Error, ErrorCode};
use kindling_events::{Command, Event, Job, JobId, Origin, StatementId};
use std::time::Duration;

/// Appends a statement and hands it to the driver. Shared by Livy's and the native API.
pub async fn submit_statement(
    s: &AppState,
    who: &kindling_auth::Principal,
    job: &Job,
    req: CreateStatement,
) -> ApiResult<LivyStatement> {
    let default = job.spec.session().map(|k| k.kind.as_str());
    let kind = session_kind("kind", req.kind.as_deref().or(default))?;
    if req.code.trim().is_empty() {
        return Err(ApiError::bad_request("code is empty; send the code to run"));
    }
    let limit = s.gateway.max_statement_bytes();
    if req.code.len() > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "code is {} bytes; a statement may be at most {limit} bytes, what the link to \
                 the session's driver carries",
                req.code.len()
            ),
        ));
    }
    let (_, envs) = s
        .core
        .execute_as(
            job.id,
            Origin::Api,
            who.user.clone(),
            Command::SubmitStatement {
                kind,
                code: req.code.clone(),
            },
        )
        .await?;
    let env = envs
        .iter()
        .find(|e| matches!(e.event, Event::StatementSubmitted { .. }))
        .ok_or_else(|| Error::BadRequest("the statement was not accepted".into()))?;
    let Event::StatementSubmitted { statement, .. } = env.event else {
        unreachable!()
    };
    s.gateway
        .run(job.id, statement, kind, req.code.clone())
        .await;
    Ok(LivyStatement {
        id: statement.0,
        code: req.code,
        state: "waiting".into(),
        output: None,
        progress: 0.0,
        started: 0,
        completed: 0,
    })
}

#[utoipa::path(post, path = "/sessions/{id}/statements", tag = "livy", params(("id" = u64, Path)),
    request_body = CreateStatement,
    responses((status = 201, body = LivyStatement), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_statement(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateStatement>,
) -> ApiResult<impl IntoResponse> {
    let job = livy_job(&s, &id, true).await?;
    let st = submit_statement(&s, &who, &job, req).await?;
    Ok(created(
        format!("/sessions/{}/statements/{}", job.id, st.id),
        st,
    ))
}

/// A page of a session's statements: `from` and `size` (Livy's paging) count in the order
/// asked for, `order=desc` listing the newest first, as Livy does.
pub async fn statements_of(
    s: &AppState,
    job: JobId,
    q: Option<String>,
) -> ApiResult<LivyStatements> {
    let params = Params::from_query(q.as_deref())?;
    let from = params.int("from")?.unwrap_or(0).max(0) as usize;
    let size = params
        .int("size")?
        .map(|n| n.max(0) as usize)
        .unwrap_or(usize::MAX);
    let newest_first = params.newest_first()?;
    s.core.read_barrier().await?;
    let reads = s.core.reads();
    let page = if newest_first {
        // The same page counted from the end: oldest-first positions total-from-size..total-from.
        let total = reads.statements(job, 0, 0).await?.total;
        let end = total.saturating_sub(from);
        let start = total.saturating_sub(from.saturating_add(size));
        let mut page = reads.statements(job, start, end - start).await?;
        page.items.reverse();
        page
    } else {
        reads.statements(job, from, size).await?
    };
    Ok(LivyStatements {
        total_statements: page.total,
        statements: page.items.iter().map(LivyStatement::from).collect(),
    })
}

#[utoipa::path(get, path = "/sessions/{id}/statements", tag = "livy",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query),
        ("order" = Option<String>, Query, description = "asc (default: oldest first) or desc (newest first)")),
    responses((status = 200, body = LivyStatements), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_statements(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyStatements>> {
    let job = livy_job(&s, &id, true).await?;
    Ok(Json(statements_of(&s, job.id, q).await?))
}

#[utoipa::path(get, path = "/sessions/{id}/statements/{sid}", tag = "livy",
    params(("id" = u64, Path), ("sid" = u64, Path)),
    responses((status = 200, body = LivyStatement), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_statement(
    axum::extract::State(s): State,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Json<LivyStatement>> {
    let job = livy_job(&s, &id, true).await?;
    let st = s
        .statement(job.id, statement_id(&sid)?, Duration::ZERO)
        .await?;
    Ok(Json(LivyStatement::from(&st)))
}

/// Cancels a statement; cancelling one that already ended is a no-op, as in Livy.
pub async fn cancel(
    s: &AppState,
    who: &kindling_auth::Principal,
    job: JobId,
    sid: StatementId,
) -> ApiResult<Json<Msg>> {
    match s
        .core
        .execute_as(
            job,
            Origin::Api,
            who.user.clone(),
            Command::CancelStatement { statement: sid },
        )
        .await
    {
        Ok((_, envs)) => {
            if !envs.is_empty() {
                s.gateway.cancel(job, sid).await;
            }
        }
        Err(Error::Domain(kindling_events::DomainError::StatementIllegal { .. })) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Json(Msg {
        msg: "canceled".into(),
    }))
}

#[utoipa::path(post, path = "/sessions/{id}/statements/{sid}/cancel", tag = "livy",
    params(("id" = u64, Path), ("sid" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = crate::error::ErrorBody)))]
pub async fn cancel_statement(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Json<Msg>> {
    let job = livy_job(&s, &id, true).await?;
    cancel(&s, &who, job.id, statement_id(&sid)?).await
}

#[utoipa::path(post, path = "/sessions/{id}/completion", tag = "livy", params(("id" = u64, Path)),
    request_body = CompletionRequest,
    responses((status = 200, body = Completion), (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn completion(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CompletionRequest>,
) -> ApiResult<Json<Completion>> {
    let job = livy_job(&s, &id, true).await?;
    let default = job.spec.session().map(|k| k.kind.as_str());
    let kind = session_kind("kind", req.kind.as_deref().or(default))?;
    let chars = req.code.chars().count() as i64;
    // Past the end of the code (or absent) is the end; a negative one is refused.
    let cursor = match req.cursor {
        Some(c) if c < 0 => {
            return Err(ApiError::bad_request(format!(
                "cursor must be 0 or more, got {c}"
            )))
        }
        Some(c) => c.min(chars),
        None => chars,
    };
    let cursor = u32::try_from(cursor).map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "code is too long to complete".to_string(),
        )
    })?;
    s.core
        .execute_as(job.id, Origin::Api, who.user.clone(), Command::Touch)
        .await?;
    let candidates = s.gateway.complete(job.id, kind, req.code, cursor).await?;
    Ok(Json(Completion { candidates }))
}
