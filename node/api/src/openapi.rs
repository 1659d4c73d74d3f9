//! The OpenAPI 3 document: the paths of every route in the route table (each from its
//! handler's annotation), on top of the document's info, tags and shared schemas. It cannot
//! drift from what the server routes; a test walks it against a running node.

use super::error::ErrorBody;
use super::routes;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use kindling_api_model::model;
use std::sync::OnceLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Kindling", description = "A highly available job server for Apache Spark: Livy-compatible REST at the root, native API under /api/v1."),
    components(schemas(model::LivyList<model::LivyBatch>, model::LivyList<model::LivySession>, ErrorBody)),
    tags((name = "livy", description = "Apache Livy's REST API, field for field"),
         (name = "native", description = "Kindling's own API"),
         (name = "clusters", description = "The registry of Spark clusters jobs run on"),
         (name = "tokens", description = "API tokens for scripts, schedulers and the CLI"))
)]
struct Base;

/// The document, built from the route table.
pub fn build() -> utoipa::openapi::OpenApi {
    routes::document(routes::table(), Base::openapi())
}

/// Serves the document, built once on first request and kept as its JSON text (about
/// 150 KB): the built structure is several times that, and would be serialized again on
/// every request.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "native",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub async fn document() -> impl IntoResponse {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let json = DOCUMENT.get_or_init(|| {
        Bytes::from(serde_json::to_vec(&build()).expect("the document serializes"))
    });
    ([(header::CONTENT_TYPE, "application/json")], json.clone())
}
