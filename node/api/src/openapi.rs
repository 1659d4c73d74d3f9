//! The OpenAPI 3 document: the paths of every route in the route table (each from its
//! handler's annotation), on top of the document's info, tags and shared schemas. It cannot
//! drift from what the server routes; a test walks it against a running node.

use super::error::ErrorBody;
use super::routes;
use axum::Json;
use kindling_api_model::model;
use std::sync::OnceLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Kindling", description = "A highly available job server for Apache Spark: Livy-compatible REST at the root, native API under /api/v1."),
    components(schemas(model::LivyList<model::LivyBatch>, model::LivyList<model::LivySession>, ErrorBody)),
    tags((name = "livy", description = "Apache Livy's REST API, field for field"),
         (name = "native", description = "Kindling's own API"),
         (name = "clusters", description = "The registry of Spark clusters jobs run on"))
)]
struct Base;

/// The document, built from the route table.
pub fn build() -> utoipa::openapi::OpenApi {
    routes::document(routes::table(), Base::openapi())
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "native",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOCUMENT.get_or_init(build))
}
