//! The REST API: Livy's surface at the root (so sparkmagic, pylivy and Airflow's Livy
//! operator work unchanged) and the native API under `/api/v1`, described by the OpenAPI 3
//! document at `/api/v1/openapi.json`. Every route is declared once ([`routes::table`]):
//! the router, the document and the forwarding to the leader come from there. Handlers
//! validate, call the core, and shape replies; they hold no state of their own.

pub mod clusters;
pub mod error;
pub mod extract;
pub mod forward;
pub mod livy;
pub mod logs;
pub mod metrics;
pub mod native;
pub mod openapi;
pub mod routes;
pub mod state;

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
        .with_state(state)
}
