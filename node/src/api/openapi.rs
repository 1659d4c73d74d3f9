//! The OpenAPI 3 document, generated from the handlers' annotations so it cannot drift from
//! what the server does (a test walks it against a running node).

use super::{clusters, livy, model, native};
use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Kindling", description = "A highly available job server for Apache Spark: Livy-compatible REST at the root, native API under /api/v1."),
    paths(
        livy::version, livy::create_batch, livy::list_batches, livy::get_batch, livy::batch_state,
        livy::batch_log, livy::delete_batch, livy::create_session, livy::list_sessions,
        livy::get_session, livy::session_state, livy::session_log, livy::delete_session,
        livy::create_statement, livy::list_statements, livy::get_statement,
        livy::cancel_statement, livy::completion,
        native::health, native::cluster, native::remove_member, native::metrics, native::list_jobs, native::create_batch,
        native::create_session, native::get_job, native::kill_job, native::events, native::log_events, native::log,
        native::create_statement, native::list_statements, native::get_statement,
        native::cancel_statement, document,
        clusters::list_clusters, clusters::create_cluster, clusters::get_cluster,
        clusters::update_cluster, clusters::delete_cluster,
    ),
    components(schemas(model::LivyList<model::LivyBatch>, model::LivyList<model::LivySession>)),
    tags((name = "livy", description = "Apache Livy's REST API, field for field"),
         (name = "native", description = "Kindling's own API"),
         (name = "clusters", description = "The registry of Spark clusters jobs run on"))
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "native",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
