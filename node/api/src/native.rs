//! The native API under `/api/v1`: jobs of both kinds with filters and paging, a job's full
//! event history, statements with a long poll (`?wait=`), logs, health and metrics.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{job_id, statement_id, JsonBody, Params};
use super::livy::{cancel, statements_of, submit_statement};
use super::logs::livy_window;
use super::State;
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_core::{Error, ErrorCode};
use kindling_events::{Command, JobState, LogPosition, Origin};
use kindling_store::{JobQuery, KindFilter};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// Longest accepted `?wait=` of a long poll.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub node: u64,
    /// Next log position to be written.
    pub log_end: u64,
    /// Next log position the projections will apply.
    pub projected: u64,
    pub drivers_connected: usize,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "native", responses((status = 200, body = Health)))]
pub async fn health(axum::extract::State(s): State) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        node: s.core.node.0,
        log_end: s.core.reads().log_end().0,
        projected: s.core.projected().borrow().0,
        drivers_connected: s.gateway.connected(),
    })
}

/// A member of the cluster, from the Raft membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: u64,
    /// The member's REST address (`host:port`).
    pub http_addr: String,
    /// The member's Raft address, as its peers dial it.
    pub raft_addr: String,
    /// The member's driver gateway, as session drivers dial it.
    pub driver_addr: String,
    /// Voters elect and commit; a joining member is a learner until it has caught up.
    pub voter: bool,
    pub leader: bool,
    /// The last Raft log index known to be on the member (the leader knows it for all).
    pub matched_index: Option<u64>,
}

/// Who leads, in which term, and the members.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterInfo {
    /// The member that answered.
    pub node_id: u64,
    /// The Raft term, as it fences scheduler events.
    pub term: u64,
    pub leader_id: Option<u64>,
    /// Whether the answering member schedules now (it leads and has caught up).
    pub scheduling: bool,
    pub members: Vec<Member>,
    /// Next event log position, as this node knows it.
    pub log_end: u64,
    /// Next log position this node's projections will apply.
    pub projected: u64,
}

#[utoipa::path(get, path = "/api/v1/cluster", tag = "native", responses((status = 200, body = ClusterInfo)))]
pub async fn cluster(axum::extract::State(s): State) -> Json<ClusterInfo> {
    let view = s.cluster.cluster_view();
    let leader = *s.core.leadership().borrow();
    Json(ClusterInfo {
        node_id: view.node_id.0,
        term: leader.term.0,
        leader_id: view.leader.map(|l| l.0),
        scheduling: s.core.leading_term().is_some(),
        members: view
            .members
            .iter()
            .map(|m| Member {
                id: m.id.0,
                http_addr: m.http_addr.clone(),
                raft_addr: m.raft_addr.clone(),
                driver_addr: m.driver_addr.clone(),
                voter: m.voter,
                leader: m.leader,
                matched_index: m.matched_index,
            })
            .collect(),
        log_end: s.core.reads().log_end().0,
        projected: s.core.projected().borrow().0,
    })
}

#[utoipa::path(delete, path = "/api/v1/cluster/members/{id}", tag = "native",
    params(("id" = u64, Path, description = "the member's node id")),
    responses((status = 200, body = Msg)))]
pub async fn remove_member(
    axum::extract::State(s): State,
    Path(raw): Path<String>,
) -> ApiResult<Json<Msg>> {
    let Ok(id) = raw.parse::<u64>() else {
        return Err(ApiError::not_found("Member", &raw));
    };
    let view = s.cluster.cluster_view();
    if !view.members.iter().any(|m| m.id.0 == id) {
        return Err(ApiError::not_found("Member", &raw));
    }
    if view.members.len() == 1 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "cannot remove the only member of the cluster",
        ));
    }
    s.cluster
        .remove_member(kindling_events::NodeId(id))
        .await
        .map_err(|e| {
            if e.is_retryable() {
                ApiError::from(Error::Unavailable(format!(
                    "cannot remove member {id} now: {e}; retry"
                )))
            } else {
                ApiError::new(
                    ErrorCode::Conflict,
                    format!("cannot remove member {id}: {e}"),
                )
            }
        })?;
    Ok(Json(Msg {
        msg: format!("member {id} removed; stop its process"),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "native",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(axum::extract::State(s): State) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "native",
    params(
        ("state" = Option<String>, Query, description = "a Livy state, e.g. running"),
        ("kind" = Option<String>, Query, description = "batch or session"),
        ("owner" = Option<String>, Query),
        ("offset" = Option<i64>, Query),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
        ("deleted" = Option<bool>, Query, description = "include jobs deleted through Livy (default true)"),
    ),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody)))]
pub async fn list_jobs(
    axum::extract::State(s): State,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<JobPage>> {
    let p = Params::from_query(q.as_deref())?;
    let state = p
        .str("state")
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
    let kind = match p.str("kind") {
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
    let include_deleted = match p.str("deleted") {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "deleted must be true or false, got {v:?}"
            )))
        }
    };
    s.core.read_barrier().await?;
    let page = s
        .core
        .reads()
        .jobs(&JobQuery {
            kind,
            state,
            owner: p.str("owner").map(str::to_string),
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

fn created(id: u64, doc: JobDoc) -> impl IntoResponse {
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/jobs/{id}"))],
        Json(doc),
    )
}

#[utoipa::path(post, path = "/api/v1/batches", tag = "native", request_body = NativeCreateBatch,
    responses((status = 201, body = JobDoc), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create_batch(
    axum::extract::State(s): State,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<NativeCreateBatch>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&headers, q.as_deref(), req).await?;
    Ok(created(job.id.0, JobDoc::from(&job)))
}

#[utoipa::path(post, path = "/api/v1/sessions", tag = "native", request_body = NativeCreateSession,
    responses((status = 201, body = JobDoc), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create_session(
    axum::extract::State(s): State,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    JsonBody(req): JsonBody<NativeCreateSession>,
) -> ApiResult<impl IntoResponse> {
    let job = s.accept(&headers, q.as_deref(), req).await?;
    Ok(created(job.id.0, JobDoc::from(&job)))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "native", params(("id" = u64, Path)),
    responses((status = 200, body = JobDoc), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDoc>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    Ok(Json(JobDoc::from(&job)))
}

/// Stops the job (its driver, if it runs); the job stays, with its history, and ends as
/// killed. (Livy's `DELETE /batches/{id}` also hides it from Livy's view.)
#[utoipa::path(post, path = "/api/v1/jobs/{id}/kill", tag = "native", params(("id" = u64, Path)),
    responses((status = 200, body = JobDoc, description = "kill requested; the job stays listed")))]
pub async fn kill_job(
    axum::extract::State(s): State,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDoc>> {
    let id = job_id(&id, "Job")?;
    let (job, _) = s
        .core
        .execute(
            id,
            Origin::Api,
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
        ("from" = Option<u64>, Query, description = "first log position to return (default 0)"),
        ("limit" = Option<u64>, Query, description = "most events to return, 1 to 1000 (default 100)")),
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

#[utoipa::path(post, path = "/api/v1/jobs/{id}/statements", tag = "native", params(("id" = u64, Path)),
    request_body = CreateStatement,
    responses((status = 201, body = LivyStatement), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_statement(
    axum::extract::State(s): State,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreateStatement>,
) -> ApiResult<impl IntoResponse> {
    let job = s.job(job_id(&id, "Job")?).await?;
    let st = submit_statement(&s, &job, req).await?;
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
    params(("id" = u64, Path), ("from" = Option<i64>, Query), ("size" = Option<i64>, Query)),
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
    let wait = match duration("wait", &p.str("wait").map(str::to_string))? {
        None => Duration::ZERO,
        Some(d) if d.millis <= MAX_WAIT.as_millis() as u64 => Duration::from_millis(d.millis),
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "wait must be at most 60s, got {}",
                d.text
            )))
        }
    };
    let st = s.statement(job.id, statement_id(&sid)?, wait).await?;
    Ok(Json(LivyStatement::from(&st)))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/statements/{sid}/cancel", tag = "native",
    params(("id" = u64, Path), ("sid" = u64, Path)),
    responses((status = 200, body = Msg), (status = 404, body = ErrorBody)))]
pub async fn cancel_statement(
    axum::extract::State(s): State,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Json<Msg>> {
    let job = s.job(job_id(&id, "Job")?).await?;
    cancel(&s, job.id, statement_id(&sid)?).await
}
