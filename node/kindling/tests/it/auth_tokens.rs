//! API tokens on a node run with `--auth basic`: issued to a logged-in user and shown once,
//! used as `Authorization: Bearer`, scoped to the user and at most their role, listed
//! without their text, revoked by their user or an admin and refused from then on, and
//! still valid after a restart (they live in the log, like everything else). Airflow's Livy
//! hook, unchanged, runs a batch with a password and with a token.

use crate::auth::{Secured, PASSWORD};
use crate::common::venv_program;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `tests/it/clients/airflow_check.py` against the node at `url` in `mode` (`basic`, or
/// `token` for any Bearer token), the credentials in its environment (`env`); returns the
/// batch it ran.
pub(crate) fn airflow(
    url: &str,
    app: &str,
    home: &Path,
    mode: &str,
    env: &[(&str, String)],
) -> Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/clients/airflow_check.py");
    let out = Command::new(venv_program("KINDLING_AIRFLOW_VENV", "airflow", "python"))
        .arg(script)
        .args([url, app, mode])
        .env("AIRFLOW_HOME", home)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the airflow venv exists (run ops/dev/install-airflow)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "airflow {mode}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no JSON result: {stdout}"))
}

/// `method path` with the token `token`.
fn with_token(
    n: &Secured,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = n.http.request(method, n.node.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn issue(n: &Secured, who: &str, body: Value) -> Value {
    let (status, issued, headers) = n.call("POST", "/api/v1/tokens", Some(who), Some(body));
    assert_eq!(status, 201, "{issued}");
    let id = issued["id"].as_str().unwrap();
    assert_eq!(headers["location"], format!("/api/v1/tokens/{id}").as_str());
    issued
}

fn ids(list: &Value) -> Vec<String> {
    let tokens = list["tokens"].as_array().unwrap();
    tokens
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tokens_are_issued_used_scoped_listed_revoked_and_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Secured::start(dir.path());

    // Issued once, with its text in that answer only.
    let issued = issue(&n, "alice", json!({"name": "airflow", "expiresInDays": 30}));
    let token = issued["token"].as_str().unwrap().to_string();
    let id = issued["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("kdl_{id}_")), "{issued}");
    assert_eq!(
        (issued["user"].as_str(), issued["role"].as_str()),
        (Some("alice"), Some("user"))
    );
    // Thirty days from the request (the issue is recorded a moment after).
    let lifetime = issued["expiresAt"].as_i64().unwrap() - issued["createdAt"].as_i64().unwrap();
    assert!(
        (30 * 86_400_000 - 10_000..=30 * 86_400_000).contains(&lifetime),
        "{issued}"
    );

    // The token is alice: her jobs, her actor, her limits.
    let body = json!({"file": n.app, "args": ["sleep=60"]});
    let (status, job) = with_token(&n, "POST", "/api/v1/batches", &token, Some(body));
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_u64().unwrap();
    assert_eq!(job["owner"], "alice", "{job}");
    let (_, history, _) = n.call(
        "GET",
        &format!("/api/v1/jobs/{job_id}/events"),
        Some("alice"),
        None,
    );
    assert_eq!(history["events"][0]["actor"], "alice", "{history}");
    let bobs = n.job("batches", "bob", json!({}));
    let (status, _) = with_token(&n, "GET", &format!("/api/v1/jobs/{bobs}"), &token, None);
    assert_eq!(status, 404, "bob's job is hidden from alice's token");
    let (status, refused) = with_token(
        &n,
        "POST",
        "/api/v1/tokens",
        &token,
        Some(json!({"name": "more"})),
    );
    assert_eq!(status, 403, "a token does not mint tokens: {refused}");

    // At most the issuer's role; a viewer's token reads and submits nothing.
    let (status, refused, _) = n.call(
        "POST",
        "/api/v1/tokens",
        Some("alice"),
        Some(json!({"name": "x", "role": "admin"})),
    );
    assert_eq!(status, 403, "{refused}");
    let viewer = issue(&n, "root", json!({"name": "dashboard", "role": "viewer"}));
    let viewer = viewer["token"].as_str().unwrap();
    let (status, _) = with_token(&n, "GET", &format!("/api/v1/jobs/{bobs}"), viewer, None);
    assert_eq!(status, 200, "a viewer reads every job");
    let (status, _) = with_token(&n, "POST", "/batches", viewer, Some(json!({"file": n.app})));
    assert_eq!(status, 403, "a viewer's token submits nothing");

    // Bad requests name the problem.
    for (body, needle) in [
        (json!({"name": "x", "expiresInDays": 0}), "expiresInDays"),
        (json!({"name": "x", "expiresInDays": 366}), "expiresInDays"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "x", "role": "root"}), "role"),
        (json!({"name": "x", "scopes": []}), "scopes"),
    ] {
        let (status, reply, _) =
            n.call("POST", "/api/v1/tokens", Some("alice"), Some(body.clone()));
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(
            reply["msg"].as_str().unwrap().contains(needle),
            "{body}: {reply}"
        );
    }

    // Listed without their text: each user sees theirs, an admin everyone's.
    let (_, alices, _) = n.call("GET", "/api/v1/tokens", Some("alice"), None);
    assert_eq!(ids(&alices), [id.as_str()]);
    assert!(
        !alices.to_string().contains(&token[4 + 16 + 1..]),
        "{alices}"
    );
    let (_, bobs_list, _) = n.call("GET", "/api/v1/tokens", Some("bob"), None);
    assert!(ids(&bobs_list).is_empty(), "{bobs_list}");
    let (_, all, _) = n.call("GET", "/api/v1/tokens", Some("root"), None);
    assert_eq!(ids(&all).len(), 2, "{all}");

    // Bad tokens: 401s that say so, never who they might belong to.
    let forged = format!(
        "{}{}",
        &token[..token.len() - 2],
        if token.ends_with("AA") { "BB" } else { "AA" }
    );
    for (bad, needle) in [
        ("kdl_nonsense", "well-formed"),
        (forged.as_str(), "unknown or revoked"),
    ] {
        let (status, reply) = with_token(&n, "GET", "/api/v1/jobs", bad, None);
        assert_eq!(status, 401, "{bad}: {reply}");
        assert!(reply["msg"].as_str().unwrap().contains(needle), "{reply}");
    }

    // Airflow's Livy hook: a password on the connection, or the token in its extra headers.
    let home = dir.path().join("airflow-home");
    let password = [
        ("KINDLING_USER", "alice".to_string()),
        ("KINDLING_PASSWORD", format!("alice-{PASSWORD}")),
    ];
    let bearer = [("KINDLING_TOKEN", token.clone())];
    for (mode, env) in [("basic", &password[..]), ("token", &bearer[..])] {
        let run = airflow(&n.node.url(""), &n.app, &home, mode, env);
        assert_eq!(run["state"], "success", "{mode}: {run}");
        let id = run["id"].as_u64().unwrap();
        let (_, job, _) = n.call("GET", &format!("/api/v1/jobs/{id}"), Some("alice"), None);
        assert_eq!(
            (job["owner"].as_str(), job["name"].as_str()),
            (Some("alice"), Some(format!("airflow-{mode}").as_str()))
        );
        assert!(
            run["log"]
                .to_string()
                .contains("application finished with 0"),
            "{run}"
        );
    }

    // Durable: a restarted node takes the token it issued.
    n.node.stop();
    n.node.restart();
    let (status, _) = with_token(&n, "GET", "/api/v1/jobs", &token, None);
    assert_eq!(status, 200);

    // Revoked by its user (bob cannot even see it), refused from then on.
    let revoke = format!("/api/v1/tokens/{id}");
    let (status, _, _) = n.call("DELETE", &revoke, Some("bob"), None);
    assert_eq!(status, 404);
    let (status, reply, _) = n.call("DELETE", &revoke, Some("alice"), None);
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = with_token(&n, "GET", "/api/v1/jobs", &token, None);
    assert_eq!(status, 401, "{reply}");
    let (_, log, _) = n.call("GET", "/api/v1/events?limit=1000", Some("root"), None);
    let revoked = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "TokenRevoked");
    assert_eq!(
        revoked.map(|e| e["actor"].clone()),
        Some(json!("alice")),
        "{log}"
    );
    assert!(
        !log.to_string().contains(&token[4 + 16 + 1..]),
        "no secret in the log"
    );

    // No token text reaches the node's log.
    let node_log = std::fs::read_to_string(n.node.data.with_extension("node.log")).unwrap();
    assert!(
        !node_log.contains(&token[4 + 16 + 1..]),
        "a token's secret was logged"
    );
    assert!(!node_log.contains(&format!("alice-{PASSWORD}")));
}
