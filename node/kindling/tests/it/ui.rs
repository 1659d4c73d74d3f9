//! The web UI in a real headless Chromium against a node on real Spark with `--auth basic`:
//! `tests/it/clients/ui_check.py` (playwright's driver, Debian's browser; installed by
//! `ops/dev/install-browser`) logs in, submits a batch and follows it to `success`, runs
//! pyspark and SQL cells, completes with Tab, cancels a cell, kills a session, and tries to
//! kill as a viewer, and manages a cluster as an admin. Screenshots of each step land in `target/ui-screenshots/`.

use crate::auth::{add_user, PASSWORD};
use crate::common::{program, real_spark_home, spark_conf, venv_program, Node};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_person_runs_and_watches_jobs_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    add_user(&users, "alice", "");
    add_user(&users, "vic", "viewers");
    add_user(&users, "root", "admins");
    let mut flags = spark_conf();
    flags.extend(["--auth", "basic", "--users-file", users.to_str().unwrap()]);
    let node = Node::start(&dir.path().join("data"), &real_spark_home(), &flags);
    let app = program(
        dir.path(),
        "ui_batch.py",
        "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()\nprint('ui-batch-done')\n",
    );
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/clients/ui_check.py");
    let out = Command::new(venv_program("KINDLING_BROWSER_VENV", "browser", "python"))
        .arg(script)
        .args([&node.base, &app, shots.to_str().unwrap()])
        .env("KINDLING_USER_PASSWORD", format!("alice-{PASSWORD}"))
        .env("KINDLING_VIEWER_PASSWORD", format!("vic-{PASSWORD}"))
        .env("KINDLING_ADMIN_PASSWORD", format!("root-{PASSWORD}"))
        .output()
        .expect("the browser venv exists (run ops/dev/install-browser)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ui_check failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no JSON result: {stdout}"));

    // Keyboard order of the login form, and the API's message for a wrong password.
    assert_eq!(
        r["login_tab_order"],
        serde_json::json!(["login-user", "login-password", "Log in"]),
        "{r}"
    );
    assert!(
        r["bad_login"]
            .as_str()
            .unwrap()
            .contains("invalid user name or password"),
        "{r}"
    );
    // The batch ran, its log was searched, its timeline tells its story.
    let batch = r["batch_id"].as_u64().unwrap();
    let job = node_job(&node, batch, "alice");
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(job["name"], "ui-batch");
    assert_eq!(r["log_search_marks"], 1, "{r}");
    // Its queue, and its attempt against its restart policy's (set in the form's conf).
    assert_eq!(r["queue_detail"], "default", "{r}");
    assert_eq!(r["attempt_detail"], "1 of 2", "{r}");
    let timeline: Vec<&str> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for step in ["JobSubmitted", "JobScheduled", "JobFinished"] {
        assert!(timeline.contains(&step), "{step} missing from {timeline:?}");
    }
    // The name search: the server's filter, kept in the address.
    assert!(
        r["searched"][0]
            .as_str()
            .unwrap_or_default()
            .contains("ui-batch"),
        "{r}"
    );
    assert_eq!(r["search_address"], "/jobs?name=UI-BAT", "{r}");
    // The session's cells.
    assert!(r["pyspark_text"].as_str().unwrap().contains('7'), "{r}");
    assert_eq!(
        r["sql_headers"],
        serde_json::json!(["one", "letter"]),
        "{r}"
    );
    assert_eq!(r["sql_cells"], serde_json::json!(["1", "a"]), "{r}");
    assert!(
        r["error_text"]
            .as_str()
            .unwrap()
            .contains("ZeroDivisionError"),
        "{r}"
    );
    // Python's completer marks a callable with its parenthesis.
    assert!(
        ["spark.range", "spark.range("].contains(&r["completed"].as_str().unwrap()),
        "{r}"
    );
    let session = node_job(&node, r["session_id"].as_u64().unwrap(), "alice");
    assert_eq!(session["state"], "killed", "{session}");
    // The viewer: nothing to run, no kill button, a forged kill refused either way.
    assert_eq!(r["viewer_run_form"], 0, "{r}");
    assert_eq!(r["viewer_kill_buttons"], 0, "{r}");
    assert_eq!(r["forged_kill"][0], 403, "{r}");
    assert!(r["forged_kill"][1]
        .as_str()
        .unwrap()
        .contains("may not change jobs"));
    assert_eq!(r["cross_site_kill"][0], 403, "{r}");
    assert!(r["cross_site_kill"][1]
        .as_str()
        .unwrap()
        .contains("x-requested-by"));
    assert_eq!(node_job(&node, batch, "alice")["state"], "success");
    assert_eq!(r["viewer_cluster_forms"], 0, "{r}");
    // The admin's cluster: registered, changed, removed.
    assert!(
        r["cluster_changed"].as_str().unwrap().contains("3 drivers"),
        "{r}"
    );
    assert_eq!(r["cluster_removed"], true);
    let clusters = node_get(&node, "/api/v1/clusters", "root");
    assert_eq!(
        clusters["clusters"].as_array().unwrap().len(),
        1,
        "{clusters}"
    );
    // No script errors or policy violations; no accessibility violations on any page.
    assert_eq!(r["console_errors"], serde_json::json!([]), "{r}");
    for (page, violations) in r["axe"].as_object().unwrap() {
        assert_eq!(
            violations,
            &serde_json::json!([]),
            "axe on {page}: {violations}"
        );
    }
    assert_eq!(r["axe"].as_object().unwrap().len(), 7, "{r}");
    assert_eq!(r["shots"].as_array().unwrap().len(), 10, "{r}");
}

fn node_job(node: &Node, id: u64, who: &str) -> Value {
    node_get(node, &format!("/api/v1/jobs/{id}"), who)
}

fn node_get(node: &Node, path: &str, who: &str) -> Value {
    let r = reqwest::blocking::Client::new()
        .get(node.url(path))
        .basic_auth(who, Some(format!("{who}-{PASSWORD}")))
        .send()
        .unwrap();
    r.json().unwrap()
}
