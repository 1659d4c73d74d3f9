//! The OpenAPI document against the server that publishes it: schemathesis (installed by
//! `ops/dev/install-schemathesis`) generates requests from `/api/v1/openapi.json`, valid and
//! invalid ones, for every operation and in sequences (a batch created, then read, then
//! deleted), and checks each answer: a request the document calls valid is not refused as
//! malformed (400), an invalid one is refused with a 4xx, no answer is a 500, and every
//! status, header and body is the one documented. The node runs the fake `spark-submit`;
//! what is checked is the node's reading of requests, not Spark.

use crate::common::{fake_spark_home, venv_program, Node};
use std::path::PathBuf;
use std::process::Command;

/// Examples per operation and phase, and the seed: fixed, so a failure reproduces.
const EXAMPLES: &str = "25";
const SEED: &str = "20261207";

fn schemathesis() -> PathBuf {
    venv_program("KINDLING_SCHEMATHESIS_VENV", "schemathesis", "st")
}

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data"), &fake_spark_home(dir.path()), &[]);
    let out = Command::new(schemathesis())
        .current_dir(dir.path())
        .args(["run", &node.url("/api/v1/openapi.json")])
        .args(["--checks", "all", "--workers", "1", "--no-color"])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--generation-database", "none", "--request-timeout", "30"])
        // A stream never ends, so it cannot be judged by its whole answer: tests/it/stream.rs.
        .args(["--exclude-path", "/api/v1/stream"])
        .output()
        .expect("schemathesis is installed (run ops/dev/install-schemathesis)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.status.success(),
        "schemathesis found answers that disagree with the document ({summary})\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran: every operation was tested, and requests were generated.
    assert!(stdout.contains("Tested: "), "{stdout}");
    let tested = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    let selected = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Selected: "))
        .and_then(|n| n.split('/').next()?.trim().parse::<usize>().ok());
    assert!(
        tested.is_some_and(|t| t >= 30) && tested == selected,
        "{stdout}"
    );
}
