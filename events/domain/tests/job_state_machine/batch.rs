//! Batches: not_started -> starting -> running -> success/dead/killed; kills, deletes, finishes
//! (idempotent, and always ending the job), and commands or events of a stale attempt.

use super::*;

#[test]
fn batch_runs_from_not_started_to_success() {
    let mut log = Log::submit(batch());
    assert_eq!(log.job.state, JobState::NotStarted);
    assert_eq!((log.job.version, log.job.attempt), (1, Attempt(0)));
    assert_eq!(log.job.submitted_at_ms, T0);

    let events = log.ok(schedule());
    assert_eq!(
        events,
        vec![Event::JobScheduled {
            attempt: Attempt(1),
            driver_name: "kindling-7-1".into(),
            secret_digest: "5e884898da28047151d0e56f8dc62927".into(),
        }]
    );
    assert_eq!(log.job.state, JobState::Starting);
    assert_eq!(log.job.attempt, Attempt(1));
    assert_eq!(log.job.driver_name.as_deref(), Some("kindling-7-1"));
    assert_eq!(log.job.started_at_ms, None);

    log.ok(launched(1));
    assert_eq!(log.job.state, JobState::Running);
    assert_eq!(
        log.job.driver_id.as_deref(),
        Some("spark-jobs/kindling-7-1-driver")
    );
    assert_eq!(log.job.started_at_ms, Some(log.last_at()));

    log.ok(Command::AppIdentified {
        attempt: Attempt(1),
        app_id: "spark-0123abcd".into(),
        spark_ui_url: Some("http://driver:4040".into()),
    });
    assert_eq!(log.job.app_id.as_deref(), Some("spark-0123abcd"));
    assert_eq!(log.job.spark_ui_url.as_deref(), Some("http://driver:4040"));
    assert_eq!(log.job.state, JobState::Running);

    let events = log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(
        events.len(),
        1,
        "a batch has no statements to end: {events:?}"
    );
    assert_eq!(log.job.state, JobState::Success);
    assert_eq!(log.job.exit_code, Some(0));
    assert_eq!(log.job.finished_at_ms, Some(log.last_at()));
    assert_eq!(log.job.reason, None);
    assert_eq!(log.job.version, 5);
    assert_eq!(log.job.applied, LogPosition(5));
}

#[test]
fn batch_whose_driver_fails_is_dead_with_the_reason() {
    let mut log = Log::running_batch();
    log.ok(finish(1, failed("exit code 1: OutOfMemoryError"), Some(1)));
    assert_eq!(log.job.state, JobState::Dead);
    assert_eq!(
        log.job.reason.as_deref(),
        Some("exit code 1: OutOfMemoryError")
    );
    assert_eq!(log.job.exit_code, Some(1));
}

#[test]
fn batch_whose_driver_never_came_up_is_dead_not_error() {
    let mut log = Log::submit(batch());
    log.ok(schedule());
    log.ok(finish(
        1,
        Outcome::Error {
            reason: "image pull failed".into(),
        },
        None,
    ));
    assert_eq!(log.job.state, JobState::Dead, "batches have no error state");
    assert_eq!(log.job.reason.as_deref(), Some("image pull failed"));
}

#[test]
fn killing_a_running_batch_waits_for_the_driver_then_ends_killed() {
    let mut log = Log::running_batch();
    let events = log.ok(kill("killed by ann"));
    assert_eq!(
        events,
        vec![Event::KillRequested {
            reason: "killed by ann".into()
        }]
    );
    assert!(log.job.kill_requested);
    assert_eq!(log.job.state, JobState::Running, "the driver still runs");

    log.ok(finish(
        1,
        Outcome::Killed {
            reason: "pod deleted".into(),
        },
        Some(137),
    ));
    assert_eq!(log.job.state, JobState::Killed);
    assert_eq!(log.job.reason.as_deref(), Some("killed by ann"));
}

#[test]
fn a_kill_racing_a_failure_ends_killed_but_one_racing_success_ends_success() {
    let mut log = Log::running_batch();
    log.ok(kill("killed by ann"));
    log.ok(finish(1, failed("SIGTERM"), Some(143)));
    assert_eq!(log.job.state, JobState::Killed);
    assert_eq!(log.job.reason.as_deref(), Some("killed by ann"));

    let mut log = Log::running_batch();
    log.ok(kill("killed by ann"));
    log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(log.job.state, JobState::Success);
}

#[test]
fn kill_of_a_not_started_job_finishes_it_immediately_as_killed() {
    let mut log = Log::submit(batch());
    let events = log.ok(kill("no longer needed"));
    assert_eq!(
        events,
        vec![
            Event::KillRequested {
                reason: "no longer needed".into()
            },
            Event::JobFinished {
                attempt: Attempt(0),
                outcome: Outcome::Killed {
                    reason: "no longer needed".into()
                },
                exit_code: None,
            },
        ]
    );
    assert_eq!(log.job.state, JobState::Killed);
    assert_eq!(log.job.finished_at_ms, Some(log.last_at()));
    assert_eq!(log.job.reason.as_deref(), Some("no longer needed"));

    assert_eq!(
        log.run(schedule()),
        Err(DomainError::JobIllegal {
            job: JOB,
            state: JobState::Killed,
            action: "schedule after a kill",
        })
    );
}

#[test]
fn kill_is_idempotent_and_a_no_op_on_a_finished_job() {
    let mut log = Log::running_batch();
    log.ok(kill("first"));
    assert_eq!(log.ok(kill("second")), vec![]);
    assert_eq!(log.job.reason.as_deref(), Some("first"));

    let mut log = Log::running_batch();
    log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(log.ok(kill("too late")), vec![]);
    assert!(!log.job.kill_requested);
}

#[test]
fn scheduling_twice_is_refused() {
    let mut log = Log::submit(batch());
    log.ok(schedule());
    assert_eq!(
        log.run(schedule()),
        Err(DomainError::IllegalTransition {
            job: JOB,
            from: JobState::Starting,
            to: JobState::Starting,
        })
    );
}

#[test]
fn delete_hides_and_kills_a_not_started_job() {
    let mut log = Log::submit(batch());
    let events = log.ok(Command::Delete);
    assert_eq!(
        events.iter().map(Event::name).collect::<Vec<_>>(),
        ["KillRequested", "JobFinished", "JobDeleted"]
    );
    assert!(log.job.deleted);
    assert_eq!(log.job.state, JobState::Killed);
    assert_eq!(
        log.ok(Command::Delete),
        vec![],
        "a second delete is a no-op"
    );
}

#[test]
fn delete_of_a_running_session_shuts_it_down_and_hides_it() {
    let mut log = Log::ready_session();
    let events = log.ok(Command::Delete);
    assert_eq!(
        events,
        vec![
            Event::KillRequested {
                reason: "deleted by a client".into()
            },
            Event::JobDeleted,
        ]
    );
    assert!(log.job.deleted && log.job.kill_requested);
    assert_eq!(log.job.state, JobState::ShuttingDown);

    log.ok(finish(
        1,
        Outcome::Killed {
            reason: "stopped".into(),
        },
        None,
    ));
    assert_eq!(log.job.state, JobState::Killed);
    assert!(log.job.deleted);
}

#[test]
fn delete_of_a_finished_job_only_hides_it() {
    let mut log = Log::running_batch();
    log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(log.ok(Command::Delete), vec![Event::JobDeleted]);
    assert!(log.job.deleted);
    assert_eq!(log.job.state, JobState::Success, "history is kept");
}

#[test]
fn finish_is_idempotent() {
    let mut log = Log::running_batch();
    log.ok(finish(1, failed("boom"), Some(1)));
    let after_first = log.job.clone();
    assert_eq!(log.ok(finish(1, failed("boom"), Some(1))), vec![]);
    assert_eq!(log.ok(finish(1, Outcome::Succeeded, Some(0))), vec![]);
    assert_eq!(log.job, after_first);
}

/// Whatever state a driver ends in, a `Finish` of the current attempt must end the job:
/// otherwise the job shows a driver that no longer exists and a retried `Finish` appends again.
#[test]
fn finish_of_the_current_attempt_always_ends_the_job() {
    type Setup = fn() -> Log;
    let setups: [(&str, Setup); 9] = [
        ("batch not_started", || Log::submit(batch())),
        ("batch starting", || {
            let mut log = Log::submit(batch());
            log.ok(schedule());
            log
        }),
        ("batch running", Log::running_batch),
        ("session not_started", || Log::submit(session())),
        ("session starting", || {
            let mut log = Log::submit(session());
            log.ok(schedule());
            log
        }),
        ("session idle", Log::ready_session),
        ("session busy", || {
            let mut log = Log::ready_session();
            log.ok(submit_sql("SELECT 1"));
            log
        }),
        ("session recovering", || {
            let mut log = Log::ready_session();
            log.ok(Command::SessionRecovering {
                attempt: Attempt(1),
                reason: "link lost".into(),
            });
            log
        }),
        ("session shutting_down", || {
            let mut log = Log::ready_session();
            log.ok(kill("stop"));
            log
        }),
    ];
    let outcomes = [
        Outcome::Succeeded,
        failed("exit 1"),
        Outcome::Killed {
            reason: "evicted".into(),
        },
        Outcome::Error {
            reason: "never registered".into(),
        },
    ];
    for (name, setup) in setups {
        for outcome in &outcomes {
            let mut log = setup();
            let attempt = log.job.attempt.0;
            let from = log.job.state;
            log.ok(finish(attempt, outcome.clone(), Some(0)));
            assert!(
                log.job.state.is_terminal(),
                "{name}: Finish({outcome:?}) left it {} (from {from})",
                log.job.state
            );
            assert_eq!(
                log.ok(finish(attempt, outcome.clone(), Some(0))),
                vec![],
                "{name}: a retried Finish({outcome:?}) appended again"
            );
        }
    }
}

#[test]
fn a_session_stopped_by_a_client_ends_success_when_its_driver_exits_cleanly() {
    let mut log = Log::ready_session();
    log.ok(kill("stopped by ann"));
    assert_eq!(log.job.state, JobState::ShuttingDown);
    log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(log.job.state, JobState::Success);
}

#[test]
fn a_session_whose_driver_exits_on_its_own_is_dead() {
    // As in Livy: an interactive driver that ends without being asked to is dead, even with
    // exit code 0; only a stop requested by a client ends in success.
    let mut log = Log::ready_session();
    log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(log.job.state, JobState::Dead);
    assert_eq!(log.job.finished_at_ms, Some(log.last_at()));
}

// ---- stale attempts ------------------------------------------------------------------------

#[test]
fn commands_for_another_attempt_decide_nothing() {
    let mut log = Log::ready_session();
    let before = log.job.clone();
    for cmd in [
        launched(2),
        Command::AppIdentified {
            attempt: Attempt(0),
            app_id: "old-app".into(),
            spark_ui_url: None,
        },
        Command::SessionReady {
            attempt: Attempt(2),
        },
        Command::SessionRecovering {
            attempt: Attempt(0),
            reason: "old link".into(),
        },
        finish(0, failed("old driver"), Some(1)),
        finish(2, failed("future driver"), Some(1)),
    ] {
        assert_eq!(log.ok(cmd.clone()), vec![], "{cmd:?}");
    }
    assert_eq!(log.job, before);
}

#[test]
fn events_of_a_stale_attempt_are_counted_but_ignored() {
    let mut log = Log::running_batch();
    let before = log.job.clone();
    let stale = [
        Event::DriverLaunched {
            attempt: Attempt(0),
            driver_id: "ghost".into(),
        },
        Event::AppIdentified {
            attempt: Attempt(0),
            app_id: "ghost-app".into(),
            spark_ui_url: None,
        },
        Event::JobFinished {
            attempt: Attempt(0),
            outcome: failed("ghost died"),
            exit_code: Some(1),
        },
    ];
    for event in stale {
        assert_eq!(log.append(event), Applied::Yes);
    }
    let mut expected = before;
    expected.version += 3;
    expected.applied = log.envelopes.last().unwrap().position;
    expected.max_term = log.job.max_term;
    assert_eq!(log.job, expected);
}

#[test]
fn stale_session_events_do_not_move_the_session() {
    let mut log = Log::ready_session();
    log.append(Event::SessionRecovering {
        attempt: Attempt(0),
        reason: "old driver".into(),
    });
    log.append(Event::SessionReady {
        attempt: Attempt(3),
    });
    assert_eq!(log.job.state, JobState::Idle);
    assert_eq!(log.job.reason, None);
}
