//! A FAKE Kubernetes API server, for the Kubernetes backend's tests: no real API server can
//! run on the development machines. It is an axum server on 127.0.0.1:0 that implements, for
//! pods, services and secrets in namespaces, what the backend uses, with the semantics the
//! Kubernetes API documents:
//! - create (201; 409 `AlreadyExists` for a taken name; 422 `Invalid` for a bad name), get,
//!   delete (with `preconditions.uid`: 409 `Conflict` on a mismatch), JSON merge patch;
//!   errors are `Status` objects as the real API returns them;
//! - list with `labelSelector` (equality, `!=`, `in`, `notin`, exists, does-not-exist) and the
//!   list's `resourceVersion`;
//! - watch (`?watch=true&resourceVersion=N`): newline-delimited ADDED / MODIFIED / DELETED
//!   events after N, live events after that, an ERROR event with a 410 `Expired` Status when N
//!   was compacted away; `timeoutSeconds` ends it;
//! - the pod `log` subresource (`follow`, `timestamps`, `sinceTime`, `container`; 400 while the
//!   container waits to start, 404 once the pod is gone);
//! - bearer-token authentication (401 `Unauthorized`) when started with a token.
//!
//! Nothing runs pods: tests play the kubelet through the control methods (`run`, `terminate`,
//! `evict`, `waiting`, `crash_loop`, `log`), and the infrastructure through `close_watches`,
//! `hold_watches`, `compact` and `close_logs`. Where it differs from a real cluster: deleting a
//! running pod goes through the graceful steps (deletionTimestamp, container killed with exit
//! 143, removal) at once rather than over the grace period; the garbage collector's deletion
//! of owned objects happens at once; no admission, quotas, scheduling or field selectors.

mod selector;
mod server;
mod store;

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
pub use server::Recorded;
use server::{container_status, terminated, Shared};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{now, Store};
use tokio::sync::watch;

/// The running fake. Dropping it stops the server.
pub struct KubeFake {
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KubeFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl KubeFake {
    /// Starts the fake; with a token, every request must carry it (`Authorization: Bearer`).
    pub async fn start(token: Option<&str>) -> KubeFake {
        let shared = Arc::new(Shared {
            // A real cluster's versions never start at zero (and "0" means "any" to a watch).
            store: Mutex::new(Store::starting_at(1000)),
            token: token.map(str::to_string),
            requests: Mutex::default(),
            changed: watch::channel(0).0,
            close_watches: watch::channel(0).0,
            close_logs: watch::channel(0).0,
            held: watch::channel(false).0,
        });
        let app = server::router(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KubeFake {
            url,
            shared,
            server,
        }
    }

    // ---- reading the fake's state ----

    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.shared.store().get(resource, ns, name).ok()
    }

    pub fn all(&self, resource: &str) -> Vec<Value> {
        self.shared.store().all(resource)
    }

    /// Changes whenever anything in the fake does (an object written, a log line added), for a
    /// test that plays the kubelet as pods appear.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Creates an object as another client would (e.g. a pod Kindling did not launch).
    pub fn create(&self, resource: &str, ns: &str, object: Value) -> Value {
        let o = self.shared.store().create(resource, ns, object).unwrap();
        self.shared.touch();
        o
    }

    // ---- the kubelet's part ----

    fn set(&self, ns: &str, pod: &str, f: impl FnOnce(&mut Value)) {
        self.shared.store().update("pods", ns, pod, f).unwrap();
        self.shared.touch();
    }

    /// Scheduled, image pulled, container started: phase Running.
    pub fn run(&self, ns: &str, pod: &str) {
        self.set(ns, pod, |p| {
            let state = json!({ "running": { "startedAt": now() } });
            p["status"]["containerStatuses"] = container_status(p, state);
            p["status"]["phase"] = "Running".into();
            p["status"]["podIP"] = "10.244.0.17".into();
            p["status"]["hostIP"] = "172.18.0.2".into();
            p["status"]["startTime"] = now().into();
            p["spec"]["nodeName"] = "fake-node".into();
        });
    }

    /// The container exited: Succeeded with 0, Failed otherwise; `reason` as the kubelet
    /// words it (`Completed`, `Error`, `OOMKilled`).
    pub fn terminate(&self, ns: &str, pod: &str, exit_code: i32, reason: &str) {
        self.set(ns, pod, |p| terminated(p, exit_code, reason));
    }

    /// Node-pressure eviction: the kubelet kills the container and fails the pod.
    pub fn evict(&self, ns: &str, pod: &str, message: &str) {
        self.set(ns, pod, |p| {
            terminated(p, 137, "Error");
            p["status"]["reason"] = "Evicted".into();
            p["status"]["message"] = message.into();
        });
    }

    /// The container cannot start: `ErrImagePull`, `ImagePullBackOff`, ...; phase Pending.
    pub fn waiting(&self, ns: &str, pod: &str, reason: &str, message: &str) {
        self.set(ns, pod, |p| {
            let state = json!({ "waiting": { "reason": reason, "message": message } });
            p["status"]["containerStatuses"] = container_status(p, state);
            p["status"]["phase"] = "Pending".into();
            p["spec"]["nodeName"] = "fake-node".into();
        });
    }

    /// The container keeps crashing and the kubelet backs off restarting it.
    pub fn crash_loop(&self, ns: &str, pod: &str, exit_code: i32) {
        self.set(ns, pod, |p| {
            let state = json!({ "waiting": { "reason": "CrashLoopBackOff",
                "message": "back-off 10s restarting failed container" } });
            let mut statuses = container_status(p, state);
            statuses[0]["lastState"] =
                json!({ "terminated": { "exitCode": exit_code, "reason": "Error" } });
            statuses[0]["restartCount"] = 3.into();
            p["status"]["containerStatuses"] = statuses;
            p["status"]["phase"] = "Running".into();
        });
    }

    /// A line of the pod's container output, stamped now.
    pub fn log(&self, ns: &str, pod: &str, line: &str) {
        let mut st = self.shared.store();
        let lines = st.logs.entry((ns.into(), pod.into())).or_default();
        // Stamps are unique and increasing, as the container runtime's are in practice.
        let mut t = Timestamp::now();
        if let Some((last, _)) = lines.last() {
            if t <= *last {
                t = *last + Duration::from_nanos(1);
            }
        }
        lines.push((t, line.into()));
        drop(st);
        self.shared.touch();
    }

    // ---- the infrastructure's part ----

    /// Breaks every open watch connection.
    pub fn close_watches(&self) {
        self.shared.close_watches.send_modify(|n| *n += 1);
    }

    /// Breaks every open log stream.
    pub fn close_logs(&self) {
        self.shared.close_logs.send_modify(|n| *n += 1);
    }

    /// New watch requests wait until [`KubeFake::release_watches`].
    pub fn hold_watches(&self) {
        self.shared.held.send_replace(true);
    }

    pub fn release_watches(&self) {
        self.shared.held.send_replace(false);
    }

    /// Forgets the change history: watching from an older version answers 410 Gone.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// How many watch requests have been made so far.
    pub fn watch_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.query.get("watch").map(String::as_str) == Some("true"))
            .collect()
    }
}
