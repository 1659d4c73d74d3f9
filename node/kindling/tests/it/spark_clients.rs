//! Livy's clients, unchanged, against a running node on real Spark with `--auth basic`:
//! sparkmagic (its own client classes, as its kernels use them, with its Basic_Access
//! authentication) and pylivy (with requests' Basic auth), then both again with a Bearer
//! token through their own authentication hooks (a sparkmagic authenticator class, a
//! requests auth). The Python checks live in `tests/it/clients/` and run in the clients venv
//! that `ops/dev/install-clients` creates; the credentials reach them through the
//! environment, never a command line.

use crate::auth::{add_user, PASSWORD};
use crate::common::{program, real_spark_home, spark_conf, venv_program, Node};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn clients_python() -> PathBuf {
    venv_program("KINDLING_CLIENTS_VENV", "clients", "python")
}

/// Runs a client check as `user` (its password in the environment), or with `token` as its
/// Bearer credentials.
fn check(script: &str, args: &[&str], user: &str, token: Option<&str>) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/clients")
        .join(script);
    let out = Command::new(clients_python())
        .arg(&path)
        .args(args)
        .env("KINDLING_USER", user)
        .env("KINDLING_PASSWORD", format!("{user}-{PASSWORD}"))
        .envs(token.map(|t| ("KINDLING_TOKEN", t)))
        .output()
        .expect("the clients venv exists (run ops/dev/install-clients)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("{script} printed no JSON result: {stdout}"))
}

#[test]
fn spark_clients_sparkmagic_and_pylivy_work_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    add_user(&users, "nb", "");
    let mut flags = spark_conf();
    flags.extend(["--auth", "basic", "--users-file", users.to_str().unwrap()]);
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &flags);
    assert_eq!(node.get("/sessions").0, 401, "credentials are required");
    let node = node.authenticating("nb", &format!("nb-{PASSWORD}"));

    // With a password, and with a Bearer token (an API token here; an OIDC JWT travels the
    // same way, see auth_oidc), each through the client's own authentication hooks.
    let (status, issued) = node.post("/api/v1/tokens", serde_json::json!({"name": "notebooks"}));
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap();
    let sm = check("sparkmagic_check.py", &[&node.base], "nb", None);
    assert_eq!(sm["state_after_start"], "idle", "{sm}");
    assert_eq!(sm["sum"]["ok"], true);
    assert_eq!(sm["sum"]["text"], "45");
    assert_eq!(sm["error"]["ok"], false);
    assert!(
        sm["error"]["text"].as_str().unwrap().contains("NameError"),
        "{sm}"
    );
    assert_eq!(sm["sql"]["text"], "42");
    let id = sm["id"].as_u64().unwrap();
    assert_eq!(sm["listed"], serde_json::json!([id]));
    // sparkmagic's delete reached the node: the driver is stopped and the session gone.
    node.wait_state(
        &format!("/api/v1/jobs/{id}"),
        &["killed"],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(node.get(&format!("/sessions/{id}")).0, 404);
    let owner = node.get(&format!("/api/v1/jobs/{id}")).1["owner"].clone();
    assert_eq!(
        owner, "nb",
        "the session belongs to the user sparkmagic authenticated as"
    );
    let bearer = check("sparkmagic_check.py", &[&node.base], "nb", Some(token));
    assert_eq!(
        (&bearer["sum"]["text"], &bearer["sql"]["text"]),
        (&serde_json::json!("45"), &serde_json::json!("42")),
        "{bearer}"
    );

    let app = program(
        dir.path(),
        "batch.py",
        "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()\nprint('pylivy-batch-done')\n",
    );
    let pl = check("pylivy_check.py", &[&node.base, &app], "nb", None);
    assert_eq!(pl["state"], "idle", "{pl}");
    assert_eq!(pl["text"], "4");
    assert_eq!(pl["read"][3], serde_json::json!({"id": 3, "square": 9}));
    assert_eq!(
        pl["sql"],
        serde_json::json!([{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    );
    assert_eq!(pl["batch"]["state"], "success");
    let batch = pl["batch"]["id"].as_u64().unwrap();
    let log = node
        .get(&format!("/batches/{batch}/log?size=-1"))
        .1
        .to_string();
    assert!(log.contains("pylivy-batch-done"), "{log}");
    let bearer = check("pylivy_check.py", &[&node.base, &app], "nb", Some(token));
    assert_eq!(
        (&bearer["text"], &bearer["batch"]["state"]),
        (&serde_json::json!("4"), &serde_json::json!("success")),
        "{bearer}"
    );
}
