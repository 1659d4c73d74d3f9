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

/// Livy's `from`/`size` over a log: `size` defaults to 100 (negative: all); a missing or
/// negative `from` means the last `size` lines.
pub fn slice_log(
    lines: Vec<String>,
    from: Option<i64>,
    size: Option<i64>,
) -> (usize, usize, Vec<String>) {
    let total = lines.len();
    let size = match size {
        Some(s) if s < 0 => total,
        Some(s) => s as usize,
        None => 100,
    };
    let from = match from {
        Some(f) if f >= 0 => (f as usize).min(total),
        _ => total.saturating_sub(size),
    };
    let until = from.saturating_add(size).min(total);
    (from, total, lines[from..until].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn log_slices_like_livy() {
        let (from, total, l) = slice_log(lines(250), None, None);
        assert_eq!(
            (from, total, l.len(), l[0].as_str()),
            (150, 250, 100, "150")
        );
        let (from, _, l) = slice_log(lines(250), Some(0), Some(10));
        assert_eq!((from, l.len(), l[9].as_str()), (0, 10, "9"));
        let (_, _, l) = slice_log(lines(250), Some(240), Some(100));
        assert_eq!(l.len(), 10);
        let (_, _, l) = slice_log(lines(250), Some(0), Some(-1));
        assert_eq!(l.len(), 250);
        let (from, _, l) = slice_log(lines(5), Some(99), None);
        assert_eq!((from, l.len()), (5, 0));
    }
}
