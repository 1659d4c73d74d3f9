//! The OpenAPI document derived from the route table: each route's operation from its
//! handler's annotation, plus the errors its shape and its [`Access`] make possible, so that
//! no status the server answers goes undocumented, and the schemas of parameters that mean
//! the same wherever they appear.

use super::{Access, Route};
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::RefOr;

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
                    let in_path = param.parameter_in == ParameterIn::Path;
                    if let Some(schema) = parameter_schema(&param.name, in_path) {
                        param.schema = Some(RefOr::T(schema));
                    }
                }
                let command = route.method != HttpMethod::Get;
                let statuses = error_statuses(&route.path, command, op)
                    .into_iter()
                    .chain(access_statuses(route.access));
                for (status, description) in statuses {
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

/// The refusals of a route's [`Access`]: 401 and 429 where credentials are needed, 403 where
/// a role or a job's rules may refuse the caller.
fn access_statuses(access: Access) -> Vec<(u16, &'static str)> {
    let mut out = vec![];
    if access != Access::Public {
        out.push((401, "credentials are missing, malformed or wrong"));
        out.push((
            429,
            "too many failed authentications; retry after Retry-After",
        ));
    }
    if matches!(access, Access::Submit | Access::ModifyJob | Access::Admin) {
        out.push((
            403,
            "the caller may not do this; the message names the rule",
        ));
    }
    out
}

/// The schemas of parameters that mean the same wherever they appear, declared once: texts
/// the server takes without a NUL byte, a long poll's wait, the filters of job listings,
/// a cluster's name in a path (`in_path`; a listing's `name` and `cluster` filters take any
/// text, and match nothing when no name has it).
fn parameter_schema(name: &str, in_path: bool) -> Option<utoipa::openapi::schema::Schema> {
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
        "name" if in_path => ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(kindling_events::patterns::NAME))
            .into(),
        "doAs" | "owner" | "name" | "cluster" => schemas::optional_text(),
        "wait" => schemas::wait(),
        "state" => one_of(JobState::ALL.iter().map(|s| s.as_str()).collect()),
        "kind" => one_of(vec!["batch", "session"]),
        "order" => one_of(vec!["asc", "desc"]),
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
