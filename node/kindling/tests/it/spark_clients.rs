//! Livy's clients, unchanged, against a running node on real Spark with `--auth basic,oidc`:
//! sparkmagic (its own client classes, as its kernels use them, with its Basic_Access
//! authentication) and pylivy (with requests' Basic auth), then both again with Bearer
//! tokens through their own authentication hooks (a sparkmagic authenticator class, a
//! requests auth): a Kindling API token, and a JWT of the node's identity provider. The Python checks live in `tests/it/clients/` and run in the clients venv
//! that `ops/dev/install-clients` creates; the credentials reach them through the
//! environment, never a command line.

use crate::auth::{add_user, PASSWORD};
use crate::auth_oidc as oidc;
use crate::common::{program, real_spark_home, spark_conf, venv_program, Node};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

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
    let (pem, jwk) = oidc::rsa_key(dir.path(), "k1");
    let jwks = oidc::jwks_server(
        Arc::new(Mutex::new(serde_json::json!({ "keys": [jwk] }))),
        Arc::default(),
    );
    let mut flags = spark_conf();
    flags.extend([
        "--auth",
        "basic,oidc",
        "--users-file",
        users.to_str().unwrap(),
    ]);
    flags.extend([
        "--oidc-issuer",
        oidc::ISSUER,
        "--oidc-audience",
        oidc::AUDIENCE,
    ]);
    flags.extend(["--oidc-jwks-url", &jwks]);
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &flags);
    assert_eq!(node.get("/sessions").0, 401, "credentials are required");
    let node = node.authenticating("nb", &format!("nb-{PASSWORD}"));

    // With a password, and with Bearer tokens (an API token, a JWT), each through the
    // client's own authentication hooks.
    let (status, issued) = node.post("/api/v1/tokens", serde_json::json!({"name": "notebooks"}));
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap();
    let jwt = oidc::token(&pem, "k1", oidc::claims("nb", &[]));
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
    for bearer in [token, &jwt] {
        let sm = check("sparkmagic_check.py", &[&node.base], "nb", Some(bearer));
        assert_eq!(
            (&sm["sum"]["text"], &sm["sql"]["text"]),
            (&serde_json::json!("45"), &serde_json::json!("42")),
            "{sm}"
        );
        let id = sm["id"].as_u64().unwrap();
        let owner = node.get(&format!("/api/v1/jobs/{id}")).1["owner"].clone();
        assert_eq!(owner, "nb", "the JWT's subject owns the session");
    }

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
    for bearer in [token, &jwt] {
        let pl = check("pylivy_check.py", &[&node.base, &app], "nb", Some(bearer));
        assert_eq!(
            (&pl["text"], &pl["batch"]["state"]),
            (&serde_json::json!("4"), &serde_json::json!("success")),
            "{pl}"
        );
    }
}
