//! The one place where errors become HTTP responses. Livy's error body is `{"msg": "..."}`;
//! the native API uses the same shape. A client's mistake is always a 4xx whose message says
//! what to fix; a 5xx means the node itself failed.

use crate::error::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
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
    pub status: StatusCode,
    pub msg: String,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            msg: msg.into(),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            msg: format!("{what} '{id}' not found."),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(id) => return ApiError::not_found("Session", &id.to_string()),
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Domain(d) => match d {
                DomainError::UnknownJob(id) => {
                    return ApiError::not_found("Session", &id.to_string())
                }
                DomainError::UnknownStatement { statement, .. } => {
                    return ApiError::not_found("Statement", &statement.to_string())
                }
                DomainError::NotASession { .. } => StatusCode::BAD_REQUEST,
                DomainError::UnknownCluster(name) => return ApiError::not_found("Cluster", name),
                DomainError::Decode(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::CONFLICT,
            },
            Error::Unavailable(_) | Error::NotLeader(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Raft(_) => {
                tracing::error!(error = %e, "request failed inside the node");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError {
            status,
            msg: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { msg: self.msg })).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
