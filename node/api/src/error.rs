//! Where errors become HTTP responses. Livy's error body is `{"msg": "..."}`; the native API
//! uses the same shape. The status comes from the error's [`ErrorCode`], the one table the
//! driver gateway's gRPC statuses come from too; a 503 says when to retry (`Retry-After`). A
//! client's mistake is always a 4xx whose message says what to fix; a 5xx means the node
//! itself failed or cannot answer now.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kindling_core::{Error, ErrorCode};
use kindling_events::DomainError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and, for a client error, what to fix.
    pub msg: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub msg: String,
    /// Why a 503 could not be served (see [`Error::unavailable_cause`]); every
    /// [`ErrorCode::Unavailable`] has one.
    pub cause: Option<&'static str>,
}

/// Carried by a 503 the node refused a request with, to the route's metrics: why. A 503
/// without it (a readiness answer, a leader's answer passed on) refused nothing here.
#[derive(Debug, Clone, Copy)]
pub struct UnavailableCause(pub &'static str);

impl ApiError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ApiError {
            code,
            msg: msg.into(),
            cause: (code == ErrorCode::Unavailable).then_some("not_ready"),
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, msg)
    }

    /// Livy's wording: `Session '7' not found.`
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} '{id}' not found."))
    }

    /// Refused by the node's state, not by the request's shape: the same request may succeed
    /// once the state changes.
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Conflict, msg)
    }

    pub fn unavailable(msg: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unavailable, msg)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        // Livy names what was not found, its way.
        match &e {
            Error::NotFound(id) | Error::Domain(DomainError::UnknownJob(id)) => {
                return ApiError::not_found("Session", &id.to_string())
            }
            Error::Domain(DomainError::UnknownStatement { statement, .. }) => {
                return ApiError::not_found("Statement", &statement.to_string())
            }
            Error::Domain(DomainError::UnknownCluster(name)) => {
                return ApiError::not_found("Cluster", name)
            }
            _ => {}
        }
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "request failed inside the node");
        }
        ApiError {
            cause: (code == ErrorCode::Unavailable).then(|| e.unavailable_cause()),
            ..ApiError::new(code, e.to_string())
        }
    }
}

impl From<kindling_api_model::Invalid> for ApiError {
    fn from(e: kindling_api_model::Invalid) -> Self {
        ApiError::bad_request(e.0)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(ErrorBody { msg: self.msg })).into_response();
        if let Some(secs) = self.code.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(UnavailableCause(cause));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
