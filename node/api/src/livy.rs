//! Livy's REST API, field for field: `/batches`, `/sessions`, statements, completion, logs,
//! state and `/version`. Batches and sessions share one id space; each side answers 404 for
//! the other's ids, and for jobs deleted through `DELETE`.

use super::error::{ApiError, ApiResult};
use super::extract::{job_id, statement_id, JsonBody, Params};
use super::logs::{livy_window, LOG_TAIL};
use super::{AppState, State};
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_backend::LogWindow;
use kindling_core::{Error, ErrorCode};
use kindling_events::{Command, Event, Job, JobId, Origin, StatementId};
use kindling_store::{JobQuery, KindFilter};
use std::time::Duration;

const LIVY_VERSION: &str = "0.8.0";

#[utoipa::path(get, path = "/version", tag = "livy", responses((status = 200, body = Version)))]
pub async fn version() -> Json<Version> {
    Json(Version {
        version: LIVY_VERSION.into(),
        kindling: env!("CARGO_PKG_VERSION").into(),
    })
}

/// A batch or session visible to Livy's API.
async fn livy_job(s: &AppState, raw: &str, session: bool) -> ApiResult<Job> {
    let what = if session { "Session" } else { "Batch" };
    let id = job_id(raw, what)?;
    match s.job(id).await {
        Ok(j) if j.is_session() == session && !j.deleted => Ok(j),
        Ok(_)
        | Err(ApiError {
            code: ErrorCode::NotFound,
            ..
        }) => Err(ApiError::not_found(what, raw)),
        Err(e) => Err(e),
    }
}

/// The last lines of the driver's output, shown inside one batch or session object. A log
/// that cannot be read now (its cluster does not answer) is said so there: the job's state
/// is still served.
async fn tail(s: &AppState, job: &Job) -> ApiResult<Vec<String>> {
    match s.livy_log(job, LogWindow::Tail(LOG_TAIL)).await {
        Ok(slice) => Ok(slice.lines),
        Err(e) if e.code == ErrorCode::Unavailable => Ok(vec![format!(
            "kindling: the driver's log cannot be read now: {}",
            e.msg
        )]),
        Err(e) => Err(e),
    }
}

fn created<T: serde::Serialize>(location: String, body: T) -> impl IntoResponse {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
}

/// Local files a job names must exist before it is accepted, not fail at launch.
pub fn check_local_files(spec: &kindling_events::JobSpec) -> ApiResult<()> {
    use kindling_backend::is_local_path;
    use kindling_events::JobKind;
    let r = &spec.resources;
    let mut files: Vec<(&str, &String)> = Vec::new();
    if let JobKind::Batch(b) = &spec.kind {
        files.push(("file", &b.file));
    }
    for (field, list) in [
        ("jars", &r.jars),
        ("pyFiles", &r.py_files),
        ("files", &r.files),
        ("archives", &r.archives),
    ] {
        files.extend(list.iter().map(|f| (field, f)));
    }
    for (field, f) in files {
        if is_local_path(f) {
            let path = f
                .strip_prefix("file://")
                .or_else(|| f.strip_prefix("local://"))
                .unwrap_or(f);
            let path = path.split('#').next().unwrap_or(path);
            // The node's files, as they are now: a 409, not a malformed request.
            if !std::path::Path::new(path).is_file() {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("{field}: {f} does not exist or is not a file on this node"),
                ));
            }
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/batches", tag = "livy", request_body = CreateBatch,
    params(("doAs" = Option<String>, Query, description = "user to run the job as")),
    responses((status = 201, body = LivyBatch), (status = 400, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody)))]
pub async fn create_batch(
    axum::extract::State(s): State,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<CreateBatch>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&headers, q.as_deref(), req).await?;
    Ok(created(
        format!("/batches/{}", job.id),
        LivyBatch::from_job(&job, vec![]),
    ))
}

fn page(params: &Params) -> ApiResult<(usize, usize)> {
    let from = params.bounded("from", 0, 0, i64::MAX)?;
    let size = params.bounded("size", 100, 0, 10_000)?;
    Ok((from as usize, size as usize))
}

async fn list(
    s: &AppState,
    q: Option<String>,
    kind: KindFilter,
) -> ApiResult<(usize, usize, Vec<Job>)> {
    let params = Params::from_query(q.as_deref())?;
    let (from, size) = page(&params)?;
    s.core.read_barrier().await?;
    let page = s
        .core
        .reads()
        .jobs(&JobQuery {
            kind: Some(kind),
            offset: from,
            limit: size,
            ..Default::default()
        })
        .await?;
    Ok((from, page.total, page.items))
}

#[utoipa::path(get, path = "/batches", tag = "livy",
    params(("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyList<LivyBatch>)))]
pub async fn list_batches(
    axum::extract::State(s): State,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyList<LivyBatch>>> {
    let (from, total, jobs) = list(&s, q, KindFilter::Batch).await?;
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
    responses((status = 200, body = LivyBatch), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_batch(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<LivyBatch>> {
    let job = livy_job(&s, &id, false).await?;
    Ok(Json(LivyBatch::from_job(&job, tail(&s, &job).await?)))
}

#[utoipa::path(get, path = "/batches/{id}/state", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = LivyState), (status = 404, body = super::error::ErrorBody)))]
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

async fn log_of(s: &AppState, job: &Job, q: Option<String>) -> ApiResult<Json<LivyLog>> {
    let params = Params::from_query(q.as_deref())?;
    let slice = s.livy_log(job, livy_window(&params)?).await?;
    Ok(Json(LivyLog {
        id: job.id.0,
        from: slice.from,
        total: slice.total,
        log: slice.lines,
    }))
}

#[utoipa::path(get, path = "/batches/{id}/log", tag = "livy",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyLog), (status = 404, body = super::error::ErrorBody)))]
pub async fn batch_log(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyLog>> {
    let job = livy_job(&s, &id, false).await?;
    log_of(&s, &job, q).await
}

async fn delete(s: &AppState, raw: &str, session: bool) -> ApiResult<Json<Msg>> {
    let job = livy_job(s, raw, session).await?;
    s.core.execute(job.id, Origin::Api, Command::Delete).await?;
    Ok(Json(Msg {
        msg: "deleted".into(),
    }))
}

#[utoipa::path(delete, path = "/batches/{id}", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_batch(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<Msg>> {
    delete(&s, &id, false).await
}

#[utoipa::path(post, path = "/sessions", tag = "livy", request_body = CreateSession,
    params(("doAs" = Option<String>, Query, description = "user to run the session as")),
    responses((status = 201, body = LivySession), (status = 400, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody)))]
pub async fn create_session(
    axum::extract::State(s): State,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<CreateSession>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&headers, q.as_deref(), req).await?;
    Ok(created(
        format!("/sessions/{}", job.id),
        LivySession::from_job(&job, vec![]),
    ))
}

#[utoipa::path(get, path = "/sessions", tag = "livy",
    params(("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyList<LivySession>)))]
pub async fn list_sessions(
    axum::extract::State(s): State,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyList<LivySession>>> {
    let (from, total, jobs) = list(&s, q, KindFilter::Session).await?;
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
    responses((status = 200, body = LivySession), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_session(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<LivySession>> {
    let job = livy_job(&s, &id, true).await?;
    Ok(Json(LivySession::from_job(&job, tail(&s, &job).await?)))
}

#[utoipa::path(get, path = "/sessions/{id}/state", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = LivyState), (status = 404, body = super::error::ErrorBody)))]
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
    responses((status = 200, body = LivyLog), (status = 404, body = super::error::ErrorBody)))]
pub async fn session_log(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyLog>> {
    let job = livy_job(&s, &id, true).await?;
    log_of(&s, &job, q).await
}

#[utoipa::path(delete, path = "/sessions/{id}", tag = "livy", params(("id" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_session(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<Msg>> {
    delete(&s, &id, true).await
}

/// Appends a statement and hands it to the driver. Shared by Livy's and the native API.
pub async fn submit_statement(
    s: &AppState,
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
        .execute(
            job.id,
            Origin::Api,
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
    responses((status = 201, body = LivyStatement), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_statement(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateStatement>,
) -> ApiResult<impl IntoResponse> {
    let job = livy_job(&s, &id, true).await?;
    let st = submit_statement(&s, &job, req).await?;
    Ok(created(
        format!("/sessions/{}/statements/{}", job.id, st.id),
        st,
    ))
}

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
    s.core.read_barrier().await?;
    let page = s.core.reads().statements(job, from, size).await?;
    Ok(LivyStatements {
        total_statements: page.total,
        statements: page.items.iter().map(LivyStatement::from).collect(),
    })
}

#[utoipa::path(get, path = "/sessions/{id}/statements", tag = "livy",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyStatements), (status = 404, body = super::error::ErrorBody)))]
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
    responses((status = 200, body = LivyStatement), (status = 404, body = super::error::ErrorBody)))]
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
pub async fn cancel(s: &AppState, job: JobId, sid: StatementId) -> ApiResult<Json<Msg>> {
    match s
        .core
        .execute(
            job,
            Origin::Api,
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
    responses((status = 200, body = Msg), (status = 404, body = super::error::ErrorBody)))]
pub async fn cancel_statement(
    axum::extract::State(s): State,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Json<Msg>> {
    let job = livy_job(&s, &id, true).await?;
    cancel(&s, job.id, statement_id(&sid)?).await
}

#[utoipa::path(post, path = "/sessions/{id}/completion", tag = "livy", params(("id" = u64, Path)),
    request_body = CompletionRequest,
    responses((status = 200, body = Completion), (status = 404, body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
pub async fn completion(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CompletionRequest>,
) -> ApiResult<Json<Completion>> {
    let job = livy_job(&s, &id, true).await?;
    let default = job.spec.session().map(|k| k.kind.as_str());
    let kind = session_kind("kind", req.kind.as_deref().or(default))?;
    let chars = req.code.chars().count() as i64;
    let cursor = req.cursor.unwrap_or(chars);
    if !(0..=chars).contains(&cursor) {
        return Err(ApiError::bad_request(format!(
            "cursor must be between 0 and the length of code ({chars}), got {cursor}"
        )));
    }
    s.core.execute(job.id, Origin::Api, Command::Touch).await?;
    let candidates = s
        .gateway
        .complete(job.id, kind, req.code, cursor as u32)
        .await?;
    Ok(Json(Completion { candidates }))
}
