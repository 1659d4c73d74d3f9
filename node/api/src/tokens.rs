//! `/api/v1/tokens`: API tokens for scripts, schedulers and the CLI. A logged-in user issues
//! one (its text is in that answer only), lists and revokes theirs; admins list and revoke
//! everyone's. Issuing and revoking are decided by the leader; any node checks a token
//! ([`check`]), after its read barrier, so a revocation holds everywhere at once.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::JsonBody;
use super::State;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use kindling_api_model::model::{
    IssuedTokenDoc, Msg, NewToken, TokenDoc, TokenList, DEFAULT_TOKEN_DAYS, LOGIN_TOKEN_NAME,
    MAX_TOKEN_DAYS, MAX_TOKEN_NAME,
};
use kindling_auth::{ApiToken, AuthError, AuthMode, Principal, Role};
use kindling_core::ErrorCode;
use kindling_events::{IssuedToken, Token, TokenCommand};
use std::net::IpAddr;

const DAY_MS: i64 = 86_400_000;

/// The caller a Kindling API token (`kdl_...`) names, if it is live and its secret matches.
/// Failures count against the client's limit, like wrong passwords.
pub async fn check(
    s: &super::AppState,
    bearer: &str,
    client: Option<IpAddr>,
) -> Result<Principal, AuthError> {
    s.auth.admit_client(client)?;
    let refused = |why: &str| {
        s.auth.client_failed(client);
        tracing::info!(client = ?client, why, "authentication failed");
        AuthError::InvalidToken(why.to_string())
    };
    let Some(presented) = ApiToken::parse(bearer) else {
        return Err(refused("not a well-formed Kindling API token"));
    };
    let tokens =
        s.tokens.current().await.map_err(|e| {
            AuthError::Unavailable(format!("the API tokens cannot be read now: {e}"))
        })?;
    let Some(token) = tokens
        .get(&presented.id)
        .filter(|t| presented.matches(&t.issued.secret_sha256))
    else {
        return Err(refused("unknown or revoked API token"));
    };
    if token.expired(s.core.clock.now_ms()) {
        return Err(refused("the API token has expired"));
    }
    let role = Role::parse(&token.issued.role).unwrap_or(Role::Viewer);
    if token.issued.name == LOGIN_TOKEN_NAME {
        // A login is the user in person: it may issue API tokens, which a token may not.
        return Ok(Principal::user(&token.issued.user, role));
    }
    Ok(Principal::by_token(
        &token.issued.user,
        role,
        &token.issued.id,
    ))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = IssuedTokenDoc, description = "the token; its text is shown this once"),
        (status = 403, body = ErrorBody, description = "a role above the caller's, or a caller that authenticated with a token (log in to issue tokens)"),
        (status = 409, body = ErrorBody, description = "the node runs without authentication, or the user holds the most live tokens allowed")))]
pub async fn create_token(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    JsonBody(req): JsonBody<NewToken>,
) -> ApiResult<impl IntoResponse> {
    if req.name.trim().is_empty() || req.name.chars().count() > MAX_TOKEN_NAME {
        return Err(ApiError::bad_request(format!(
            "name must be 1 to {MAX_TOKEN_NAME} characters, not blank"
        )));
    }
    if req.name == LOGIN_TOKEN_NAME {
        return Err(ApiError::bad_request(format!(
            "name '{LOGIN_TOKEN_NAME}' is kept for logins (POST /api/v1/login); choose another"
        )));
    }
    let days = req.expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "expiresInDays must be 1 to {MAX_TOKEN_DAYS}, got {days}"
        )));
    }
    let role = match req.role.as_deref() {
        None => who.role,
        Some(name) => Role::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!("role must be admin, user or viewer, got {name:?}"))
        })?,
    };
    let Some(user) = who.user.clone().filter(|_| s.auth.mode() != AuthMode::None) else {
        return Err(ApiError::conflict(
            "this node runs without authentication (--auth): there is nobody to issue a \
             token to",
        ));
    };
    if who.token.is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a token cannot issue tokens; authenticate as yourself (password, directory or \
             identity provider) to issue one",
        ));
    }
    if role > who.role {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "'{user}' is a {} and may not issue a token with role {}",
                who.role.as_str(),
                role.as_str()
            ),
        ));
    }
    let token = ApiToken::generate();
    let issued = IssuedToken {
        id: token.id.clone(),
        user: user.clone(),
        name: req.name,
        role: role.as_str().into(),
        secret_sha256: token.secret_sha256(),
        expires_at_ms: s.core.clock.now_ms() + days * DAY_MS,
    };
    let tokens = s
        .tokens
        .execute(TokenCommand::Issue(issued), Some(user))
        .await?;
    let stored = tokens
        .get(&token.id)
        .ok_or_else(|| ApiError::unavailable("the token was not recorded; try again"))?;
    let location = format!("/api/v1/tokens/{}", token.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(IssuedTokenDoc {
            doc: TokenDoc::from(stored),
            token: token.text(),
        }),
    ))
}

/// Whether `who` may see and revoke `token`: its own user, and admins.
fn manages(who: &Principal, token: &Token) -> bool {
    who.role == Role::Admin || who.user.as_deref() == Some(token.issued.user.as_str())
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList, description = "the caller's live tokens (an admin's: everyone's), never their text")))]
pub async fn list_tokens(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
) -> ApiResult<Json<TokenList>> {
    let tokens = s.tokens.current().await?;
    Ok(Json(TokenList {
        tokens: tokens
            .tokens
            .values()
            .filter(|t| manages(&who, t))
            .map(TokenDoc::from)
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token}", tag = "tokens",
    params(("token" = String, Path, description = "the token's id")),
    responses((status = 200, body = Msg, description = "revoked: no node takes it from now on"),
        (status = 404, body = ErrorBody, description = "no such token among those the caller manages")))]
pub async fn revoke_token(
    axum::extract::State(s): State,
    axum::Extension(who): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Msg>> {
    let tokens = s.tokens.current().await?;
    // Another user's token is answered as one that does not exist.
    if !tokens.get(&id).is_some_and(|t| manages(&who, t)) {
        return Err(ApiError::not_found("Token", &id));
    }
    s.tokens
        .execute(TokenCommand::Revoke { id: id.clone() }, who.user.clone())
        .await?;
    Ok(Json(Msg {
        msg: format!("token '{id}' revoked"),
    }))
}
