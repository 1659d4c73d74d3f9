//! A browser's login: `POST /api/v1/login` with the node's usual credentials (a password by
//! HTTP Basic, an identity provider's JWT or an API token as Bearer) answers with the session
//! cookie ([`crate::cookie`]); later requests authenticate by it alone. A login is an API token
//! named [`LOGIN_TOKEN_NAME`] that lives [`LOGIN_HOURS`], decided by the leader like any
//! token, so every node honours it; one who logged in with an API token keeps that token in
//! the cookie instead. `POST /api/v1/logout` revokes the login and clears the cookie;
//! `GET /api/v1/whoami` tells the caller who the node takes them for.

use super::cookie;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kindling_api_model::model::{Msg, WhoAmI, LOGIN_HOURS, LOGIN_TOKEN_NAME, MAX_LOGINS_PER_USER};
use kindling_auth::{ApiToken, AuthMode, Credentials, Principal};
use kindling_events::{IssuedToken, Token, TokenCommand};

const HOUR_MS: i64 = 3_600_000;

/// The Kindling API token the request presented: in `Authorization: Bearer`, else in the
/// session cookie.
fn presented(headers: &HeaderMap) -> Option<ApiToken> {
    let bearer =
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| match Credentials::parse(v.as_bytes()) {
                Ok(Credentials::Bearer(token)) => Some(token),
                _ => None,
            });
    match bearer {
        Some(text) => ApiToken::parse(&text),
        None if !headers.contains_key(header::AUTHORIZATION) => {
            cookie::session(headers).and_then(|text| ApiToken::parse(&text))
        }
        None => None,
    }
}

/// The live token `presented` names, if it is `who`'s and its secret matches.
async fn token_of(
    s: &super::AppState,
    who: &Principal,
    presented: &ApiToken,
) -> ApiResult<Option<Token>> {
    let tokens = s.tokens.current().await?;
    Ok(tokens
        .get(&presented.id)
        .filter(|t| who.user.as_deref() == Some(t.issued.user.as_str()))
        .filter(|t| presented.matches(&t.issued.secret_sha256))
        .cloned())
}

fn who_am_i(s: &super::AppState, who: &Principal, expires_at: Option<i64>) -> WhoAmI {
    WhoAmI {
        user: who.user.clone(),
        role: who.role.as_str().into(),
        authentication: s.auth.mode() != AuthMode::None,
        expires_at,
    }
}

#[utoipa::path(post, path = "/api/v1/login", tag = "tokens",
    responses((status = 200, body = WhoAmI, description = "logged in: the answer sets the session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS)"),
        (status = 409, body = ErrorBody, description = "the node runs without authentication")))]
pub async fn login(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(user) = who.user.clone().filter(|_| s.auth.mode() != AuthMode::None) else {
        return Err(ApiError::conflict(
            "this node runs without authentication (--auth): there is nothing to log in to",
        ));
    };
    let now = s.core.clock.now_ms();
    // Already holding a token (an API token, or the cookie of a login): the cookie carries it.
    if let Some(presented) = presented(&headers) {
        if let Some(token) = token_of(&s, &who, &presented).await? {
            let expires = token.issued.expires_at_ms;
            return Ok(logged_in(&s, &who, &presented.text(), expires, now));
        }
    }
    end_oldest_logins(&s, &user).await?;
    let token = ApiToken::generate();
    let expires = now + LOGIN_HOURS * HOUR_MS;
    let issued = IssuedToken {
        id: token.id.clone(),
        user: user.clone(),
        name: LOGIN_TOKEN_NAME.into(),
        role: who.role.as_str().into(),
        secret_sha256: token.secret_sha256(),
        expires_at_ms: expires,
    };
    s.tokens
        .execute(TokenCommand::Issue(issued), Some(user))
        .await?;
    Ok(logged_in(&s, &who, &token.text(), expires, now))
}

/// The answer to a login: the caller, and the cookie holding `token` until `expires`.
fn logged_in(
    s: &super::AppState,
    who: &Principal,
    token: &str,
    expires: i64,
    now: i64,
) -> Response {
    let cookie = cookie::set(token, (expires - now) / 1000, s.forwarder.serves_https());
    let mut response = Json(who_am_i(s, who, Some(expires))).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Revokes `user`'s oldest logins so that one more stays within [`MAX_LOGINS_PER_USER`].
async fn end_oldest_logins(s: &super::AppState, user: &str) -> ApiResult<()> {
    let tokens = s.tokens.current().await?;
    let mut logins: Vec<&Token> = tokens
        .tokens
        .values()
        .filter(|t| t.issued.user == user && t.issued.name == LOGIN_TOKEN_NAME)
        .collect();
    logins.sort_by_key(|t| t.issued_at_ms);
    let excess = (logins.len() + 1).saturating_sub(MAX_LOGINS_PER_USER);
    for t in logins.into_iter().take(excess) {
        let id = t.issued.id.clone();
        s.tokens
            .execute(TokenCommand::Revoke { id }, Some(user.to_string()))
            .await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "tokens",
    responses((status = 200, body = Msg, description = "the session cookie is cleared, and the login it held is revoked on every node")))]
pub async fn logout(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut msg = "logged out".to_string();
    let login = match cookie::session(&headers).and_then(|text| ApiToken::parse(&text)) {
        Some(presented) => token_of(&s, &who, &presented).await?,
        None => None,
    };
    // An API token someone logged in with lives on: only a login ends with its cookie.
    if let Some(token) = login.filter(|t| t.issued.name == LOGIN_TOKEN_NAME) {
        let id = token.issued.id.clone();
        s.tokens
            .execute(TokenCommand::Revoke { id: id.clone() }, who.user.clone())
            .await?;
        msg = format!("logged out; login '{id}' revoked");
    }
    let mut response = (StatusCode::OK, Json(Msg { msg })).into_response();
    let clear = cookie::clear(s.forwarder.serves_https());
    response.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "tokens",
    responses((status = 200, body = WhoAmI, description = "the caller as the node authenticated it")))]
pub async fn whoami(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    headers: HeaderMap,
) -> ApiResult<Json<WhoAmI>> {
    let expires = match presented(&headers) {
        Some(presented) => token_of(&s, &who, &presented)
            .await?
            .map(|t| t.issued.expires_at_ms),
        None => None,
    };
    Ok(Json(who_am_i(&s, &who, expires)))
}
