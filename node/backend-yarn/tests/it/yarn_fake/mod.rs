//! A recorded-response FAKE of a YARN cluster's HTTP side, for the YARN backend's tests: no
//! YARN can run on the development machines. Axum servers on 127.0.0.1:0 play one or more
//! ResourceManagers, a NodeManager and the JobHistory log server, answering with the recorded
//! responses in `node/backend-yarn/tests/fixtures/yarn/` (see its README for where they come from):
//! - `GET /ws/v1/cluster/apps?applicationTags=…` (any of the tags, compared in lowercase, as
//!   the RM does; `{"apps":null}` when none), `GET /ws/v1/cluster/apps/{id}` (404 with a
//!   `RemoteException` for an unknown id), `GET /ws/v1/cluster/apps/{id}/appattempts`,
//!   `GET|PUT /ws/v1/cluster/apps/{id}/state` (a kill: 403 without `user.name`, 200 with the
//!   state of an application that has ended, else `202 Accepted`, after which the application is
//!   `KILLED` the next time anyone reads it);
//! - a standby ResourceManager answers everything but `/ws/v1/cluster/info` with
//!   `307 Temporary Redirect` to the active one (same path and query), or without `Location`
//!   when no ResourceManager is active;
//! - the NodeManager's container-logs pages while the logs are on the node, a `307` to the log
//!   server once they are aggregated; the log server's aggregated pages.
//!
//! Submissions do not go through REST (spark-submit talks to the RM's RPC port): the stand-in
//! `spark-submit` drops the application id and its command line into a directory the fake
//! reads on every request, and the application appears as `ACCEPTED` (or as the stand-in says,
//! e.g. rejected), with its `startedTime` set then, as the RM sets it when it takes an
//! application in. Tests then script its
//! life: [`RmFake::set`] serves another recorded state, [`RmFake::aggregate`] moves its logs to
//! the log server, [`RmFake::print`] adds a line to its driver's `stdout`. Every request is
//! recorded.

#![allow(dead_code)]

mod server;

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The recorded names the fake rewrites to its own.
pub const RECORDED_RM: &str = "rm1.example.com:8088";
pub const RECORDED_NM: &str = "nm1.example.com:8042";
pub const RECORDED_JHS: &str = "jhs.example.com:19888";
pub const RECORDED_APP: &str = "1700000000000_0001";
pub const RECORDED_USER: &str = "alice";

/// A request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `rm0`, `rm1`, …, `nm` or `jhs`.
    pub server: String,
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: String,
}

/// Where an application's logs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// On the NodeManager, which serves them.
    OnNode,
    /// Uploaded to the log server; the NodeManager redirects there.
    Aggregated,
}

#[derive(Debug, Clone)]
pub struct FakeApp {
    pub id: String,
    pub user: String,
    pub name: String,
    pub queue: String,
    pub tags: Vec<String>,
    /// The recorded report served: `app-accepted`, `app-running`, ...
    pub fixture: String,
    /// Fields served in place of the recording's.
    pub patch: Map<String, Value>,
    /// A kill was accepted: the application is `KILLED` when next read.
    pub killing: bool,
    pub logs: Logs,
    /// Lines the driver printed (to its container's `stdout`) besides the recorded ones.
    pub printed: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Active,
    Standby,
}

pub(crate) struct Shared {
    fixtures: PathBuf,
    submissions: PathBuf,
    rm_urls: Vec<String>,
    nm_url: String,
    jhs_url: String,
    state: Mutex<State>,
    requests: Mutex<Vec<Recorded>>,
}

#[derive(Default)]
struct State {
    apps: BTreeMap<String, FakeApp>,
    /// Submissions already taken in, by file name.
    seen: HashSet<String>,
    /// The `startedTime` of the application taken in last.
    last_started: u64,
    roles: Vec<Role>,
}

/// The running fake. Dropping it stops the servers.
pub struct RmFake {
    pub rm_urls: Vec<String>,
    pub nm_url: String,
    pub jhs_url: String,
    shared: Arc<Shared>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RmFake {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yarn")
}

impl RmFake {
    /// Starts `rms` ResourceManagers (the first active, the others standby), a NodeManager
    /// and a log server; applications submitted through `submissions` appear in them.
    pub async fn start(rms: usize, submissions: &Path) -> RmFake {
        let bind = || async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", l.local_addr().unwrap());
            (l, url)
        };
        let mut rm_listeners = vec![];
        for _ in 0..rms {
            rm_listeners.push(bind().await);
        }
        let (nm, nm_url) = bind().await;
        let (jhs, jhs_url) = bind().await;
        let rm_urls: Vec<String> = rm_listeners.iter().map(|(_, u)| u.clone()).collect();
        let roles = (0..rms)
            .map(|i| if i == 0 { Role::Active } else { Role::Standby })
            .collect();
        let shared = Arc::new(Shared {
            fixtures: fixtures_dir(),
            submissions: submissions.to_path_buf(),
            rm_urls: rm_urls.clone(),
            nm_url: nm_url.clone(),
            jhs_url: jhs_url.clone(),
            state: Mutex::new(State {
                roles,
                ..State::default()
            }),
            requests: Mutex::default(),
        });
        let mut servers = vec![];
        let serve = |l: tokio::net::TcpListener, app: axum::Router| {
            tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            })
        };
        for (i, (l, _)) in rm_listeners.into_iter().enumerate() {
            servers.push(serve(l, server::rm_router(shared.clone(), i)));
        }
        servers.push(serve(nm, server::nm_router(shared.clone())));
        servers.push(serve(jhs, server::jhs_router(shared.clone())));
        RmFake {
            rm_urls,
            nm_url,
            jhs_url,
            shared,
            servers,
        }
    }

    // ---- reading the fake's state ----

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn requests_to(&self, server: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.server == server)
            .collect()
    }

    pub fn app(&self, id: &str) -> Option<FakeApp> {
        self.shared.sync();
        self.shared.lock().apps.get(id).cloned()
    }

    pub fn apps(&self) -> Vec<FakeApp> {
        self.shared.sync();
        self.shared.lock().apps.values().cloned().collect()
    }

    /// The report the fake serves for an application now.
    pub fn report(&self, id: &str) -> Option<Value> {
        self.shared.sync();
        let st = self.shared.lock();
        st.apps.get(id).map(|a| self.shared.render(a))
    }

    // ---- scripting an application's life ----

    fn update(&self, id: &str, f: impl FnOnce(&mut FakeApp)) {
        self.shared.sync();
        let mut st = self.shared.lock();
        let app = st
            .apps
            .get_mut(id)
            .unwrap_or_else(|| panic!("the fake has no application {id}"));
        f(app);
    }

    /// Serves the recorded report `fixture` (`app-running`, `app-finished-succeeded`, ...).
    pub fn set(&self, id: &str, fixture: &str) {
        assert!(
            fixtures_dir().join(format!("{fixture}.json")).exists(),
            "no fixture {fixture}"
        );
        self.update(id, |a| a.fixture = fixture.to_string());
    }

    /// Serves these fields in place of the recording's.
    pub fn patch(&self, id: &str, fields: Value) {
        self.update(id, |a| {
            for (k, v) in fields.as_object().cloned().unwrap_or_default() {
                a.patch.insert(k, v);
            }
        });
    }

    /// The driver prints a line: its container's `stdout` shows it after the recorded lines,
    /// on the NodeManager and, once aggregated, on the log server.
    pub fn print(&self, id: &str, line: &str) {
        self.update(id, |a| a.printed.push(line.to_string()));
    }

    /// YARN finished aggregating the logs: they are on the log server now.
    pub fn aggregate(&self, id: &str) {
        self.update(id, |a| {
            a.logs = Logs::Aggregated;
            a.patch
                .insert("logAggregationStatus".into(), "SUCCEEDED".into());
        });
    }

    /// An application submitted by someone else (another Kindling cluster, a user).
    pub fn add_app(&self, seq: u32, user: &str, tags: &[&str], fixture: &str) -> String {
        let id = format!("application_1700000000000_{seq:04}");
        let app = FakeApp {
            id: id.clone(),
            user: user.into(),
            name: "someone else's".into(),
            queue: "default".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            fixture: fixture.into(),
            patch: Map::new(),
            killing: false,
            logs: Logs::OnNode,
            printed: vec![],
        };
        self.shared.lock().apps.insert(id.clone(), app);
        id
    }

    /// The ResourceManager forgets an application (restarted without state recovery, or
    /// evicted it from its completed applications): 404 from now on.
    pub fn forget(&self, id: &str) {
        self.shared.sync();
        self.shared.lock().apps.remove(id);
    }

    /// Makes ResourceManager `i` the active one; every other one becomes a standby.
    pub fn fail_over_to(&self, i: usize) {
        let mut st = self.shared.lock();
        for (j, r) in st.roles.iter_mut().enumerate() {
            *r = if i == j { Role::Active } else { Role::Standby };
        }
    }

    /// Every ResourceManager is a standby (an election under way).
    pub fn no_active(&self) {
        let mut st = self.shared.lock();
        for r in st.roles.iter_mut() {
            *r = Role::Standby;
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn fixture(&self, name: &str) -> String {
        std::fs::read_to_string(self.fixtures.join(name))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// A recording as this application's: its id, user and the fake's addresses.
    fn rewrite(&self, text: &str, app_id: &str, user: &str) -> String {
        let host = |u: &str| u.trim_start_matches("http://").to_string();
        text.replace(RECORDED_RM, &host(&self.rm_urls[0]))
            .replace(RECORDED_NM, &host(&self.nm_url))
            .replace(RECORDED_JHS, &host(&self.jhs_url))
            .replace(RECORDED_APP, app_id.trim_start_matches("application_"))
            .replace(RECORDED_USER, user)
    }

    /// The report served for an application.
    fn render(&self, a: &FakeApp) -> Value {
        let text = self.rewrite(
            &self.fixture(&format!("{}.json", a.fixture)),
            &a.id,
            &a.user,
        );
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let app = &mut v["app"];
        app["id"] = a.id.clone().into();
        app["user"] = a.user.clone().into();
        app["name"] = a.name.clone().into();
        app["queue"] = a.queue.clone().into();
        app["applicationTags"] = a.tags.join(",").into();
        for (k, val) in &a.patch {
            app[k] = val.clone();
        }
        v["app"].take()
    }

    /// A recorded log page of an application's container with what its driver printed since:
    /// at the end of the `stdout` page's log text, HTML-escaped as the pages escape it.
    fn log_page(&self, fixture: &str, a: &FakeApp, file: &str) -> String {
        let page = self.rewrite(&self.fixture(fixture), &a.id, &a.user);
        let printed: String = a
            .printed
            .iter()
            .map(|l| {
                let l = l
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                format!("{l}\n")
            })
            .collect();
        match page.find("</pre>") {
            Some(end) if file == "stdout" => format!("{}{printed}{}", &page[..end], &page[end..]),
            _ => page,
        }
    }

    /// Takes in what the stand-in `spark-submit` submitted since the last look.
    fn sync(&self) {
        let Ok(entries) = std::fs::read_dir(&self.submissions) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "app"))
            .collect();
        files.sort();
        let mut st = self.lock();
        for f in files {
            let key = f.display().to_string();
            if st.seen.contains(&key) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            st.seen.insert(key);
            // The application id, and optionally the recorded state it starts in (a rejected
            // submission is FAILED at once).
            let mut lines = text.lines();
            let id = lines.next().unwrap_or_default().trim().to_string();
            let fixture = lines
                .next()
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "app-accepted".into());
            let args: Vec<String> = std::fs::read(f.with_extension("args"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let env = std::fs::read_to_string(f.with_extension("env")).unwrap_or_default();
            let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
            let conf = |key: &str| {
                args.windows(2)
                    .filter(|w| w[0] == "--conf")
                    .find_map(|w| w[1].strip_prefix(&format!("{key}=")).map(str::to_string))
            };
            let submitter = env
                .lines()
                .find_map(|l| l.strip_prefix("HADOOP_USER_NAME="))
                .filter(|u| !u.is_empty())
                .unwrap_or("yarn")
                .to_string();
            // YARN stores tags in lowercase.
            let tags = conf("spark.yarn.tags")
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            // As the ResourceManager does: the start time is set when the application is
            // taken in, which is when it becomes visible; so a later one starts later.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            st.last_started = now.max(st.last_started + 1);
            let mut patch = Map::new();
            patch.insert("startedTime".into(), st.last_started.into());
            st.apps.insert(
                id.clone(),
                FakeApp {
                    id,
                    user: flag("--proxy-user").unwrap_or(submitter),
                    name: flag("--name").unwrap_or_default(),
                    queue: flag("--queue").unwrap_or_else(|| "default".into()),
                    tags,
                    fixture,
                    patch,
                    killing: false,
                    logs: Logs::OnNode,
                    printed: vec![],
                },
            );
        }
    }
}
