//! Every route of the REST API, declared once in [`table`]: its handler, whose
//! `#[utoipa::path]` annotation gives the method, the path and the OpenAPI operation, where
//! it runs ([`Runs`]) and who may call it ([`Access`]). The router, the OpenAPI document, the
//! forwarding to the leader and the access checks are all derived from the table, so a route
//! cannot be served undocumented, documented unserved, change an existing job without saying
//! where it runs, or be served without saying who may call it.

mod document;

pub use document::document;

use super::{
    access, clusters, forward, livy, login, native, openapi, queues, stream, tokens, AppState,
};
use axum::routing::MethodRouter;
use axum::Router;
pub use kindling_auth::Access;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::openapi::path::{HttpMethod, Paths};
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
    /// A job's creation: on the node it reaches, unless the request names the job; the
    /// leader, which keeps names unique among active jobs, creates every named one.
    OnLeaderWhenNamed,
}

/// One route: a method on a path, its handler and OpenAPI operation, where it runs, who may
/// call it.
pub struct Route {
    pub method: HttpMethod,
    /// The path as OpenAPI and axum both write it, e.g. `/batches/{id}`.
    pub path: String,
    pub runs: Runs,
    pub access: Access,
    handler: MethodRouter<Arc<AppState>>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Route {
    /// The route's method as HTTP writes it.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Head => "HEAD",
            _ => "OTHER",
        }
    }

    fn new(
        runs: Runs,
        access: Access,
        (schemas, paths, handler): UtoipaMethodRouter<Arc<AppState>>,
    ) -> Route {
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
            access,
            handler,
            paths,
            schemas,
        }
    }
}

/// A route of `$handler`, which runs `$runs` (`Anywhere` or `OnLeader`) for callers with
/// `$access` (an [`Access`]).
macro_rules! route {
    ($runs:ident, $access:ident: $handler:path) => {
        Route::new(Runs::$runs, Access::$access, routes!($handler))
    };
}

/// Every route of the API.
pub fn table() -> Vec<Route> {
    vec![
        // Livy's API, field for field.
        route!(Anywhere, Public: livy::version),
        route!(OnLeaderWhenNamed, Submit: livy::create_batch),
        route!(Anywhere, Authenticated: livy::list_batches),
        route!(Anywhere, ViewJob: livy::get_batch),
        route!(Anywhere, ViewJob: livy::batch_state),
        route!(Anywhere, ViewJob: livy::batch_log),
        route!(OnLeader, ModifyJob: livy::delete_batch),
        route!(OnLeaderWhenNamed, Submit: livy::create_session),
        route!(Anywhere, Authenticated: livy::list_sessions),
        route!(Anywhere, ViewJob: livy::get_session),
        route!(Anywhere, ViewJob: livy::session_state),
        route!(Anywhere, ViewJob: livy::session_log),
        route!(OnLeader, ModifyJob: livy::delete_session),
        route!(OnLeader, ModifyJob: livy::create_statement),
        route!(Anywhere, ViewJob: livy::list_statements),
        route!(Anywhere, ViewJob: livy::get_statement),
        route!(OnLeader, ModifyJob: livy::cancel_statement),
        route!(OnLeader, ModifyJob: livy::completion),
        // The native API.
        route!(Anywhere, Public: openapi::document),
        route!(Anywhere, Public: native::health),
        route!(Anywhere, Public: native::ready),
        route!(Anywhere, Authenticated: native::metrics),
        route!(Anywhere, Authenticated: native::cluster),
        // Raft forwards a membership change to its leader itself.
        route!(Anywhere, Admin: native::remove_member),
        route!(Anywhere, Authenticated: native::list_jobs),
        route!(OnLeaderWhenNamed, Submit: native::create_batch),
        route!(OnLeaderWhenNamed, Submit: native::create_session),
        route!(Anywhere, ViewJob: native::get_job),
        route!(OnLeader, ModifyJob: native::kill_job),
        route!(Anywhere, ViewJob: native::events),
        route!(Anywhere, Admin: native::log_events),
        route!(Anywhere, ViewJob: native::log),
        route!(Anywhere, Authenticated: stream::stream),
        route!(OnLeader, ModifyJob: native::create_statement),
        route!(Anywhere, ViewJob: native::list_statements),
        route!(Anywhere, ViewJob: native::get_statement),
        route!(OnLeader, ModifyJob: native::cancel_statement),
        // The cluster registry.
        route!(Anywhere, Authenticated: clusters::list_clusters),
        route!(OnLeader, Admin: clusters::create_cluster),
        route!(Anywhere, Authenticated: clusters::get_cluster),
        route!(OnLeader, Admin: clusters::update_cluster),
        route!(OnLeader, Admin: clusters::delete_cluster),
        route!(OnLeader, Admin: queues::set_queues),
        route!(Anywhere, Authenticated: queues::list_queues),
        route!(Anywhere, Authenticated: queues::get_queue),
        // API tokens: each user's own (an admin's: everyone's), checked in the handlers.
        route!(OnLeader, Authenticated: tokens::create_token),
        route!(Anywhere, Authenticated: tokens::list_tokens),
        route!(OnLeader, Authenticated: tokens::revoke_token),
        // A browser's login: a token of its own in a cookie.
        route!(OnLeader, Authenticated: login::login),
        route!(OnLeader, Authenticated: login::logout),
        route!(Anywhere, Authenticated: login::whoami),
    ]
}

/// The router of `table`: each route's handler at its path, behind (from the outside in)
/// its request metrics, the caller's admission, the forwarding to the leader where it runs
/// there, and the check of the job it names.
pub fn router(table: Vec<Route>, state: &Arc<AppState>) -> Router<Arc<AppState>> {
    use axum::extract::Request;
    use axum::middleware::{from_fn_with_state, Next};
    let mut by_path: BTreeMap<String, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for route in table {
        let access = route.access;
        let method = route.method_name();
        let mut handler = route.handler;
        if matches!(access, Access::ViewJob | Access::ModifyJob) {
            handler = handler.route_layer(from_fn_with_state(
                state.clone(),
                move |s: crate::State, params, req: Request, next: Next| {
                    access::job_access(s, access, params, req, next)
                },
            ));
        }
        match route.runs {
            Runs::Anywhere => {}
            Runs::OnLeader => {
                handler =
                    handler.route_layer(from_fn_with_state(state.clone(), forward::to_leader));
            }
            Runs::OnLeaderWhenNamed => {
                handler = handler.route_layer(from_fn_with_state(
                    state.clone(),
                    forward::to_leader_when_named,
                ));
            }
        }
        handler = handler.route_layer(from_fn_with_state(
            state.clone(),
            move |s: crate::State, req: Request, next: Next| access::admit(s, access, req, next),
        ));
        // Outermost: every answer of the route counts, refusals too, under its template.
        let template = route.path.clone();
        handler = handler.route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let template = template.clone();
                async move {
                    let started = std::time::Instant::now();
                    let response = next.run(req).await;
                    if let Some(c) = response
                        .extensions()
                        .get::<crate::error::UnavailableCause>()
                    {
                        crate::metrics::unavailable(c.0);
                    }
                    crate::metrics::request(
                        &template,
                        method,
                        response.status().as_u16(),
                        started.elapsed(),
                    );
                    response
                }
            },
        ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_documented_once_and_every_documented_operation_is_a_route() {
        let declared: Vec<(String, &str)> = table()
            .iter()
            .map(|r| (r.path.clone(), r.method_name()))
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

    /// A review of the table's fourth column: who may call each route follows from what the
    /// route does. A new route fails here until its access is decided.
    #[test]
    fn every_route_declares_the_access_its_shape_implies() {
        let public = [
            "/version",
            "/api/v1/openapi.json",
            "/api/v1/health",
            "/api/v1/ready",
        ];
        for r in table() {
            let method = r.method_name();
            let path = r.path.as_str();
            let read = method == "GET";
            let expected = if public.contains(&path) {
                Access::Public
            } else if path == "/api/v1/events" {
                // The raw log holds every user's jobs.
                Access::Admin
            } else if path.starts_with("/api/v1/tokens")
                || ["/api/v1/login", "/api/v1/logout", "/api/v1/whoami"].contains(&path)
            {
                // Anyone authenticated manages their own; the handlers keep the rest apart.
                Access::Authenticated
            } else if path == "/metrics" || path.starts_with("/api/v1/cluster") {
                if read {
                    Access::Authenticated
                } else {
                    Access::Admin
                }
            } else if path.contains("{id}") {
                if read {
                    Access::ViewJob
                } else {
                    Access::ModifyJob
                }
            } else {
                assert!(
                    [
                        "/batches",
                        "/sessions",
                        "/api/v1/jobs",
                        "/api/v1/batches",
                        "/api/v1/sessions",
                        "/api/v1/stream"
                    ]
                    .contains(&path),
                    "{method} {path}: a new kind of route; decide who may call it"
                );
                if read {
                    Access::Authenticated
                } else {
                    Access::Submit
                }
            };
            assert_eq!(r.access, expected, "{method} {path}");
        }
    }

    /// A review of the table's third column: a route that changes an existing job or the
    /// registry must run on the leader, whose write model is always current. A new route
    /// fails here until it is placed.
    #[test]
    fn commands_on_existing_jobs_and_the_registry_run_on_the_leader() {
        let creations = [
            ("POST", "/batches"),
            ("POST", "/sessions"),
            ("POST", "/api/v1/batches"),
            ("POST", "/api/v1/sessions"),
        ];
        for r in table() {
            let method = r.method_name();
            let here = (method, r.path.as_str());
            let expected = if creations.contains(&here) {
                Runs::OnLeaderWhenNamed
            } else if method == "GET" || here == ("DELETE", "/api/v1/cluster/members/{id}") {
                Runs::Anywhere
            } else {
                assert!(
                    r.path.contains("{id}")
                        || r.path.starts_with("/api/v1/clusters")
                        || r.path.starts_with("/api/v1/tokens")
                        || ["/api/v1/login", "/api/v1/logout"].contains(&r.path.as_str()),
                    "{method} {}: a new kind of command; decide where it runs",
                    r.path
                );
                Runs::OnLeader
            };
            assert_eq!(r.runs, expected, "{method} {}", r.path);
        }
    }
}
