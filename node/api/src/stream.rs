//! `GET /api/v1/stream`: the live stream of changes (Server-Sent Events). Each message is one
//! event of the log, as `/api/v1/events` shows it, with its log position as the SSE id: a
//! client that reconnects to any node with `Last-Event-ID` resumes right after it, with no
//! gap and no duplicate, since every node reads the same log. Only events the node's
//! projections already reflect are sent, so what a message announces can be read at once.
//!
//! Jobs' events (states, statements, sessions' activity) go to callers who may view the job,
//! checked as every read is; the cluster registry's changes to every caller; tokens' events
//! to nobody. Nothing is buffered without bound: one page of the log is read at a time, and
//! a consumer that takes no message for `--stream-stall-secs` is cut off with a last
//! `cutoff` message naming where to resume.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Params;
use super::State;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::IntoResponse;
use kindling_api_model::model::LogEventDoc;
use kindling_auth::Principal;
use kindling_events::{Aggregate, Envelope, Event, Job, JobId, LeaderFence, LogPosition, Term};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// Log events read at a time.
const PAGE: usize = 256;
/// Messages waiting for a slow consumer at most.
const BUFFERED: usize = 256;
/// Jobs whose visibility a stream remembers; past it, it forgets them all.
const REMEMBERED_JOBS: usize = 10_000;

/// What a stream is narrowed to (`?job=&owner=&kind=&cluster=`).
#[derive(Debug, Default, Clone)]
struct Filter {
    job: Option<JobId>,
    owner: Option<String>,
    /// `batch` or `session`.
    kind: Option<&'static str>,
    cluster: Option<String>,
}

impl Filter {
    fn parse(p: &Params) -> ApiResult<Filter> {
        let job = match p.given("job") {
            None => None,
            Some(v) => Some(JobId(v.parse().map_err(|_| {
                ApiError::bad_request(format!("job must be a job id, got {v:?}"))
            })?)),
        };
        let kind = match p.given("kind") {
            None => None,
            Some("batch") => Some("batch"),
            Some("session") => Some("session"),
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "kind {k:?} is unknown; use batch or session"
                )))
            }
        };
        Ok(Filter {
            job,
            owner: p.given("owner").map(str::to_string),
            kind,
            cluster: p.given("cluster").map(str::to_string),
        })
    }

    /// Whether a job's event passes (the caller may view the job: checked apart).
    fn job(&self, job: &Job) -> bool {
        self.job.is_none_or(|id| id == job.id)
            && self
                .owner
                .as_deref()
                .is_none_or(|o| job.spec.owner.as_deref() == Some(o))
            && self.kind.is_none_or(|k| job.spec.kind_name() == k)
            && self
                .cluster
                .as_deref()
                .is_none_or(|c| job.spec.cluster() == c)
    }

    /// Whether a change of the registry's cluster `name` passes: only streams not narrowed to
    /// jobs get them.
    fn cluster(&self, name: &str) -> bool {
        self.job.is_none()
            && self.owner.is_none()
            && self.kind.is_none()
            && self.cluster.as_deref().is_none_or(|c| c == name)
    }
}

/// Where a resumed stream starts: right after `Last-Event-ID` (the header, or `lastEventId`
/// in the query for clients that cannot set headers); `None` for a new stream.
fn resumed(headers: &HeaderMap, p: &Params) -> ApiResult<Option<LogPosition>> {
    let given = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").to_string())
        .or_else(|| p.given("lastEventId").map(str::to_string));
    given
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map(|p| LogPosition(p + 1))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "Last-Event-ID must be a log position, got {v:?}"
                    ))
                })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/stream", tag = "native",
    params(
        ("job" = Option<u64>, Query, description = "only this job's events"),
        ("owner" = Option<String>, Query, description = "only events of this user's jobs"),
        ("kind" = Option<String>, Query, description = "batch or session: only events of such jobs"),
        ("cluster" = Option<String>, Query, description = "only events of jobs on this cluster, and its registry changes"),
        ("lastEventId" = Option<u64>, Query, description = "resume after this position (as the Last-Event-ID header)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this position, as a reconnecting EventSource sends it"),
    ),
    responses((status = 200, content_type = "text/event-stream", body = LogEventDoc,
            description = "Server-Sent Events: `event: job` or `event: cluster`, `id:` the log position, `data:` the event as /api/v1/events shows it; `event: cutoff` last when the consumer fell behind"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody, description = "too many streams and long polls are open on this node")))]
/// The changes to jobs, sessions, statements and clusters, live, as they are appended.
pub async fn stream(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let p = Params::from_query(q.as_deref())?;
    let filter = Filter::parse(&p)?;
    let projected = s.core.projected();
    let resumed = resumed(&headers, &p)?;
    let permit = s.long_polls.clone().try_acquire_owned().map_err(|_| {
        ApiError::unavailable("too many streams and long polls are open on this node; retry")
    })?;
    // A new stream starts at the end of what the node has projected, with the projections'
    // fence; a resumed one starts in the past, and its fence learns as it reads.
    let now = *projected.borrow();
    let (cursor, fence) = match resumed {
        Some(at) => (at, LeaderFence::new(Term(0))),
        None => (now, s.core.reads().fence().await?),
    };
    let (tx, rx) = mpsc::channel::<Sse>(BUFFERED);
    // The last word of a stream cut off, after what is buffered: the buffer is full then.
    let (hint_tx, hint_rx) = oneshot::channel::<Sse>();
    let reader = Reader {
        s: s.clone(),
        who,
        filter,
        fence,
        cursor,
        visible: HashMap::new(),
    };
    tokio::spawn(reader.run(projected, tx, hint_tx));
    // The permit goes with the stream: freed when the client goes away.
    let open = crate::metrics::stream_open();
    let hint = futures::StreamExt::filter_map(futures::stream::once(hint_rx), |h| async { h.ok() });
    let messages = futures::StreamExt::chain(ReceiverStream::new(rx), hint);
    let body = futures::StreamExt::map(messages, move |message| {
        let _held = (&permit, &open);
        Ok::<_, Infallible>(message)
    });
    Ok(axum::response::sse::Sse::new(body).keep_alive(KeepAlive::default()))
}

/// Reads the log for one stream and sends what passes.
struct Reader {
    s: Arc<super::AppState>,
    who: Principal,
    filter: Filter,
    fence: LeaderFence,
    /// The next position to read.
    cursor: LogPosition,
    /// Jobs seen so far, and whether the stream shows their events.
    visible: HashMap<JobId, bool>,
}

impl Reader {
    async fn run(
        mut self,
        mut projected: tokio::sync::watch::Receiver<LogPosition>,
        tx: mpsc::Sender<Sse>,
        hint: oneshot::Sender<Sse>,
    ) {
        loop {
            let end = *projected.borrow_and_update();
            if self.cursor >= end {
                tokio::select! {
                    changed = projected.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
                continue;
            }
            let page = match self.s.core.reads().log_page(self.cursor, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read the log; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        _ = tx.closed() => return,
                    }
                }
            };
            let before = page.iter().take_while(|e| e.position < end);
            let mut read_any = false;
            for env in before {
                read_any = true;
                self.cursor = LogPosition(env.position.0 + 1);
                let Some(message) = self.message(env).await else {
                    continue;
                };
                match tokio::time::timeout(self.s.stream_stall, tx.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => return self.cut_off(hint, env.position),
                }
            }
            if !read_any {
                // Nothing below the projected end: the positions in between are not used.
                self.cursor = end;
            }
        }
    }

    /// The message for `env`, if the stream shows it.
    async fn message(&mut self, env: &Envelope) -> Option<Sse> {
        if !self.fence.admit(env) {
            return None;
        }
        let kind = match (&env.aggregate, &env.event) {
            (Aggregate::Job(id), _) if self.shows_job(*id).await => "job",
            (
                Aggregate::Registry,
                Event::ClusterRegistered { name, .. }
                | Event::ClusterUpdated { name, .. }
                | Event::ClusterRemoved { name },
            ) if self.filter.cluster(name) => "cluster",
            _ => return None,
        };
        Sse::default()
            .id(env.position.0.to_string())
            .event(kind)
            .json_data(LogEventDoc::from(env))
            .ok()
    }

    /// Whether the stream shows the events of job `id`: the caller may view it and it passes
    /// the filter.
    async fn shows_job(&mut self, id: JobId) -> bool {
        if let Some(known) = self.visible.get(&id) {
            return *known;
        }
        // Unreadable now: not remembered, so the next of its events asks again.
        let Some(job) = self.s.core.reads().job(id).await.ok().flatten() else {
            return false;
        };
        let (owner, proxy) = (job.spec.owner.as_deref(), job.spec.proxy_user.as_deref());
        let shown = self.s.job_rules.may_view(&self.who, owner, proxy) && self.filter.job(&job);
        if self.visible.len() >= REMEMBERED_JOBS {
            self.visible.clear();
        }
        self.visible.insert(id, shown);
        shown
    }

    /// Ends a stream whose consumer stopped taking messages: once it reads again, it finds
    /// what was buffered, then where to resume.
    fn cut_off(&self, hint: oneshot::Sender<Sse>, at: LogPosition) {
        tracing::info!(user = %self.who.name(), "event stream: the consumer fell behind; cut off");
        crate::metrics::stream_cut_off();
        let text = serde_json::json!({
            "msg": "this stream fell too far behind and was closed; reconnect with the \
                    Last-Event-ID of the last message received",
            "stalledAt": at.0,
        });
        if let Ok(message) = Sse::default().event("cutoff").json_data(text) {
            let _ = hint.send(message);
        }
    }
}
