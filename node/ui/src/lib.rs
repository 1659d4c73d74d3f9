//! The web UI: a page and a handful of ES modules and a style sheet, built into the binary
//! (no Node.js, no bundler, nothing fetched from elsewhere) and served by every node at
//! `/ui/`. The page holds no data: everything it shows it reads from the REST API with the
//! caller's session cookie, so these routes are public and the API decides who sees what.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and connections
//! from this origin only, no inline script, no framing), and an `ETag` from the asset's
//! content, so a browser revalidates cheaply and never runs a stale script after an upgrade.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

/// One file of the UI.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI; anything else under `/ui/` is a 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("js/api.js", JS),
    asset!("js/app.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/stream.js", JS),
    asset!("js/login.js", JS),
    asset!("js/jobs.js", JS),
    asset!("js/submit.js", JS),
    asset!("js/job.js", JS),
    asset!("js/console.js", JS),
    asset!("js/clusters.js", JS),
    asset!("js/cluster_form.js", JS),
    asset!("js/nodes.js", JS),
];

/// What the browser may do with the UI's pages.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The UI's routes: `/ui/` and its files; `/ui` and `/` lead to `/ui/`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|h: HeaderMap| async move { serve("index.html", &h) }),
        )
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, h: HeaderMap| async move { serve(&path, &h) }),
        )
}

/// The total size of the UI's files, in bytes.
pub fn size() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// Every file of the UI as a browser asks for it (`/ui/`, `/ui/style.css`, ...).
pub fn urls() -> impl Iterator<Item = String> {
    ASSETS.iter().map(|a| match a.path {
        "index.html" => "/ui/".to_string(),
        path => format!("/ui/{path}"),
    })
}

/// Each file's `ETag`, from its content, in the order of [`ASSETS`]: computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut hasher = DefaultHasher::new();
                a.body.hash(&mut hasher);
                format!("\"{:016x}\"", hasher.finish())
            })
            .collect()
    })
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, "no such file in the UI").into_response();
    };
    let (asset, tag) = (&ASSETS[i], &etags()[i]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(tag).expect("hex digits"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(tag) = etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_a_strict_policy() {
        let page = get("/ui/", None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(urls().count(), ASSETS.len());
        for url in urls() {
            let r = get(&url, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{url}");
        }
        assert_eq!(
            get("/ui/js/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/ui/../Cargo.toml", None).await.status(),
            StatusCode::NOT_FOUND
        );
        let root = get("/", None).await;
        assert_eq!(root.headers()[header::LOCATION], "/ui/");
    }

    #[tokio::test]
    async fn a_browser_revalidates_by_etag() {
        let first = get("/ui/js/app.js", None).await;
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(
            get("/ui/js/app.js", Some(&tag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/ui/js/app.js", Some("\"0\"")).await.status(),
            StatusCode::OK
        );
    }

    #[test]
    fn every_module_the_scripts_import_is_served() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit("from '").next().unwrap().trim_end_matches("';");
                let name = target.trim_start_matches("./");
                let path = format!("js/{name}");
                assert!(ASSETS.iter().any(|b| b.path == path), "{}: {line}", a.path);
            }
        }
    }

    #[test]
    fn the_assets_stay_small() {
        assert!(size() < 128 * 1024, "{} bytes", size());
    }
}
