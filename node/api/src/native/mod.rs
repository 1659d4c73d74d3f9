//! The native API under `/api/v1`: jobs of both kinds with filters and paging, a job's full
//! event history, the whole event log in pages, logs; statements with a long poll
//! (`statements`); the node and its Raft cluster, health and metrics (`cluster`).

mod cluster;
mod statements;

pub use cluster::*;
pub use statements::*;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{job_id, JsonBody, Params};
use super::logs::livy_window;
use super::State;
use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_events::{Command, JobState, LogPosition, Origin};
use kindling_store::{JobQuery, KindFilter};

fn created(id: u64, doc: JobDoc) -> impl IntoResponse {
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/jobs/{id}"))],
        Json(doc),
    )
}

#[utoipa::path(post, path = "/api/v1/batches", tag = "native", request_body = NativeCreateBatch,
    responses((status = 201, body = JobDoc), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "an active job of its kind has its name, or its cluster does not exist"),
        (status = 413, body = ErrorBody)))]
pub async fn create_batch(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<NativeCreateBatch>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&who, q.as_deref(), req).await?;
    Ok(created(job.id.0, JobDoc::from(&job)))
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "native", request_body = NativeCreateSession,
    responses((status = 201, body = JobDoc), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "an active job of its kind has its name, or its cluster does not exist"),
        (status = 413, body = ErrorBody)))]
pub async fn create_session(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<NativeCreateSession>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&who, q.as_deref(), req).await?;
    Ok(created(job.id.0, JobDoc::from(&job)))
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "native",
    params(
        ("state" = Option<String>, Query, description = "a Livy state, e.g. running"),
        ("kind" = Option<String>, Query, description = "batch or session"),
        ("owner" = Option<String>, Query),
        ("name" = Option<String>, Query, description = "jobs whose name contains this, ignoring case"),
        ("cluster" = Option<String>, Query, description = "jobs on this cluster"),
        ("offset" = Option<i64>, Query, minimum = 0),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("deleted" = Option<bool>, Query, description = "include jobs deleted through Livy (default true)"),
        ("order" = Option<String>, Query, description = "asc (default: oldest first, as Livy lists) or desc (newest first)"),
    ),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody)))]
pub async fn list_jobs(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobPage>> {
    let p = Params::from_query(q.as_deref())?;
    let state = p
        .given("state")
        .map(|v| {
            JobState::parse(v).ok_or_else(|| {
                let all: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!(
                    "state {v:?} is unknown; use one of {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()?;
    let kind = match p.given("kind") {
        None => None,
        Some("batch") => Some(KindFilter::Batch),
        Some("session") => Some(KindFilter::Session),
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "kind {k:?} is unknown; use batch or session"
            )))
        }
    };
    let offset = p.bounded("offset", 0, 0, i64::MAX)?;
    let limit = p.bounded("limit", 100, 1, 1000)?;
    let include_deleted = p.flag("deleted", true)?;
    let newest_first = p.newest_first()?;
    s.core.read_barrier().await?;
    let page = s
        .core
        .reads()
        .jobs(&JobQuery {
            newest_first,
            kind,
            state,
            owner: p.str("owner").map(str::to_string),
            name: p.str("name").map(str::to_string),
            cluster: p.str("cluster").map(str::to_string),
            visible_to: s.visible_to(&who),
            include_deleted,
            offset: offset as usize,
            limit: limit as usize,
        })
        .await?;
    Ok(Json(JobPage {
        total: page.total,
        offset: offset as usize,
        jobs: page.items.iter().map(JobDoc::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "native", params(("id" = u64, Path)),
    responses((status = 200, body = JobDoc), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDoc>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    let mut doc = JobDoc::from(&job);
    doc.queue_position = s.queue_position(&job).await?;
    Ok(Json(doc))
}

/// Stops the job (its driver, if it runs); the job stays, with its history, and ends as
/// killed. (Livy's `DELETE /batches/{id}` also hides it from Livy's view.)
#[utoipa::path(post, path = "/api/v1/jobs/{id}/kill", tag = "native", params(("id" = u64, Path)),
    responses((status = 200, body = JobDoc, description = "kill requested; the job stays listed")))]
pub async fn kill_job(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<kindling_auth::Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDoc>> {
    let id = job_id(&id, "Job")?;
    let (job, _) = s
        .core
        .execute_as(
            id,
            Origin::Api,
            who.user.clone(),
            Command::Kill {
                reason: "killed by a client".into(),
            },
        )
        .await?;
    Ok(Json(JobDoc::from(&job)))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "native", params(("id" = u64, Path)),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody)))]
pub async fn events(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<EventList>> {
    let id = job_id(&id, "Job")?;
    s.job(id).await?;
    s.core.read_barrier().await?;
    // The log, the source of truth, at the positions the projections list for this job.
    let envelopes = s.core.reads().events_of(id).await?;
    Ok(Json(EventList {
        events: envelopes.iter().map(EventDoc::from).collect(),
    }))
}

/// Largest page of `GET /api/v1/events`.
const MAX_LOG_PAGE: i64 = 1000;

#[utoipa::path(get, path = "/api/v1/events", tag = "native",
    params(
        ("from" = Option<i64>, Query, minimum = 0, description = "first log position to return (default 0)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "most events to return, 1 to 1000 (default 100)")),
    responses((status = 200, body = LogPage), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
/// The event log itself, in order: every job's, cluster's and registry's events, for audit,
/// export and checking projections against the source of truth. Page on with `next` until it
/// reaches `logEnd`; a page may be shorter than `limit` (positions are not dense, and a slow
/// broker's read returns what arrived in time).
pub async fn log_events(
    axum::extract::State(s): State,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LogPage>> {
    let p = Params::from_query(q.as_deref())?;
    let from = p.bounded("from", 0, 0, i64::MAX)? as u64;
    let limit = p.bounded("limit", 100, 1, MAX_LOG_PAGE)? as usize;
    s.core.read_barrier().await?;
    let end = s.core.reads().log_end().0;
    let envelopes = s.core.reads().log_page(LogPosition(from), limit).await?;
    let next = envelopes.last().map_or(from.max(end), |e| e.position.0 + 1);
    Ok(Json(LogPage {
        events: envelopes.iter().map(LogEventDoc::from).collect(),
        next,
        log_end: end,
    }))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/log", tag = "native",
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, body = LivyLog), (status = 404, body = ErrorBody)))]
pub async fn log(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LivyLog>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    let p = Params::from_query(q.as_deref())?;
    let slice = s.driver_log(&job, livy_window(&p)?).await?;
    Ok(Json(LivyLog {
        id: job.id.0,
        from: slice.from,
        total: slice.total,
        log: slice.lines,
    }))
}
