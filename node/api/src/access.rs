//! Who may call what, applied to every request from the route table: each route declares an
//! [`Access`], and [`admit`] authenticates the caller (unless the route is public) and
//! checks the route's role, before any forwarding to the leader (a trusted proxy's user
//! header, from the proxy's addresses, names the caller instead of credentials);
//! [`job_access`] then checks the job the path names where the handler runs. A job the
//! caller may not view answers exactly as a job that does not exist, so ids tell nothing
//! about other users' jobs. A request a member forwards with a valid cluster token runs as
//! the principal that member authenticated. A browser's session cookie counts as credentials
//! only when the request has no others, and changes nothing without `X-Requested-By`
//! ([`cookie`]).

use crate::cookie;
use crate::error::ApiError;
use crate::forward::{
    decode_principal, forwarded_payload, FORWARDED_PRINCIPAL, FORWARDED_TOKEN, FORWARD_PURPOSE,
};
use crate::State;
use axum::extract::{ConnectInfo, RawPathParams, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kindling_auth::{Access, ApiToken, AuthError, AuthMode, Credentials, Principal, Role};
use kindling_core::ErrorCode;
use kindling_events::JobId;
use kindling_raft::ClusterSecret;
use std::net::{IpAddr, SocketAddr};

/// Authenticates the caller of a route with `access` and checks its role; the principal
/// goes on to the handler as a request extension.
pub async fn admit(s: State, access: Access, req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    if let (Some(secret), true) = (
        &s.0.cluster_secret,
        req.headers().contains_key(FORWARDED_TOKEN),
    ) {
        return match forwarded(secret, req, s.0.forwarder.body_limit()).await {
            Ok((who, req)) => admitted(access, who, req, next).await,
            Err(response) => response,
        };
    }
    let mut header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let proxied = s.0.auth.trusted_proxy().and_then(|p| {
        let value = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
        let groups = p.groups_header.as_deref().and_then(value);
        s.0.auth.proxied(client, value(&p.user_header), groups)
    });
    // Without other credentials, a browser's session cookie; it may change nothing without
    // the header a page of another site cannot send.
    let mut by_cookie = false;
    if proxied.is_none() && header.is_none() && s.0.auth.mode() != AuthMode::None {
        if let Some(token) = cookie::session(req.headers()) {
            if !cookie::may_change(req.method(), req.headers()) {
                crate::metrics::auth_refused("csrf");
                return ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "a request that authenticates by the session cookie and changes \
                         something must carry the {} header (cross-site request protection)",
                        cookie::REQUESTED_BY
                    ),
                )
                .into_response();
            }
            header = Some(format!("Bearer {token}").into_bytes());
            by_cookie = true;
        }
    }
    // A page's script (fetch, EventSource) says so in Sec-Fetch-Mode; a navigation does not.
    let from_script = req
        .headers()
        .get("sec-fetch-mode")
        .is_some_and(|m| m.as_bytes() != b"navigate");
    let who = match proxied {
        Some(who) => who,
        None => authenticate(&s, header, client).await,
    };
    let who = match who {
        Ok(who) => who,
        Err(e) => {
            let mut response = refusal(&s, e, from_script);
            if by_cookie {
                // A cookie that no longer logs in is of no use to the browser.
                let clear = cookie::clear(s.0.forwarder.serves_https());
                response.headers_mut().insert(header::SET_COOKIE, clear);
            }
            return response;
        }
    };
    admitted(access, who, req, next).await
}

/// Runs `req` for `who` if its role allows `access`.
async fn admitted(access: Access, who: Principal, mut req: Request, next: Next) -> Response {
    let denied = match (access, who.role) {
        (Access::Submit, Role::Viewer) => Some("run jobs"),
        (Access::ModifyJob, Role::Viewer) => Some("change jobs"),
        (Access::Admin, Role::User | Role::Viewer) => Some("do this (admins only)"),
        _ => None,
    };
    if let Some(what) = denied {
        crate::metrics::auth_refused("forbidden");
        return ApiError::new(
            ErrorCode::Forbidden,
            format!("{} '{}' may not {what}", who.role.as_str(), who.name()),
        )
        .into_response();
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// The principal a member authenticated and forwarded `req` for, once the cluster token
/// proves it (with the method, path and body); the request goes on with its body read.
async fn forwarded(
    secret: &ClusterSecret,
    req: Request,
    body_limit: usize,
) -> Result<(Principal, Request), Response> {
    let (parts, body) = req.into_parts();
    let refuse = |why: String| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            format!("forwarded request refused: {why}"),
        )
        .into_response()
    };
    let bytes = axum::body::to_bytes(body, body_limit)
        .await
        .map_err(|_| refuse("its body is unreadable or too large".into()))?;
    let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let principal = text(FORWARDED_PRINCIPAL).unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let payload = forwarded_payload(parts.method.as_str(), path, principal, &bytes);
    secret
        .verify(FORWARD_PURPOSE, text(FORWARDED_TOKEN), &payload)
        .map_err(|e| refuse(e.to_string()))?;
    let who = decode_principal(principal).ok_or_else(|| refuse("no principal".into()))?;
    Ok((
        who,
        Request::from_parts(parts, axum::body::Body::from(bytes)),
    ))
}

/// The caller presenting `header` (its `Authorization` value) from `client`. A check that
/// needs a slow hash runs off the async threads.
async fn authenticate(
    s: &State,
    header: Option<Vec<u8>>,
    client: Option<IpAddr>,
) -> Result<Principal, AuthError> {
    if let Some(who) = s.0.auth.remembered(header.as_deref()) {
        return Ok(who);
    }
    // A Kindling API token is checked against the tokens every node projects; any other
    // credentials by the node's modes.
    if let Some(Ok(Credentials::Bearer(token))) = header.as_deref().map(Credentials::parse) {
        if ApiToken::is_one(&token) {
            return crate::tokens::check(&s.0, &token, client).await;
        }
    }
    let auth = s.0.auth.clone();
    tokio::task::spawn_blocking(move || auth.authenticate(header.as_deref(), client))
        .await
        .unwrap_or(Err(AuthError::Invalid))
}

/// The answer to a caller refused for `e`; a page's script (`from_script`) gets no Basic
/// challenge, which would open the browser's own login dialog.
fn refusal(s: &State, e: AuthError, from_script: bool) -> Response {
    crate::metrics::auth_refused(match &e {
        AuthError::Missing(_) => "missing",
        AuthError::Malformed(_) | AuthError::ProxyHeader(_) => "malformed",
        AuthError::Invalid => "invalid",
        AuthError::InvalidToken(_) => "invalid_token",
        AuthError::Limited { .. } => "limited",
        AuthError::Unavailable(_) => "unavailable",
    });
    let (code, retry_after) = match &e {
        AuthError::Limited { retry_after_secs } => {
            (ErrorCode::TooManyRequests, Some(*retry_after_secs))
        }
        // The directory is away: 503 with its usual Retry-After, not a wrong password.
        AuthError::Unavailable(_) => {
            return ApiError::new(ErrorCode::Unavailable, e.to_string()).into_response()
        }
        _ => (ErrorCode::Unauthenticated, None),
    };
    let mut response = ApiError::new(code, e.to_string()).into_response();
    let headers = response.headers_mut();
    match retry_after {
        Some(secs) => {
            headers.insert(header::RETRY_AFTER, secs.into());
        }
        None => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(s.0.auth.challenge(from_script)),
            );
        }
    }
    response
}

/// Checks that the caller may view (or modify) the job `{id}` of the path names. A job that
/// does not exist is left to the handler, which says so its way; one the caller may not view
/// gets that same answer.
pub async fn job_access(
    s: State,
    access: Access,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let Some(who) = req.extensions().get::<Principal>().cloned() else {
        return next.run(req).await;
    };
    let Some(raw) = params
        .iter()
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.to_string())
    else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    // Livy's paths name a batch or session by its id or by its name.
    let livy = [("/sessions/", true), ("/batches/", false)]
        .into_iter()
        .find(|(prefix, _)| path.starts_with(prefix));
    let id = match livy {
        Some((_, session)) => match crate::livy::livy_target(&s.0, &raw, session).await {
            Ok(Some(id)) => id.0,
            Ok(None) => return next.run(req).await,
            Err(e) => return e.into_response(),
        },
        None => match raw.parse::<u64>() {
            Ok(id) => id,
            Err(_) => return next.run(req).await,
        },
    };
    let job = match s.0.job(JobId(id)).await {
        Ok(job) => job,
        Err(e) if e.code == ErrorCode::NotFound => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let rules = &s.0.job_rules;
    let (owner, proxy) = (job.spec.owner.as_deref(), job.spec.proxy_user.as_deref());
    if !rules.may_view(&who, owner, proxy) {
        return hidden(req.uri().path(), &raw, JobId(id)).into_response();
    }
    if access == Access::ModifyJob && !rules.may_modify(&who, owner, proxy) {
        return ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "user '{}' may not change job {id}: only its owner, the user it runs as, \
                 --modify-users and admins may",
                who.name()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// What the handler at `path` answers for a job that does not exist.
fn hidden(path: &str, raw: &str, id: JobId) -> ApiError {
    if path.starts_with("/batches/") {
        ApiError::not_found("Batch", raw)
    } else if path.starts_with("/sessions/") {
        ApiError::not_found("Session", raw)
    } else {
        ApiError::from(kindling_core::Error::NotFound(id))
    }
}
