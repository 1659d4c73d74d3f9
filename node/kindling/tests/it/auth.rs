//! Authentication and authorization against a node run with `--auth basic`: every route of
//! the route table walked for every kind of caller and checked against its declared access;
//! malformed and wrong credentials; Livy's impersonation rules; listings limited to what the
//! caller may view; the users file re-read while the node runs; failures limited per client.

use crate::common::{fake_spark_home, Node};
use kindling_api::routes::{table, Access};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const PASSWORD: &str = "a-long-test-password";

/// Adds `name` to the users file through `kindling users add`, the password on stdin.
pub(crate) fn add_user(file: &Path, name: &str, groups: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kindling"))
        .args(["users", "add", name, "--password-stdin", "--groups", groups])
        .arg("--users-file")
        .arg(file)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{name}-{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) struct Secured {
    pub(crate) node: Node,
    users: PathBuf,
    pub(crate) http: Client,
    /// A batch's application file.
    pub(crate) app: String,
}

impl Secured {
    pub(crate) fn start(dir: &Path) -> Secured {
        let users = dir.join("users");
        for (name, groups) in [
            ("root", "admins"),
            ("alice", "team"),
            ("bob", ""),
            ("vic", "viewers"),
            ("svc", ""),
            ("erin", ""),
        ] {
            add_user(&users, name, groups);
        }
        let node = Node::start(
            &dir.join("data"),
            &fake_spark_home(dir),
            &[
                "--auth",
                "basic",
                "--users-file",
                users.to_str().unwrap(),
                "--superusers",
                "svc",
            ],
        );
        Secured {
            node,
            users,
            app: crate::common::program(dir, "app.py", "print('hello')\n"),
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// `method path` as `who` (`None`: no credentials), with `body` if any.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, self.node.url(path));
        if let Some(name) = who {
            req = req.basic_auth(name, Some(format!("{name}-{PASSWORD}")));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().unwrap_or(Value::Null), headers)
    }

    /// `GET path` as `who`, answered without reading the body (a stream's never ends);
    /// an error's body is read.
    pub(crate) fn open(
        &self,
        path: &str,
        who: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.get(self.node.url(path));
        if let Some(name) = who {
            req = req.basic_auth(name, Some(format!("{name}-{PASSWORD}")));
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = if status == 200 {
            Value::Null
        } else {
            r.json().unwrap_or(Value::Null)
        };
        (status, body, headers)
    }

    /// A new job of `kind` ("batches" or "sessions") owned by `who`, with a name of its own
    /// (an active job's name is not given twice).
    pub(crate) fn job(&self, kind: &str, who: &str, extra: Value) -> u64 {
        static JOBS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = JOBS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut body = json!({"name": format!("{who}-{kind}-{n}")});
        if kind == "batches" {
            body["file"] = json!(self.app);
        }
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, job, _) = self.call("POST", &format!("/{kind}"), Some(who), Some(body));
        assert_eq!(status, 201, "{job}");
        job["id"].as_u64().unwrap()
    }
}

/// What a caller should get from a route: refused in one of three ways, or let through.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Expect {
    Unauthenticated,
    Forbidden,
    /// A job the caller may not view: told it does not exist.
    Hidden,
    Allowed,
}

fn expected(access: Access, who: Option<&str>) -> Expect {
    use Expect::*;
    let Some(who) = who else {
        return if access == Access::Public {
            Allowed
        } else {
            Unauthenticated
        };
    };
    let owner_or_admin = matches!(who, "alice" | "root");
    match access {
        Access::Public | Access::Authenticated => Allowed,
        Access::Submit if who == "vic" => Forbidden,
        Access::Submit => Allowed,
        Access::ViewJob if owner_or_admin || who == "vic" => Allowed,
        Access::ViewJob => Hidden,
        Access::ModifyJob if owner_or_admin => Allowed,
        Access::ModifyJob if who == "vic" => Forbidden,
        Access::ModifyJob => Hidden,
        Access::Admin if who == "root" => Allowed,
        Access::Admin => Forbidden,
    }
}

#[test]
fn every_route_answers_every_kind_of_caller_as_its_access_says() {
    let dir = tempfile::tempdir().unwrap();
    let n = Secured::start(dir.path());
    let batch = n.job("batches", "alice", json!({}));
    let session = n.job("sessions", "alice", json!({}));
    let callers = [
        None,
        Some("vic"),
        Some("alice"),
        Some("bob"),
        Some("svc"),
        Some("root"),
    ];
    let mut walked = 0;
    let mut routes: Vec<_> = table().into_iter().collect();
    // Changes last, each on a job of its own: an allowed delete must not hide the job from
    // the reads still to be checked.
    routes.sort_by_key(|r| r.access == Access::ModifyJob);
    for route in routes {
        let method = route.method_name();
        for who in callers {
            let modifies = route.access == Access::ModifyJob;
            let on_session =
                route.path.starts_with("/sessions") || route.path.contains("statements");
            let id = match (modifies, on_session) {
                (false, false) => batch,
                (false, true) => session,
                (true, false) => n.job("batches", "alice", json!({})),
                (true, true) => n.job("sessions", "alice", json!({})),
            };
            let path = route
                .path
                .replace("/members/{id}", "/members/99")
                .replace("{id}", &id.to_string())
                .replace("{sid}", "0")
                .replace("{name}", "nosuch")
                .replace("{token}", "nosuch");
            let body = (method != "GET" && method != "DELETE").then(|| json!({}));
            let (status, reply, headers) = if path == "/api/v1/stream" {
                // It never ends: judged by its status, its body left unread.
                n.open(&path, who)
            } else {
                n.call(method, &path, who, body)
            };
            let want = expected(route.access, who);
            let what = format!("{method} {path} as {who:?}: {status} {reply}");
            match want {
                Expect::Unauthenticated => {
                    assert_eq!(status, 401, "{what}");
                    assert!(headers.contains_key("www-authenticate"), "{what}");
                }
                Expect::Forbidden => assert_eq!(status, 403, "{what}"),
                Expect::Hidden => {
                    assert_eq!(status, 404, "{what}");
                    let msg = reply["msg"].as_str().unwrap_or_default();
                    assert!(msg.contains(&format!("'{id}' not found")), "{what}");
                }
                Expect::Allowed => {
                    assert!(![401, 403, 429].contains(&status), "{what}");
                    if status == 404 {
                        // Only what the walk names that does not exist: a statement, a
                        // cluster, a member, a token.
                        assert!(
                            route.path.contains("{sid}")
                                || route.path.contains("{name}")
                                || route.path.contains("{token}")
                                || route.path.contains("/members/"),
                            "{what}"
                        );
                    }
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 40 * callers.len(), "walked {walked}");
    // Operators see the refusals, by reason.
    let metrics = n
        .http
        .get(n.node.url("/metrics"))
        .basic_auth("root", Some(format!("root-{PASSWORD}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for reason in ["missing", "forbidden"] {
        let line = format!("kindling_api_auth_refused_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "no {line} in\n{metrics}");
    }
}

#[test]
fn credentials_impersonation_listings_and_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let n = Secured::start(dir.path());

    // Malformed headers are 401s that say what is wrong; wrong and unknown read the same.
    let raw = |value: &str| {
        let r = n
            .http
            .get(n.node.url("/batches"))
            .header("authorization", value)
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().unwrap()["msg"].to_string(),
        )
    };
    for (value, needle) in [
        ("Basic !!!", "base64"),
        ("Digest abc", "Basic or Bearer"),
        ("Bearer token", "Basic credentials"),
    ] {
        let (status, msg) = raw(value);
        assert_eq!(status, 401, "{value}: {msg}");
        assert!(msg.contains(needle), "{value}: {msg}");
    }
    let (status, msg) = raw(&format!("Basic {}", "QUFB".repeat(3000)));
    assert_eq!((status, msg.contains("longer than")), (401, true), "{msg}");
    let wrong = n
        .http
        .get(n.node.url("/batches"))
        .basic_auth("alice", Some("not-her-password"))
        .send()
        .unwrap();
    let unknown = n
        .http
        .get(n.node.url("/batches"))
        .basic_auth("mallory", Some("not-her-password"))
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(unknown.status().as_u16(), 401);
    assert_eq!(wrong.text().unwrap(), unknown.text().unwrap());

    // Jobs record who submitted them; proxyUser and doAs follow Livy's rules.
    let mine = n.job("batches", "alice", json!({}));
    let (_, job, _) = n.call("GET", &format!("/api/v1/jobs/{mine}"), Some("alice"), None);
    assert_eq!(job["owner"], "alice", "{job}");
    let (status, refused, _) = n.call(
        "POST",
        "/batches?doAs=bob",
        Some("alice"),
        Some(json!({"file": n.app})),
    );
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["msg"].as_str().unwrap().contains("superusers"),
        "{refused}"
    );
    let own_proxy = n.job("batches", "alice", json!({"proxyUser": "alice"}));
    let for_bob = n.job("batches", "svc", json!({"proxyUser": "bob"}));
    let (status, _, _) = n.call("GET", &format!("/batches/{for_bob}"), Some("bob"), None);
    assert_eq!(status, 200, "bob views the job that runs as him");

    // Listings show what the caller may view, and count only that.
    let ids = |who: &str| {
        let (status, list, _) = n.call("GET", "/batches", Some(who), None);
        assert_eq!(status, 200, "{list}");
        let ids: Vec<u64> = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            list["total"].as_u64().unwrap() as usize,
            ids.len(),
            "{list}"
        );
        ids
    };
    assert_eq!(ids("alice"), vec![mine, own_proxy]);
    assert_eq!(ids("bob"), vec![for_bob]);
    assert_eq!(ids("root"), vec![mine, own_proxy, for_bob]);
    assert_eq!(ids("vic"), vec![mine, own_proxy, for_bob]);
    let (_, native, _) = n.call("GET", "/api/v1/jobs", Some("bob"), None);
    assert_eq!(native["total"], 1, "{native}");

    // A user added while the node runs can log in once the node has seen the file change.
    add_user(&n.users, "carol", "");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = n.call("GET", "/batches", Some("carol"), None);
        if status == 200 {
            break;
        }
        assert_eq!(status, 401);
        assert!(Instant::now() < deadline, "carol never accepted");
        // Each refusal counts against this client's failures: poll slowly.
        std::thread::sleep(Duration::from_millis(400));
    }
    // Removed, and listed no more: refused as soon as the node has seen the change (her
    // remembered check is forgotten with it).
    let users = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kindling"))
            .arg("users")
            .args(args)
            .arg("--users-file")
            .arg(&n.users)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(users(&["list"]).contains("carol\t"));
    users(&["remove", "carol"]);
    let listed = users(&["list"]);
    assert!(
        !listed.contains("carol") && listed.contains("root\tadmins"),
        "{listed}"
    );
    assert!(
        !listed.contains("argon2"),
        "the list shows no hashes: {listed}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while n.call("GET", "/batches", Some("carol"), None).0 != 401 {
        assert!(Instant::now() < deadline, "carol was never refused");
        std::thread::sleep(Duration::from_millis(100));
    }

    // No password ever reaches the node's log.
    let log = std::fs::read_to_string(n.node.data.with_extension("node.log")).unwrap();
    assert!(log.contains("authentication failed"), "failures are logged");
    for name in ["alice", "bob", "carol", "root"] {
        assert!(
            !log.contains(&format!("{name}-{PASSWORD}")),
            "{name}'s password logged"
        );
    }

    // Past ten failures in a minute this client is refused, even with the right password,
    // and told when to come back.
    let (status, _, _) = n.call("GET", "/batches", Some("alice"), None);
    assert_eq!(
        status, 200,
        "alice proves her password before the guessing starts"
    );
    let mut limited = None;
    for _ in 0..12 {
        let r = n
            .http
            .get(n.node.url("/batches"))
            .basic_auth("bob", Some("guess"))
            .send()
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = r.headers().get("retry-after").cloned();
            break;
        }
        assert_eq!(r.status().as_u16(), 401);
    }
    let retry_after = limited.expect("limited after ten failures");
    assert!(retry_after.to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let (status, _, _) = n.call("GET", "/batches", Some("erin"), None);
    assert_eq!(status, 429, "the client is limited, whoever it names");
    // Credentials proved a moment ago (and the users file unchanged since) are not guesses:
    // they go on working.
    let (status, _, _) = n.call("GET", "/batches", Some("alice"), None);
    assert_eq!(status, 200);
}

#[test]
fn without_authentication_the_node_stays_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kindling"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--spark-home")
        .arg(fake_spark_home(dir.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen 0.0.0.0:0") && err.contains("--insecure-no-auth"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before touching anything"
    );
}
