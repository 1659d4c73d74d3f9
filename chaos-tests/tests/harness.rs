//! The harness tested end to end against a stand-in for the `kindling` binary
//! (`tests/stub/kindling-stub.py`): a few nodes sharing a file log and a leader lease, which
//! launch batches through the launch ledger like the local backend. This checks the harness
//! (namespaces, proxies, process control, workload, nemeses, collection, checkers), not
//! Kindling: the real cluster runs in `short_run.rs`. One run must pass; one whose new leaders
//! launch running jobs again must be caught by invariant 2.

use kindling_chaos::run::{self, RunConfig};
use kindling_chaos::schedule::Nemesis;
use std::path::PathBuf;
use std::time::Duration;

fn stub() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/stub/kindling-stub.py")
}

fn config(name: &str, seed: u64, duration: u64, nemeses: Vec<Nemesis>) -> RunConfig {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chaos-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = RunConfig::new(seed, Duration::from_secs(duration), stub(), dir);
    // A broker restart keeps the log only when it lives on S3.
    cfg.broker_on_s3 = nemeses.contains(&Nemesis::RestartBroker);
    cfg.nemeses = nemeses;
    cfg.sessions = Some(0);
    cfg.rate = 8.0;
    cfg.settle = Duration::from_secs(60);
    cfg.recovery_bound = Duration::from_secs(10);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_correct_stub_passes() {
    // Seed 20 draws, in 45 s: a pause of the leader, a leader kill, a Mongo restart and a
    // follower kill (`kindling-chaos schedule --seed 20 --duration 45s --nemeses ...`).
    let cfg = config(
        "stub-pass",
        20,
        45,
        vec![
            Nemesis::KillLeader,
            Nemesis::KillFollower,
            Nemesis::Pause,
            Nemesis::Partition,
            Nemesis::RestartBroker,
            Nemesis::RestartMongo,
            Nemesis::CutBroker,
        ],
    );
    let out = run::run(cfg).await.expect("the run completes");
    println!("{}", out.summary);
    assert!(
        out.summary.trim_end().ends_with("violations: 0"),
        "{}",
        out.summary
    );
    let history = std::fs::read_to_string(out.dir.join("history.jsonl")).unwrap();
    assert!(history.lines().count() > 50, "too few operations");
    let faults = std::fs::read_to_string(out.dir.join("faults.jsonl")).unwrap();
    assert_eq!(faults.lines().count(), 4, "{faults}");
    let _ = std::fs::remove_dir_all(&out.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_launch_is_caught() {
    let cfg = config("stub-double-launch", 11, 32, vec![Nemesis::KillLeader]);
    std::fs::create_dir_all(&cfg.run_dir).unwrap();
    std::fs::write(cfg.run_dir.join("stub-bug"), "double-launch").unwrap();
    let out = run::run(cfg).await.expect("the run completes");
    println!("{}", out.summary);
    assert!(
        out.violations.iter().any(
            |v| v.invariant == kindling_chaos::checker::Invariant::Launches
                && v.message.contains("was launched 2 times")
        ),
        "{}",
        out.summary
    );
    let _ = std::fs::remove_dir_all(&out.dir);
}
