//! Sessions and their statements: starting -> idle <-> busy, recovering, statements waiting ->
//! running -> available or cancelled, refusals, and what a session's end does to statements.

use super::*;

#[test]
fn session_goes_starting_idle_busy_idle() {
    let mut log = Log::submit(session());
    log.ok(schedule());
    assert_eq!(log.job.state, JobState::Starting);
    log.ok(launched(1));
    assert_eq!(
        log.job.state,
        JobState::Starting,
        "a launched session is starting until its driver registers"
    );
    assert!(log.job.started_at_ms.is_some());

    log.ok(Command::SessionReady {
        attempt: Attempt(1),
    });
    assert_eq!(log.job.state, JobState::Idle);
    assert_eq!(log.job.idle_since_ms, Some(log.last_at()));

    let events = log.ok(submit_sql("SELECT count(*) FROM events"));
    assert_eq!(
        events,
        vec![Event::StatementSubmitted {
            statement: StatementId(0),
            kind: SessionKind::Sql,
            code: "SELECT count(*) FROM events".into(),
        }]
    );
    assert_eq!(log.job.state, JobState::Busy);
    assert_eq!(log.job.statements, [StatementState::Waiting]);
    assert_eq!(log.job.idle_since_ms, None);
    assert_eq!(log.job.last_activity_ms, log.last_at());

    log.ok(started(0));
    assert_eq!(log.job.statements, [StatementState::Running]);
    assert_eq!(log.job.state, JobState::Busy);

    log.ok(complete(0));
    assert_eq!(log.job.statements, [StatementState::Available]);
    assert_eq!(log.job.state, JobState::Idle);
    assert_eq!(log.job.idle_since_ms, Some(log.last_at()));
}

#[test]
fn a_session_stays_busy_until_its_last_statement_ends() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    log.ok(submit_sql("SELECT 2"));
    assert_eq!(log.job.next_statement_id(), StatementId(2));
    log.ok(started(0));
    log.ok(complete(0));
    assert_eq!(log.job.state, JobState::Busy);
    log.ok(complete(1));
    assert_eq!(log.job.state, JobState::Idle);
    assert_eq!(
        log.job.statements,
        [StatementState::Available, StatementState::Available]
    );
}

#[test]
fn statements_submitted_while_starting_wait_and_make_the_ready_session_busy() {
    let mut log = Log::submit(session());
    log.ok(submit_sql("SELECT 1"));
    log.ok(schedule());
    assert_eq!(log.job.state, JobState::Starting);
    assert_eq!(log.job.statements, [StatementState::Waiting]);
    log.ok(Command::SessionReady {
        attempt: Attempt(1),
    });
    assert_eq!(log.job.state, JobState::Busy);
    assert_eq!(log.job.idle_since_ms, None);
}

#[test]
fn cancelling_a_statement_goes_through_cancelling_to_cancelled() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT * FROM huge"));
    log.ok(started(0));
    let events = log.ok(Command::CancelStatement {
        statement: StatementId(0),
    });
    assert_eq!(
        events,
        vec![Event::StatementCancelRequested {
            statement: StatementId(0)
        }]
    );
    assert_eq!(log.job.statements, [StatementState::Cancelling]);
    assert_eq!(
        log.job.state,
        JobState::Busy,
        "still running until the driver stops it"
    );
    assert_eq!(
        log.ok(Command::CancelStatement {
            statement: StatementId(0)
        }),
        vec![],
        "a second cancel is a no-op"
    );

    let events = log.ok(Command::CompleteStatement {
        statement: StatementId(0),
        output: ok_output(0),
        cancelled: true,
    });
    assert_eq!(
        events,
        vec![Event::StatementCancelled {
            statement: StatementId(0)
        }]
    );
    assert_eq!(log.job.statements, [StatementState::Cancelled]);
    assert_eq!(log.job.state, JobState::Idle);
}

#[test]
fn cancelling_a_finished_statement_is_refused() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    log.ok(complete(0));
    assert_eq!(
        log.run(Command::CancelStatement {
            statement: StatementId(0)
        }),
        Err(DomainError::StatementIllegal {
            job: JOB,
            statement: StatementId(0),
            state: StatementState::Available,
            action: "cancel",
        })
    );
}

#[test]
fn completing_a_statement_twice_records_it_once() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    log.ok(started(0));
    assert_eq!(log.ok(started(0)), vec![], "a second start is a no-op");
    assert_eq!(log.ok(complete(0)).len(), 1);
    let version = log.job.version;
    assert_eq!(log.ok(complete(0)), vec![]);
    assert_eq!(
        log.ok(Command::CompleteStatement {
            statement: StatementId(0),
            output: ok_output(0),
            cancelled: true,
        }),
        vec![],
        "a late cancel of a completed statement changes nothing"
    );
    assert_eq!(log.job.version, version);
    let completions = log
        .envelopes
        .iter()
        .filter(|e| matches!(e.event, Event::StatementCompleted { .. }))
        .count();
    assert_eq!(completions, 1);
}

#[test]
fn unknown_statements_are_refused() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    for cmd in [
        started(1),
        complete(5),
        Command::CancelStatement {
            statement: StatementId(u64::MAX),
        },
    ] {
        assert!(
            matches!(
                log.run(cmd.clone()),
                Err(DomainError::UnknownStatement { job: JOB, .. })
            ),
            "{cmd:?}"
        );
    }
}

#[test]
fn a_recovering_session_accepts_statements_and_comes_back_busy() {
    let mut log = Log::ready_session();
    log.ok(Command::SessionRecovering {
        attempt: Attempt(1),
        reason: "driver link lost".into(),
    });
    assert_eq!(log.job.state, JobState::Recovering);
    assert_eq!(log.job.reason.as_deref(), Some("driver link lost"));
    assert_eq!(
        log.ok(Command::SessionRecovering {
            attempt: Attempt(1),
            reason: "again".into()
        }),
        vec![]
    );

    log.ok(submit_sql("SELECT 1"));
    assert_eq!(log.job.state, JobState::Recovering);
    log.ok(Command::SessionReady {
        attempt: Attempt(1),
    });
    assert_eq!(log.job.state, JobState::Busy);
    assert_eq!(log.job.reason, None);
}

#[test]
fn statements_on_a_dead_or_killed_session_are_refused() {
    let mut log = Log::ready_session();
    log.ok(finish(1, failed("driver OOM"), Some(137)));
    assert_eq!(
        log.run(submit_sql("SELECT 1")),
        Err(DomainError::SessionNotAccepting {
            job: JOB,
            state: JobState::Dead
        })
    );

    let mut log = Log::ready_session();
    log.ok(kill("stop"));
    assert_eq!(
        log.run(submit_sql("SELECT 1")),
        Err(DomainError::SessionNotAccepting {
            job: JOB,
            state: JobState::ShuttingDown
        })
    );
    log.ok(finish(
        1,
        Outcome::Killed {
            reason: "stop".into(),
        },
        None,
    ));
    assert_eq!(
        log.run(submit_sql("SELECT 1")),
        Err(DomainError::SessionNotAccepting {
            job: JOB,
            state: JobState::Killed
        })
    );
    assert!(log.job.statements.is_empty());
}

#[test]
fn session_commands_on_a_batch_are_refused() {
    let mut log = Log::running_batch();
    for cmd in [
        submit_sql("SELECT 1"),
        Command::Touch,
        Command::SessionReady {
            attempt: Attempt(1),
        },
        Command::SessionRecovering {
            attempt: Attempt(1),
            reason: "x".into(),
        },
    ] {
        assert_eq!(
            log.run(cmd.clone()),
            Err(DomainError::NotASession { job: JOB }),
            "{cmd:?}"
        );
    }
}

#[test]
fn finishing_a_session_ends_its_in_flight_statements_with_an_error() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 0"));
    log.ok(complete(0));
    log.ok(submit_sql("SELECT 1"));
    log.ok(started(1));
    log.ok(submit_sql("SELECT 2"));
    log.ok(submit_sql("SELECT 3"));
    log.ok(Command::CancelStatement {
        statement: StatementId(3),
    });

    let events = log.ok(finish(1, failed("driver OOM"), Some(137)));
    let ended: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::StatementCompleted {
                statement,
                output:
                    StatementOutput::Error {
                        execution_count,
                        ename,
                        evalue,
                        ..
                    },
            } => {
                assert_eq!(ename, "SessionTerminated");
                assert!(evalue.contains("driver OOM"), "{evalue}");
                assert_eq!(*execution_count, statement.0);
                Some(statement.0)
            }
            other => {
                assert!(matches!(other, Event::JobFinished { .. }), "{other:?}");
                None
            }
        })
        .collect();
    assert_eq!(ended, [1, 2, 3], "only statements still in flight");
    assert!(matches!(events.last(), Some(Event::JobFinished { .. })));
    assert_eq!(log.job.state, JobState::Dead);
    assert_eq!(log.job.statements, [StatementState::Available; 4]);
    assert_eq!(log.job.active_statements().count(), 0);
}

#[test]
fn killing_a_not_started_session_ends_its_waiting_statements() {
    let mut log = Log::submit(session());
    log.ok(submit_sql("SELECT 1"));
    let events = log.ok(kill("cancelled by ann"));
    assert_eq!(
        events.iter().map(Event::name).collect::<Vec<_>>(),
        ["KillRequested", "StatementCompleted", "JobFinished"]
    );
    let Event::StatementCompleted {
        output: StatementOutput::Error { evalue, .. },
        ..
    } = &events[1]
    else {
        panic!("{:?}", events[1]);
    };
    assert!(evalue.contains("cancelled by ann"), "{evalue}");
    assert_eq!(log.job.state, JobState::Killed);
    assert_eq!(log.job.statements, [StatementState::Available]);
}

#[test]
fn touch_records_activity_on_a_live_session_only() {
    let mut log = Log::ready_session();
    assert_eq!(log.ok(Command::Touch), vec![Event::SessionActivity]);
    assert_eq!(log.job.last_activity_ms, log.last_at());
    assert_eq!(log.job.state, JobState::Idle);

    log.ok(finish(1, failed("gone"), None));
    assert_eq!(
        log.run(Command::Touch),
        Err(DomainError::JobIllegal {
            job: JOB,
            state: JobState::Dead,
            action: "use",
        })
    );
}

#[test]
fn a_duplicated_statement_submission_does_not_make_an_idle_session_busy() {
    // Two writers racing on the same version could both append statement 0.
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    log.ok(complete(0));
    let before = log.job.clone();
    log.append(Event::StatementSubmitted {
        statement: StatementId(0),
        kind: SessionKind::Sql,
        code: "SELECT 1".into(),
    });
    assert_eq!(log.job.statements, before.statements);
    assert_eq!(
        log.job.state,
        JobState::Idle,
        "busy with no statement in flight"
    );
    assert_eq!(log.job.idle_since_ms, before.idle_since_ms);
}
