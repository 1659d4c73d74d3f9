//! The fake's HTTP side: the ResourceManager's REST routes (with a standby's redirect), the
//! NodeManager's container-logs pages and the log server's aggregated pages.

use super::{FakeApp, Logs, Recorded, Role, Shared};
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Rm = (Arc<Shared>, usize);

pub(super) fn rm_router(shared: Arc<Shared>, i: usize) -> Router {
    let state: Rm = (shared, i);
    Router::new()
        .route("/ws/v1/cluster/info", get(info))
        .route("/ws/v1/cluster/apps", get(apps))
        .route("/ws/v1/cluster/apps/{id}", get(app))
        .route("/ws/v1/cluster/apps/{id}/appattempts", get(attempts))
        .route("/ws/v1/cluster/apps/{id}/state", get(app_state).put(kill))
        .layer(middleware::from_fn_with_state(state.clone(), standby))
        .with_state(state)
}

pub(super) fn nm_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/node/containerlogs/{container}/{user}/{file}",
            get(container_log),
        )
        .layer(middleware::from_fn_with_state(
            (shared.clone(), "nm"),
            record_as,
        ))
        .with_state(shared)
}

pub(super) fn jhs_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/jobhistory/logs/{node}/{container}/{entity}/{user}/{file}",
            get(aggregated_log),
        )
        .layer(middleware::from_fn_with_state(
            (shared.clone(), "jhs"),
            record_as,
        ))
        .with_state(shared)
}

fn query_of(req: &Request) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Records the request (body included) and hands it on.
async fn record(shared: &Shared, server: &str, req: Request) -> Request {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let req = Request::from_parts(parts, Body::from(bytes.clone()));
    shared.requests.lock().unwrap().push(Recorded {
        server: server.to_string(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: query_of(&req),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    req
}

async fn record_as(
    State((shared, server)): State<(Arc<Shared>, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let req = record(&shared, server, req).await;
    next.run(req).await
}

/// `RMWebAppFilter`: a standby redirects everything but `/ws/v1/cluster/info` to the active
/// ResourceManager, keeping the path and query.
async fn standby(State((shared, i)): State<Rm>, req: Request, next: Next) -> Response {
    let req = record(&shared, &format!("rm{i}"), req).await;
    let (role, active) = {
        let st = shared.lock();
        let active = st.roles.iter().position(|r| *r == Role::Active);
        (st.roles[i], active)
    };
    if role == Role::Active || req.uri().path() == "/ws/v1/cluster/info" {
        return next.run(req).await;
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    match active {
        Some(a) => {
            let location = format!("{}{path_and_query}", shared.rm_urls[a]);
            let mut resp = (
                StatusCode::TEMPORARY_REDIRECT,
                format!("This is standby RM. The redirect url is: {path_and_query}\n"),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
            resp
        }
        None => {
            let mut resp = (
                StatusCode::TEMPORARY_REDIRECT,
                "Can not find any active RM. Will retry in next 3 seconds.\n\
                 HA Zookeeper Connection State: CONNECTED\n",
            )
                .into_response();
            resp.headers_mut().insert(
                "Refresh",
                HeaderValue::from_str(&format!("3;url={path_and_query}")).unwrap(),
            );
            resp
        }
    }
}

fn json_reply(code: StatusCode, v: Value) -> Response {
    let mut resp = (code, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

async fn info(State((_, i)): State<Rm>) -> Response {
    json_reply(
        StatusCode::OK,
        json!({ "clusterInfo": { "id": 1700000000000u64, "state": "STARTED",
            "haState": if i == 0 { "ACTIVE" } else { "STANDBY" } } }),
    )
}

fn not_found(shared: &Shared, id: &str) -> Response {
    let text = shared
        .fixture("app-not-found.json")
        .replace("application_1700000000000_0001", id);
    json_reply(StatusCode::NOT_FOUND, serde_json::from_str(&text).unwrap())
}

/// An application as it is read now: a kill that was accepted has happened.
fn read_app(shared: &Shared, id: &str) -> Option<FakeApp> {
    shared.sync();
    let mut st = shared.lock();
    let app = st.apps.get_mut(id)?;
    if app.killing {
        app.killing = false;
        app.fixture = "app-killed".into();
    }
    Some(app.clone())
}

async fn apps(State((shared, _)): State<Rm>, req: Request) -> Response {
    shared.sync();
    let q = query_of(&req);
    let wanted: Vec<String> = q
        .get("applicationTags")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let ids: Vec<String> = shared.lock().apps.keys().cloned().collect();
    let listed: Vec<Value> = ids
        .iter()
        .filter_map(|id| read_app(&shared, id))
        .filter(|a| wanted.is_empty() || a.tags.iter().any(|t| wanted.contains(t)))
        .map(|a| shared.render(&a))
        .collect();
    if listed.is_empty() {
        let empty: Value = serde_json::from_str(&shared.fixture("apps-empty.json")).unwrap();
        return json_reply(StatusCode::OK, empty);
    }
    let mut v: Value = serde_json::from_str(&shared.fixture("apps.json")).unwrap();
    v["apps"]["app"] = Value::Array(listed);
    json_reply(StatusCode::OK, v)
}

async fn app(State((shared, _)): State<Rm>, Path(id): Path<String>) -> Response {
    match read_app(&shared, &id) {
        Some(a) => json_reply(StatusCode::OK, json!({ "app": shared.render(&a) })),
        None => not_found(&shared, &id),
    }
}

async fn attempts(State((shared, _)): State<Rm>, Path(id): Path<String>) -> Response {
    match read_app(&shared, &id) {
        Some(a) => {
            let text = shared.rewrite(&shared.fixture("appattempts.json"), &a.id, &a.user);
            json_reply(StatusCode::OK, serde_json::from_str(&text).unwrap())
        }
        None => not_found(&shared, &id),
    }
}

async fn app_state(State((shared, _)): State<Rm>, Path(id): Path<String>) -> Response {
    match read_app(&shared, &id) {
        Some(a) => json_reply(
            StatusCode::OK,
            json!({ "state": shared.render(&a)["state"] }),
        ),
        None => not_found(&shared, &id),
    }
}

/// `PUT …/state` with `{"state":"KILLED"}`, as `RMWebServices.updateAppState` answers it.
async fn kill(State((shared, _)): State<Rm>, Path(id): Path<String>, req: Request) -> Response {
    let q = query_of(&req);
    let body = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    if q.get("user.name").is_none_or(|u| u.is_empty()) {
        let v: Value = serde_json::from_str(&shared.fixture("kill-forbidden.json")).unwrap();
        return json_reply(StatusCode::FORBIDDEN, v);
    }
    let target: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if target["state"] != "KILLED" {
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({ "RemoteException": { "exception": "BadRequestException",
                "message": "java.lang.Exception: Only 'KILLED' is allowed as a target state.",
                "javaClassName": "org.apache.hadoop.yarn.webapp.BadRequestException" } }),
        );
    }
    let Some(a) = read_app(&shared, &id) else {
        return not_found(&shared, &id);
    };
    let state = shared.render(&a)["state"].clone();
    if matches!(state.as_str(), Some("FINISHED" | "FAILED" | "KILLED")) {
        return json_reply(StatusCode::OK, json!({ "state": state }));
    }
    if let Some(app) = shared.lock().apps.get_mut(&id) {
        app.killing = true;
    }
    let mut resp = json_reply(StatusCode::ACCEPTED, json!({ "state": state }));
    let location = format!("{}/ws/v1/cluster/apps/{id}", shared.rm_urls[0]);
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
    resp
}

fn html(text: String) -> Response {
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    resp
}

/// `application_<ts>_<seq>` of `container_<ts>_<seq>_<attempt>_<n>`.
fn app_of_container(container: &str) -> String {
    let parts: Vec<&str> = container.split('_').collect();
    format!(
        "application_{}_{}",
        parts.get(1).unwrap_or(&""),
        parts.get(2).unwrap_or(&"")
    )
}

async fn container_log(
    State(shared): State<Arc<Shared>>,
    Path((container, user, file)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let id = app_of_container(&container);
    let Some(a) = read_app(&shared, &id) else {
        return html(
            "<html><body><h1>Unknown container. Container either has not started or has \
             already completed or doesn't belong to this node at all.</h1></body></html>"
                .to_string(),
        );
    };
    if a.logs == Logs::Aggregated {
        // NMWebAppFilter: the application left the node; its logs are on the log server.
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let location = format!(
            "{}/jobhistory/logs/nm1.example.com:45454/{container}/{container}/{user}/{file}{query}",
            shared.jhs_url
        );
        let mut resp = (
            StatusCode::TEMPORARY_REDIRECT,
            format!("Redirecting to log server : {location}\n"),
        )
            .into_response();
        resp.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
        return resp;
    }
    html(shared.log_page(&format!("nm-containerlogs-{file}.html"), &a, &file))
}

async fn aggregated_log(
    State(shared): State<Arc<Shared>>,
    Path((_node, container, _entity, _user, file)): Path<(String, String, String, String, String)>,
) -> Response {
    let id = app_of_container(&container);
    let app = read_app(&shared, &id);
    match &app {
        Some(a) if a.logs == Logs::Aggregated => {
            html(shared.log_page(&format!("jhs-aggregated-{file}.html"), a, &file))
        }
        _ => {
            let user = app.as_ref().map_or("alice", |a| a.user.as_str());
            let text = shared.fixture("jhs-not-aggregated.html");
            html(shared.rewrite(&text, &id, user))
        }
    }
}
