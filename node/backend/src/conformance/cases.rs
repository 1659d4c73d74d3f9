//! The cases of the conformance suite, each a test of its own in every adapter's binary
//! (through [`backend_conformance_tests!`](crate::backend_conformance_tests)). Four drivers in
//! all: one long-lived driver carries launch, find after a restart, the re-issued launch and
//! the kill; two carry the exit codes; one the log kept after the cluster forgot it.

use super::instance::{Exit, TAIL};
use super::{launch_spec, marker, Ending, ExitCodes, Harness, Instance};
use crate::{BackendEvent, Found, LogWindow};
use kindling_events::{Attempt, JobId};
use std::time::Duration;

/// How long an instance is listened to after the end it reported, for a second report of
/// the same end (a driver watched twice reports from both watches at about the same time).
const SETTLE: Duration = Duration::from_secs(2);

fn exits(reported: &[BackendEvent]) -> usize {
    reported
        .iter()
        .filter(|ev| matches!(ev, BackendEvent::Exited { .. }))
        .count()
}

/// An exit code that says the driver failed: known, and not zero.
fn is_failure(exit_code: Option<i32>) -> bool {
    exit_code.is_some_and(|c| c != 0)
}

/// Launched, the driver runs and prints; a new instance (the node restarted) finds it running
/// under the same id; a launch re-issued for it answers that id and starts no second driver;
/// killed, it is reported ended, once, with a failure's exit code, and `find` says it ended.
pub async fn a_running_driver_is_found_after_a_restart_relaunched_once_and_killed<H: Harness>(
    h: &H,
) {
    let job = JobId(1);
    let launch = launch_spec(job, h.batch(job, Ending::OnRelease(0)));
    let name = launch.driver_name.clone();
    let first = Instance::start(h).await;
    let driver_id = first.backend.launch(launch.clone()).await.unwrap();
    assert!(!driver_id.is_empty(), "a launch answers the driver's id");
    first.log_with_line(&name, &marker(job)).await;
    assert_eq!(
        first.backend.find(job, Attempt(1), &name).await.unwrap(),
        Found::Running {
            driver_id: driver_id.clone()
        },
        "the instance that launched the driver finds it running"
    );

    // The node restarts: a new instance knows nothing but the driver's name.
    drop(first);
    let mut node = Instance::start(h).await;
    assert_eq!(
        node.backend.find(job, Attempt(1), &name).await.unwrap(),
        Found::Running {
            driver_id: driver_id.clone()
        },
        "after a restart the running driver is found under the id it was launched with"
    );
    assert_eq!(
        node.backend.launch(launch).await.unwrap(),
        driver_id,
        "a re-issued launch finds the driver that exists"
    );
    assert_eq!(
        node.backend
            .find(job, Attempt(2), &crate::driver_name(job, Attempt(2)))
            .await
            .unwrap(),
        Found::Never,
        "another attempt of the job is another driver"
    );

    node.backend.kill(&name).await.unwrap();
    let Exit { exit_code, reason } = node.exit_of(job).await;
    // Each cluster has its own code for a driver stopped on request (143 for SIGTERM where a
    // process was signalled); what they share is that it is a failure's.
    assert!(
        is_failure(exit_code),
        "a killed driver failed: {exit_code:?}"
    );
    if let Some(expected) = h.kill_reason() {
        assert_eq!(reason.as_deref(), Some(expected.as_str()), "kill reason");
    }
    assert_eq!(
        node.backend.find(job, Attempt(1), &name).await.unwrap(),
        Found::Ended { exit_code },
        "a killed driver is found ended, with the exit code reported"
    );
    node.listen(SETTLE).await;
    let reported = node.reported(job);
    assert_eq!(
        exits(&reported),
        1,
        "one end reported for one driver, however often it was launched and found: {reported:?}"
    );
}

/// A driver that exits at once and one that exits when released are reported with their exit
/// codes (and the cluster's reason, where it gives one), exactly once each; `find` says they
/// ended with those codes, on the instance that watched them and on a new one.
pub async fn exits_are_reported_with_their_codes_and_found_after_a_restart<H: Harness>(h: &H) {
    let (ok, failing) = (JobId(2), JobId(3));
    let cases = [(ok, Ending::AtOnce(0)), (failing, Ending::OnRelease(3))];
    let mut node = Instance::start(h).await;
    for (job, ending) in cases {
        node.backend
            .launch(launch_spec(job, h.batch(job, ending)))
            .await
            .unwrap();
    }
    let failing_name = crate::driver_name(failing, Attempt(1));
    node.log_with_line(&failing_name, &marker(failing)).await;
    assert!(
        matches!(
            node.backend
                .find(failing, Attempt(1), &failing_name)
                .await
                .unwrap(),
            Found::Running { .. }
        ),
        "a driver waiting to be released runs"
    );
    h.release(failing).await;

    let mut ended = vec![];
    for (job, ending) in cases {
        let Exit { exit_code, reason } = node.exit_of(job).await;
        match (ending.code(), h.exit_codes()) {
            (0, _) => assert_eq!(exit_code, Some(0), "job {}", job.0),
            (code, ExitCodes::Exact) => assert_eq!(exit_code, Some(code), "job {}", job.0),
            (_, ExitCodes::ZeroOrNot) => assert!(is_failure(exit_code), "{exit_code:?}"),
        }
        if let Some(expected) = h.exit_reason(ending.code()) {
            assert_eq!(
                reason.as_deref(),
                Some(expected.as_str()),
                "reason of job {}",
                job.0
            );
        }
        ended.push((job, exit_code));
    }
    for (job, exit_code) in &ended {
        let name = crate::driver_name(*job, Attempt(1));
        assert_eq!(
            node.backend.find(*job, Attempt(1), &name).await.unwrap(),
            Found::Ended {
                exit_code: *exit_code
            },
            "job {} is found ended by the instance that watched it",
            job.0
        );
    }
    node.listen(SETTLE).await;
    for (job, _) in &ended {
        let reported = node.reported(*job);
        assert_eq!(exits(&reported), 1, "job {}: {reported:?}", job.0);
    }

    // They ended while no instance watched them.
    drop(node);
    let node = Instance::start(h).await;
    for (job, exit_code) in ended {
        let name = crate::driver_name(job, Attempt(1));
        assert_eq!(
            node.backend.find(job, Attempt(1), &name).await.unwrap(),
            Found::Ended { exit_code },
            "job {} is found ended after a restart",
            job.0
        );
    }
}

/// What a driver printed is served after it ended, by a new instance, once the cluster has
/// forgotten the driver: a window's lines are where the window says.
pub async fn a_drivers_log_outlives_the_driver_and_the_clusters_record_of_it<H: Harness>(h: &H) {
    let job = JobId(4);
    let name = crate::driver_name(job, Attempt(1));
    let mut node = Instance::start(h).await;
    node.backend
        .launch(launch_spec(job, h.batch(job, Ending::AtOnce(4))))
        .await
        .unwrap();
    let exit = node.exit_of(job).await;
    assert!(is_failure(exit.exit_code), "{exit:?}");
    drop(node);
    let forgot = h.forget(job).await;

    let node = Instance::start(h).await;
    let tail = node.tail(&name).await;
    let line = marker(job);
    let Some(at) = tail.lines.iter().position(|l| *l == line) else {
        panic!(
            "{line:?} is not in the log of {name} (forgotten by the cluster: {forgot}):\n{}",
            tail.lines.join("\n")
        );
    };
    assert_eq!(
        tail.from + tail.lines.len(),
        tail.total,
        "a tail ends at the log's end"
    );
    assert!(tail.lines.len() <= TAIL);
    let one = node
        .backend
        .log(
            &name,
            LogWindow::Range {
                from: tail.from + at,
                size: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (one.from, one.total, one.lines),
        (tail.from + at, tail.total, vec![line]),
        "a range of one line is that line"
    );
}

/// A driver that was never launched is found `Never`; killing it is no error and reports
/// nothing; it has no log.
pub async fn an_unknown_driver_was_never_launched<H: Harness>(h: &H) {
    let job = JobId(99);
    let name = crate::driver_name(job, Attempt(1));
    let mut node = Instance::start(h).await;
    assert_eq!(
        node.backend.find(job, Attempt(1), &name).await.unwrap(),
        Found::Never
    );
    node.backend.kill(&name).await.unwrap();
    let log = node.tail(&name).await;
    assert_eq!((log.total, log.lines.len()), (0, 0), "{:?}", log.lines);
    node.listen(SETTLE).await;
    assert_eq!(node.reported(job), vec![], "nothing is reported about it");
    assert_eq!(
        node.backend.find(job, Attempt(1), &name).await.unwrap(),
        Found::Never,
        "a kill starts nothing"
    );
}
