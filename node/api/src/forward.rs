//! Any node answers any REST call, but only the leader decides commands on existing jobs and
//! on the cluster registry. A follower that receives one (a route the table declares
//! `OnLeader`: a kill, a delete, a statement, a cancel, a completion, a cluster change)
//! passes it to the leader over HTTP and relays the answer. Creating a job and every read are
//! served where they arrive.
//!
//! A request is passed on at most once: one that arrives forwarded at a node that does not
//! lead (leadership moved in between) is answered 503, so requests never travel in circles.
//! A request is retried at a new leader only when the old one provably never got it (the
//! connection was refused), so a statement is never submitted twice by the forwarding.
//!
//! The leader does not authenticate the caller again: with a cluster secret, the member
//! passes on the principal it authenticated, signed together with the request (see
//! `access::admit`). Without one the leader authenticates the forwarded credentials itself.

use super::error::ApiError;
use super::State;
use crate::metrics;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kindling_auth::{Principal, Role};
use kindling_core::Error;
use kindling_core::ErrorCode;
use std::time::{Duration, Instant};

/// Marks a request a member passed on, naming that member.
pub const FORWARDED_BY: &str = "x-kindling-forwarded-by";

/// The caller a member authenticated, on a request it forwards: `role:user` (`user` empty
/// for the anonymous caller of a node without authentication).
pub const FORWARDED_PRINCIPAL: &str = "x-kindling-forwarded-principal";
/// The cluster token over the forwarded request: method, path, principal and body.
pub const FORWARDED_TOKEN: &str = "x-kindling-forwarded-token";
/// What a forwarded request's token is signed for.
pub const FORWARD_PURPOSE: &str = "forwarded-request";

/// How long a request waits for a leader to be elected (or to finish taking over).
const LEADER_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Forwarder {
    /// `http`, or `https` when members serve HTTPS.
    scheme: &'static str,
    client: reqwest::Client,
    body_limit: usize,
}

impl Forwarder {
    /// Whether members serve HTTPS (then cookies are `Secure`).
    pub fn serves_https(&self) -> bool {
        self.scheme == "https"
    }

    /// The JSON answer of `GET path` at the member whose REST address is `addr`, within
    /// `timeout`; `Err` says why there is none.
    pub async fn peer_get(
        &self,
        addr: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        let url = format!("{}://{addr}{path}", self.scheme);
        let response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "no answer in time".to_string()
                } else {
                    "unreachable".to_string()
                }
            })?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status().as_u16()));
        }
        response
            .json()
            .await
            .map_err(|_| "answered something that is not JSON".into())
    }

    /// A forwarder of bodies up to `body_limit`; over HTTPS, trusting the PEM certificates
    /// of `trusted`, when members serve HTTPS.
    pub fn new(body_limit: usize, trusted: Option<&[u8]>) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder();
        let mut scheme = "http";
        if let Some(pem) = trusted {
            scheme = "https";
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the certificates to trust: {e}"))?;
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        Ok(Forwarder {
            scheme,
            client: builder
                .connect_timeout(Duration::from_secs(1))
                // A long poll or a slow statement submission may take this long at the
                // leader; the client's own timeout usually ends it first.
                .timeout(Duration::from_secs(90))
                .tcp_nodelay(true)
                // Well within the leader's idle timeout (30 s by default), so a request is
                // never sent on a connection the leader is closing.
                .pool_idle_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("the forwarding client: {e}"))?,
            body_limit,
        })
    }

    /// The largest body it passes on.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }
}

/// The middleware of the routes that run on the leader: runs the request here if this node
/// leads, otherwise passes it to the leader.
pub async fn to_leader(axum::extract::State(s): State, req: Request, next: Next) -> Response {
    if s.core.leading_term().is_some() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match buffered(&s, body).await {
        Ok(bytes) => leader_runs(s, parts, bytes, next).await,
        Err(too_large) => too_large,
    }
}

/// The middleware of the routes that create a job: the node it reaches creates it, unless
/// the request names the job (a top-level `name` in its JSON body). Names are unique among
/// active jobs, which only the leader can tell: it creates every named job.
pub async fn to_leader_when_named(
    axum::extract::State(s): State,
    req: Request,
    next: Next,
) -> Response {
    if s.core.leading_term().is_some() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match buffered(&s, body).await {
        Ok(bytes) => bytes,
        Err(too_large) => return too_large,
    };
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<serde_json::Value>,
    }
    // A blank name names nothing (it cannot stand in a path either).
    let named = serde_json::from_slice::<Named>(&bytes).is_ok_and(|n| match n.name {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    });
    if named {
        leader_runs(s, parts, bytes, next).await
    } else {
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    }
}

/// The request's body, up to the forwarder's limit; over it, the answer that says so.
async fn buffered(s: &super::AppState, body: Body) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, s.forwarder.body_limit)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body is larger than {} bytes",
                    s.forwarder.body_limit
                ),
            )
            .into_response()
        })
}

/// Runs the request on the leader: here once this node leads, else passed on to it.
async fn leader_runs(
    s: std::sync::Arc<super::AppState>,
    parts: axum::http::request::Parts,
    bytes: axum::body::Bytes,
    next: Next,
) -> Response {
    let me = s.core.node;
    let forwarded = parts.headers.contains_key(FORWARDED_BY);
    let deadline = Instant::now() + LEADER_WAIT;
    let mut leading = s.core.leading();
    loop {
        if s.core.leading_term().is_some() {
            let req = Request::from_parts(parts, Body::from(bytes));
            return next.run(req).await;
        }
        let view = s.cluster.cluster_view();
        let target = view
            .leader_member()
            .filter(|m| m.id != me && !forwarded)
            .map(|m| m.http_addr.clone());
        if let Some(addr) = target {
            match pass_on(&s, &parts, bytes.clone(), &addr).await {
                Ok(resp) => {
                    metrics::forwarded("ok");
                    return resp;
                }
                Err(e) if e.is_connect() && Instant::now() < deadline => {
                    // The leader is gone and never saw the request: wait for the next one.
                    metrics::forwarded("retried");
                    tracing::info!(leader = %addr, error = %e, "leader unreachable; waiting for a new one");
                }
                Err(e) => {
                    metrics::forwarded("failed");
                    return ApiError::unavailable(format!(
                        "the leader at {addr} did not answer ({e}); the request may or may not \
                         have been applied, check before retrying"
                    ))
                    .into_response();
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            metrics::forwarded("no_leader");
            return ApiError::from(Error::NotLeader(view.leader)).into_response();
        }
        // Wait for this node to take over, or for Raft to name another leader.
        let mut raft = s.core.leadership();
        raft.borrow_and_update();
        leading.borrow_and_update();
        let _ = tokio::time::timeout(left.min(Duration::from_millis(250)), async {
            tokio::select! {
                _ = raft.changed() => {}
                _ = leading.changed() => {}
            }
        })
        .await;
    }
}

async fn pass_on(
    s: &super::AppState,
    parts: &axum::http::request::Parts,
    body: axum::body::Bytes,
    addr: &str,
) -> Result<Response, reqwest::Error> {
    let base = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("{}://{addr}", s.forwarder.scheme)
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut req = s
        .forwarder
        .client
        .request(parts.method.clone(), format!("{base}{path}"));
    for (name, value) in &parts.headers {
        let ours = [FORWARDED_BY, FORWARDED_PRINCIPAL, FORWARDED_TOKEN].contains(&name.as_str());
        if name != header::HOST
            && name != header::CONTENT_LENGTH
            && name != header::CONNECTION
            && !ours
        {
            req = req.header(name, value);
        }
    }
    req = req.header(FORWARDED_BY, s.core.node.0.to_string());
    if let (Some(secret), Some(who)) = (&s.cluster_secret, parts.extensions.get::<Principal>()) {
        let principal = encode_principal(who);
        let token = secret.sign(
            FORWARD_PURPOSE,
            &forwarded_payload(parts.method.as_str(), path, &principal, &body),
        );
        req = req
            .header(FORWARDED_PRINCIPAL, principal)
            .header(FORWARDED_TOKEN, token);
    }
    let req = req.body(body);
    let resp = req.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await?;
    let mut out = Response::builder().status(status.as_u16());
    for name in [header::CONTENT_TYPE, header::LOCATION, header::SET_COOKIE] {
        if let Some(v) = headers.get(&name) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                out = out.header(name, v);
            }
        }
    }
    Ok(out
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()))
}

/// What a forwarded request's cluster token covers.
pub fn forwarded_payload(method: &str, path: &str, principal: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(method.len() + path.len() + principal.len() + body.len() + 3);
    for part in [method.as_bytes(), path.as_bytes(), principal.as_bytes()] {
        out.extend_from_slice(part);
        out.push(0);
    }
    out.extend_from_slice(body);
    out
}

/// `who` as [`FORWARDED_PRINCIPAL`] carries it: `role:token:user` (the token id, if any,
/// is hex; the user name comes last, whatever it holds).
pub fn encode_principal(who: &Principal) -> String {
    format!(
        "{}:{}:{}",
        who.role.as_str(),
        who.token.as_deref().unwrap_or_default(),
        who.user.as_deref().unwrap_or_default()
    )
}

/// The principal [`encode_principal`] wrote.
pub fn decode_principal(value: &str) -> Option<Principal> {
    let (role, rest) = value.split_once(':')?;
    let (token, user) = rest.split_once(':')?;
    Some(Principal {
        user: Some(user).filter(|u| !u.is_empty()).map(str::to_string),
        role: Role::parse(role)?,
        token: Some(token).filter(|t| !t.is_empty()).map(str::to_string),
    })
}
