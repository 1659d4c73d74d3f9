//! Every route of the REST API, declared once in [`table`]: its handler, whose
//! `#[utoipa::path]` annotation gives the method, the path and the OpenAPI operation, and
//! where it runs ([`Runs`]). The router, the OpenAPI document and the forwarding to the leader
//! are all derived from the table, so a route cannot be served undocumented, documented
//! unserved, or change an existing job without saying where it runs.

use super::{clusters, forward, livy, native, openapi, AppState};
use axum::routing::MethodRouter;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::openapi::path::{HttpMethod, Operation, Paths};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

/// Where a route runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// On the node it reaches: reads, new jobs (any member creates them with ids leased
    /// through Raft), and views of the node itself.
    Anywhere,
    /// On the leader, which decides every command on an existing job and on the cluster
    /// registry: a follower passes the request to it.
    OnLeader,
}

/// One route: a method on a path, its handler and OpenAPI operation, where it runs.
pub struct Route {
    pub method: HttpMethod,
    /// The path as OpenAPI and axum both write it, e.g. `/batches/{id}`.
    pub path: String,
    pub runs: Runs,
    handler: MethodRouter<Arc<AppState>>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Route {
    fn new(runs: Runs, (schemas, paths, handler): UtoipaMethodRouter<Arc<AppState>>) -> Route {
        let (path, method) = {
            let (path, item) = paths
                .paths
                .iter()
                .next()
                .expect("a handler documents its path");
            let declared: Vec<HttpMethod> = [
                (HttpMethod::Get, item.get.is_some()),
                (HttpMethod::Post, item.post.is_some()),
                (HttpMethod::Put, item.put.is_some()),
                (HttpMethod::Delete, item.delete.is_some()),
                (HttpMethod::Patch, item.patch.is_some()),
                (HttpMethod::Head, item.head.is_some()),
            ]
            .into_iter()
            .filter_map(|(m, declared)| declared.then_some(m))
            .collect();
            let [method] = <[HttpMethod; 1]>::try_from(declared)
                .unwrap_or_else(|d| panic!("one method per handler: {path} has {}", d.len()));
            (path.clone(), method)
        };
        Route {
            method,
            path,
            runs,
            handler,
            paths,
            schemas,
        }
    }
}

/// A route of `$handler`, which runs `$runs` (`Anywhere` or `OnLeader`).
macro_rules! route {
    ($runs:ident: $handler:path) => {
        Route::new(Runs::$runs, routes!($handler))
    };
}

/// Every route of the API.
pub fn table() -> Vec<Route> {
    vec![
        // Livy's API, field for field.
        route!(Anywhere: livy::version),
        route!(Anywhere: livy::create_batch),
        route!(Anywhere: livy::list_batches),
        route!(Anywhere: livy::get_batch),
        route!(Anywhere: livy::batch_state),
        route!(Anywhere: livy::batch_log),
        route!(OnLeader: livy::delete_batch),
        route!(Anywhere: livy::create_session),
        route!(Anywhere: livy::list_sessions),
        route!(Anywhere: livy::get_session),
        route!(Anywhere: livy::session_state),
        route!(Anywhere: livy::session_log),
        route!(OnLeader: livy::delete_session),
        route!(OnLeader: livy::create_statement),
        route!(Anywhere: livy::list_statements),
        route!(Anywhere: livy::get_statement),
        route!(OnLeader: livy::cancel_statement),
        route!(OnLeader: livy::completion),
        // The native API.
        route!(Anywhere: openapi::document),
        route!(Anywhere: native::health),
        route!(Anywhere: native::metrics),
        route!(Anywhere: native::cluster),
        // Raft forwards a membership change to its leader itself.
        route!(Anywhere: native::remove_member),
        route!(Anywhere: native::list_jobs),
        route!(Anywhere: native::create_batch),
        route!(Anywhere: native::create_session),
        route!(Anywhere: native::get_job),
        route!(OnLeader: native::kill_job),
        route!(Anywhere: native::events),
        route!(Anywhere: native::log_events),
        route!(Anywhere: native::log),
        route!(OnLeader: native::create_statement),
        route!(Anywhere: native::list_statements),
        route!(Anywhere: native::get_statement),
        route!(OnLeader: native::cancel_statement),
        // The cluster registry.
        route!(Anywhere: clusters::list_clusters),
        route!(OnLeader: clusters::create_cluster),
        route!(Anywhere: clusters::get_cluster),
        route!(OnLeader: clusters::update_cluster),
        route!(OnLeader: clusters::delete_cluster),
    ]
}

/// The router of `table`: each route's handler at its path, behind the forwarding to the
/// leader where it runs there.
pub fn router(table: Vec<Route>, state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let mut by_path: BTreeMap<String, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for route in table {
        let handler = match route.runs {
            Runs::Anywhere => route.handler,
            Runs::OnLeader => route
                .handler
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    forward::to_leader,
                )),
        };
        let merged = match by_path.remove(&route.path) {
            Some(other) => other.merge(handler),
            None => handler,
        };
        by_path.insert(route.path, merged);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(&path, handler)
        })
}

/// Views of the node itself: they neither read the projections nor need the leader, so
/// they never answer 503.
const NODE_VIEWS: [&str; 5] = [
    "/version",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/health",
    "/api/v1/cluster",
];

/// The OpenAPI document of `table`, on top of `base` (its info, tags and shared schemas).
/// Every operation also documents the errors its shape makes possible (see
/// [`error_statuses`]), so that no status the server answers is undocumented.
pub fn document(table: Vec<Route>, mut base: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = base.components.get_or_insert_with(Default::default);
    for mut route in table {
        components.schemas.extend(route.schemas);
        for item in route.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for param in op.parameters.iter_mut().flatten() {
                    if let Some(schema) = parameter_schema(&param.name) {
                        param.schema = Some(RefOr::T(schema));
                    }
                }
                let command = route.method != HttpMethod::Get;
                for (status, description) in error_statuses(&route.path, command, op) {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
        base.paths.merge(route.paths);
    }
    base
}

/// The errors an operation can answer, by its shape: a 400 for a request it can find wrong
/// (query parameters or a body), a 404 for an id in its path, a 409 for a command the state
/// of what it names may refuse, a 413 for a body, a 503 unless it is a view of the node.
fn error_statuses(path: &str, command: bool, op: &Operation) -> Vec<(u16, &'static str)> {
    use utoipa::openapi::path::ParameterIn;
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let body = op.request_body.is_some();
    let mut out = vec![];
    if body || has(ParameterIn::Query) {
        out.push((400, "the request is wrong; the message says what to fix"));
    }
    if has(ParameterIn::Path) {
        out.push((404, "what the path names does not exist"));
    }
    if command {
        out.push((
            409,
            "the state of what the request names does not allow it now",
        ));
    }
    if body {
        out.push((
            413,
            "the request (or its code) is larger than the node takes",
        ));
    }
    if !NODE_VIEWS.contains(&path) {
        out.push((
            503,
            "not now (an election, a store that is away); retry after Retry-After",
        ));
    }
    out
}

/// The schemas of parameters that mean the same wherever they appear, declared once: texts
/// the server takes without a NUL byte, a long poll's wait, the filters of job listings,
/// a cluster's name.
fn parameter_schema(name: &str) -> Option<utoipa::openapi::schema::Schema> {
    use kindling_api_model::schemas;
    use kindling_events::JobState;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let one_of = |values: Vec<&'static str>| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
            .enum_values(Some(values))
            .into()
    };
    Some(match name {
        "doAs" | "owner" => schemas::optional_text(),
        "wait" => schemas::wait(),
        "state" => one_of(JobState::ALL.iter().map(|s| s.as_str()).collect()),
        "kind" => one_of(vec!["batch", "session"]),
        "name" => ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(kindling_events::patterns::NAME))
            .into(),
        _ => return None,
    })
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let body = utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
        .build();
    RefOr::T(
        utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .content("application/json", body)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn method_name(m: &HttpMethod) -> &'static str {
        match m {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Head => "HEAD",
            _ => "OTHER",
        }
    }

    #[test]
    fn every_route_is_documented_once_and_every_documented_operation_is_a_route() {
        let declared: Vec<(String, &str)> = table()
            .iter()
            .map(|r| (r.path.clone(), method_name(&r.method)))
            .collect();
        let unique: BTreeSet<_> = declared.iter().cloned().collect();
        assert_eq!(unique.len(), declared.len(), "a route declared twice");
        let doc = serde_json::to_value(openapi::build()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((path.clone(), method.to_uppercase()));
            }
        }
        let declared: BTreeSet<(String, String)> = unique
            .into_iter()
            .map(|(p, m)| (p, m.to_string()))
            .collect();
        assert_eq!(declared, documented);
    }

    /// A review of the table's third column: a route that changes an existing job or the
    /// registry must run on the leader, whose write model is always current. A new route
    /// fails here until it is placed.
    #[test]
    fn commands_on_existing_jobs_and_the_registry_run_on_the_leader() {
        let creations_and_node_views = [
            ("POST", "/batches"),
            ("POST", "/sessions"),
            ("POST", "/api/v1/batches"),
            ("POST", "/api/v1/sessions"),
            ("DELETE", "/api/v1/cluster/members/{id}"),
        ];
        for r in table() {
            let method = method_name(&r.method);
            let reads_or_creates =
                method == "GET" || creations_and_node_views.contains(&(method, r.path.as_str()));
            let expected = if reads_or_creates {
                Runs::Anywhere
            } else {
                assert!(
                    r.path.contains("{id}") || r.path.starts_with("/api/v1/clusters"),
                    "{method} {}: a new kind of command; decide where it runs",
                    r.path
                );
                Runs::OnLeader
            };
            assert_eq!(r.runs, expected, "{method} {}", r.path);
        }
    }
}
