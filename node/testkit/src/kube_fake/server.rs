//! The fake's HTTP side: routes, authentication, and the API semantics of each request.

use super::selector::Selector;
use super::store::{kind_of, now, ApiError, Store};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A request the fake answered: method, path and query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
}

pub(super) struct Shared {
    pub(super) store: Mutex<Store>,
    pub(super) token: Option<String>,
    pub(super) requests: Mutex<Vec<Recorded>>,
    /// Bumped on every change (objects and logs): watches and log streams look again.
    pub(super) changed: watch::Sender<u64>,
    /// Bumped to break every open watch connection.
    pub(super) close_watches: watch::Sender<u64>,
    /// Bumped to break every open log stream.
    pub(super) close_logs: watch::Sender<u64>,
    /// While true, new watch requests wait.
    pub(super) held: watch::Sender<bool>,
}

impl Shared {
    pub(super) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }

    pub(super) fn touch(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route(
            "/api/v1/namespaces/{ns}/{resource}",
            get(collection).post(collection),
        )
        .route(
            "/api/v1/namespaces/{ns}/{resource}/{name}",
            get(object).delete(object).patch(object),
        )
        .layer(middleware::from_fn_with_state(shared.clone(), auth))
        .with_state(shared)
}

fn error(e: ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(e.status())).into_response()
}

fn ok(code: StatusCode, v: Value) -> Response {
    (code, axum::Json(v)).into_response()
}

fn known(resource: &str) -> Result<(), ApiError> {
    kind_of(resource).map(|_| ()).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })
}

async fn auth(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    s.requests.lock().unwrap().push(Recorded {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(url_pairs).unwrap_or_default(),
    });
    if let Some(token) = &s.token {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return error(ApiError::new(401, "Unauthorized", "Unauthorized"));
        }
    }
    next.run(req).await
}

fn url_pairs(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn collection(
    State(s): State<Arc<Shared>>,
    Path((ns, resource)): Path<(String, String)>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(e) = known(&resource) {
        return error(e);
    }
    let selector = match Selector::parse(q.get("labelSelector").map(String::as_str).unwrap_or("")) {
        Ok(sel) => sel,
        Err(m) => return error(ApiError::new(400, "BadRequest", m)),
    };
    match method {
        Method::POST => {
            let object: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(ApiError::new(400, "BadRequest", e.to_string())),
            };
            let created = s.store().create(&resource, &ns, object);
            s.touch();
            match created {
                Ok(o) => ok(StatusCode::CREATED, o),
                Err(e) => error(e),
            }
        }
        Method::GET if q.get("watch").map(String::as_str) == Some("true") => {
            watch_stream(s, ns, resource, selector, q).await
        }
        Method::GET => {
            let st = s.store();
            let items = st.list(&resource, &ns, &selector);
            ok(
                StatusCode::OK,
                json!({
                    "kind": format!("{}List", kind_of(&resource).unwrap()),
                    "apiVersion": "v1",
                    "metadata": { "resourceVersion": st.rv.to_string() },
                    "items": items,
                }),
            )
        }
        _ => error(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    }
}

async fn watch_stream(
    s: Arc<Shared>,
    ns: String,
    resource: String,
    selector: Selector,
    q: HashMap<String, String>,
) -> Response {
    let mut held = s.held.subscribe();
    while *held.borrow_and_update() {
        if held.changed().await.is_err() {
            break;
        }
    }
    let from: Option<u64> = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => match v.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                return error(ApiError::new(
                    400,
                    "BadRequest",
                    format!("invalid resource version {v:?}"),
                ))
            }
        },
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let mut changed = s.changed.subscribe();
    let mut closed = s.close_watches.subscribe();
    closed.borrow_and_update();
    let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
    // Where the stream is: everything up to this version was sent.
    let (mut pos, initial) = {
        let st = s.store();
        match from {
            None => (st.rv, st.initial_events(&resource, &ns, &selector)),
            Some(n) if n < st.compacted => {
                let gone = ApiError::new(
                    410,
                    "Expired",
                    format!("too old resource version: {n} ({})", st.compacted),
                );
                let event = json!({ "type": "ERROR", "object": gone.status() });
                return (StatusCode::OK, Body::from(format!("{event}\n"))).into_response();
            }
            Some(n) => (n, vec![]),
        }
    };
    tokio::spawn(async move {
        for e in initial {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changed.borrow_and_update();
            let events = {
                let st = s.store();
                let events = st.events_after(pos, &resource, &ns, &selector);
                pos = st.rv;
                events
            };
            for e in events {
                if tx.send(line(e)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = closed.changed() => {
                    // Breaks the connection, as a network failure or an API server restart.
                    let _ = tx.send(Err(std::io::Error::other("connection closed by the fake"))).await;
                    return;
                }
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

async fn object(
    State(s): State<Arc<Shared>>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = known(&resource) {
        return error(e);
    }
    let result = match method {
        Method::GET => s.store().get(&resource, &ns, &name),
        Method::DELETE => {
            let options: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let r = delete(&mut s.store(), &resource, &ns, &name, &options);
            s.touch();
            r
        }
        Method::PATCH => {
            let kind = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if kind != "application/merge-patch+json" {
                return error(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the fake supports merge patches only, not {kind}"),
                ));
            }
            let patch: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(ApiError::new(400, "BadRequest", e.to_string())),
            };
            let r = s.store().patch(&resource, &ns, &name, &patch);
            s.touch();
            r
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    };
    match result {
        Ok(o) => ok(StatusCode::OK, o),
        Err(e) => error(e),
    }
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["state"].get("running").is_some()))
}

/// Deletion as the API server and kubelet do it: a running pod is first marked (deletion
/// timestamp), its container stopped (SIGTERM: exit 143), then removed; anything else goes
/// at once.
fn delete(
    st: &mut Store,
    resource: &str,
    ns: &str,
    name: &str,
    options: &Value,
) -> Result<Value, ApiError> {
    let current = st.get(resource, ns, name)?;
    if let Some(uid) = options["preconditions"]["uid"].as_str() {
        let actual = current["metadata"]["uid"].as_str().unwrap_or("");
        if uid != actual {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {resource} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
            ));
        }
    }
    let grace = options["gracePeriodSeconds"].as_i64().unwrap_or(30);
    if resource == "pods" && grace > 0 && running(&current) {
        let marked = st.update(resource, ns, name, |p| {
            p["metadata"]["deletionTimestamp"] = now().into();
            p["metadata"]["deletionGracePeriodSeconds"] = grace.into();
        })?;
        st.update(resource, ns, name, |p| terminated(p, 143, "Error"))?;
        st.remove(resource, ns, name)?;
        return Ok(marked);
    }
    st.remove(resource, ns, name)
}

pub(super) fn container_status(pod: &Value, state: Value) -> Value {
    let container = &pod["spec"]["containers"][0];
    json!([{
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": state.get("running").is_some(),
        "started": state.get("running").is_some(),
        "restartCount": 0,
        "state": state,
    }])
}

pub(super) fn terminated(pod: &mut Value, exit_code: i32, reason: &str) {
    let started = pod["status"]["startTime"].clone();
    let state = json!({ "terminated": {
        "exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now() } });
    pod["status"]["containerStatuses"] = container_status(pod, state);
    pod["status"]["phase"] = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    }
    .into();
}

#[derive(serde::Deserialize)]
struct LogQuery {
    container: Option<String>,
    follow: Option<bool>,
    timestamps: Option<bool>,
    #[serde(rename = "sinceTime")]
    since_time: Option<String>,
}

async fn pod_log(
    State(s): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let pod = match s.store().get("pods", &ns, &name) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let container = pod["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if let Some(c) = &q.container {
        if *c != container {
            return error(ApiError::new(
                400,
                "BadRequest",
                format!("container {c} is not valid for pod {name}"),
            ));
        }
    }
    let state = &pod["status"]["containerStatuses"][0]["state"];
    if state.get("running").is_none() && state.get("terminated").is_none() {
        let reason = state["waiting"]["reason"]
            .as_str()
            .unwrap_or("ContainerCreating");
        return error(ApiError::new(
            400,
            "BadRequest",
            format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"),
        ));
    }
    let since: Option<Timestamp> = match q.since_time.as_deref().map(str::parse) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            return error(ApiError::new(
                400,
                "BadRequest",
                format!("bad sinceTime: {e}"),
            ))
        }
    };
    let stamps = q.timestamps.unwrap_or(false);
    let follow = q.follow.unwrap_or(false);
    let key = (ns.clone(), name.clone());
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let mut changed = s.changed.subscribe();
    let mut closed = s.close_logs.subscribe();
    closed.borrow_and_update();
    tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            changed.borrow_and_update();
            let (lines, over) = {
                let st = s.store();
                let all = st.logs.get(&key).cloned().unwrap_or_default();
                let pod = st.get("pods", &key.0, &key.1).ok();
                let over = pod.as_ref().is_none_or(|p| {
                    p["status"]["containerStatuses"][0]["state"]
                        .get("terminated")
                        .is_some()
                });
                (all.into_iter().skip(sent).collect::<Vec<_>>(), over)
            };
            sent += lines.len();
            for (t, text) in lines {
                if since.is_some_and(|s| t < s) {
                    continue;
                }
                let l = if stamps {
                    format!("{t} {text}\n")
                } else {
                    format!("{text}\n")
                };
                if tx.send(Ok(Bytes::from(l))).await.is_err() {
                    return;
                }
            }
            if !follow || over {
                return;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = closed.changed() => {
                    let _ = tx.send(Err(std::io::Error::other("log stream closed by the fake"))).await;
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (StatusCode::OK, [("content-type", "text/plain")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let q = url_pairs("labelSelector=a%3Db%2Cc+in+%28x%29&watch=true");
        assert_eq!(q["labelSelector"], "a=b,c in (x)");
        assert_eq!(q["watch"], "true");
    }
}
