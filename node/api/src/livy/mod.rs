//! Livy's REST API, field for field: `/batches`, `/sessions`, statements, completion, logs,
//! state and `/version`. Batches and sessions share one id space; each side answers 404 for
//! the other's ids, and for jobs deleted through `DELETE`. Here: what both sides share (the
//! job a Livy id names, the log tail, listing and deleting, the check of local files).

mod batches;
mod sessions;
mod statements;

pub use batches::*;
pub use sessions::*;
pub use statements::*;

use super::error::{ApiError, ApiResult};
use super::extract::Params;
use super::logs::{livy_window, LOG_TAIL};
use super::AppState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::*;
use kindling_backend::LogWindow;
use kindling_core::ErrorCode;
use kindling_events::{Command, Job, JobId, Origin};
use kindling_store::{JobQuery, KindFilter};

const LIVY_VERSION: &str = "0.8.0";

#[utoipa::path(get, path = "/version", tag = "livy", responses((status = 200, body = Version)))]
pub async fn version() -> Json<Version> {
    Json(Version {
        version: LIVY_VERSION.into(),
        kindling: env!("CARGO_PKG_VERSION").into(),
    })
}

/// The job a Livy path names, if there is one: digits are an id, anything else is a name
/// (as Livy reads its paths), the active batch or session of that name, else the last one.
pub(crate) async fn livy_target(
    s: &AppState,
    raw: &str,
    session: bool,
) -> ApiResult<Option<JobId>> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(raw.parse().ok().map(JobId));
    }
    s.core.read_barrier().await?;
    let named = s.core.reads().by_name(raw, session).await?;
    Ok(named.map(|j| j.id))
}

/// A batch or session visible to Livy's API, named in a path by its id or its name.
async fn livy_job(s: &AppState, raw: &str, session: bool) -> ApiResult<Job> {
    let what = if session { "Session" } else { "Batch" };
    let Some(id) = livy_target(s, raw, session).await? else {
        return Err(ApiError::not_found(what, raw));
    };
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

fn page(params: &Params) -> ApiResult<(usize, usize)> {
    let from = params.bounded("from", 0, 0, i64::MAX)?;
    let size = params.bounded("size", 100, 0, 10_000)?;
    Ok((from as usize, size as usize))
}

async fn list(
    s: &AppState,
    who: &kindling_auth::Principal,
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
            visible_to: s.visible_to(who),
            offset: from,
            limit: size,
            ..Default::default()
        })
        .await?;
    Ok((from, page.total, page.items))
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

async fn delete(
    s: &AppState,
    who: &kindling_auth::Principal,
    raw: &str,
    session: bool,
) -> ApiResult<Json<Msg>> {
    let job = livy_job(s, raw, session).await?;
    s.core
        .execute_as(job.id, Origin::Api, who.user.clone(), Command::Delete)
        .await?;
    Ok(Json(Msg {
        msg: "deleted".into(),
    }))
}
