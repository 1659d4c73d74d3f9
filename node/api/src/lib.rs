//! The REST API: Livy's surface at the root (so sparkmagic, pylivy and Airflow's Livy
//! operator work unchanged) and the native API under `/api/v1`, described by the OpenAPI 3
//! document at `/api/v1/openapi.json`. Every route is declared once ([`routes::table`]):
//! the router, the document and the forwarding to the leader come from there. Handlers
//! validate, call the core, and shape replies; they hold no state of their own.

pub mod access;
pub mod clusters;
pub mod cookie;
pub mod error;
pub mod extract;
pub mod forward;
pub mod livy;
pub mod login;
pub mod logs;
pub mod metrics;
pub mod native;
pub mod openapi;
pub mod queues;
pub mod routes;
pub mod state;
pub mod stream;
pub mod tokens;

pub use state::AppState;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use error::ApiError;
use extract::BodyLimit;
use kindling_core::ErrorCode;
use std::sync::Arc;

pub type State = axum::extract::State<Arc<AppState>>;

/// The API's router over `state`, taking request bodies up to `body_limit` bytes.
pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    routes::router(routes::table(), &state)
        .merge(kindling_ui::router())
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "no such endpoint; see /api/v1/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this endpoint; see /api/v1/openapi.json",
            )
        })
        .layer(axum::middleware::from_fn(
            move |mut req: Request, next: Next| async move {
                req.extensions_mut().insert(BodyLimit(body_limit));
                let r: Response = next.run(req).await;
                r
            },
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// A handler that panicked answers 500 with the usual error body, and the node goes on:
/// nothing it holds is left poisoned (its locks do not poison).
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = %what, "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::new(
        ErrorCode::Internal,
        "the node failed on this request; its log says why",
    ))
}
