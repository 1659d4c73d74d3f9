//! The log side: scheduler-term fencing, idempotent apply, replay, job creation, and the
//! statement documents a projection folds from the same log.

use super::*;

#[test]
fn scheduler_events_of_an_older_term_are_fenced() {
    let mut log = Log::submit(batch());
    log.term = Term(2);
    log.ok(schedule());
    assert_eq!(log.job.max_term, Term(2));

    let before = log.job.clone();
    log.term = Term(1); // a deposed leader still writing
    let applied = log.append(Event::JobFinished {
        attempt: Attempt(1),
        outcome: failed("deposed leader thinks it died"),
        exit_code: Some(1),
    });
    assert_eq!(applied, Applied::Fenced);
    let fenced_at = log.envelopes.last().unwrap().position;
    let mut expected = before;
    expected.applied = fenced_at;
    assert_eq!(
        log.job, expected,
        "a fenced event changes nothing but `applied`"
    );

    let fenced = log.envelopes.last().unwrap().clone();
    assert_eq!(log.job.apply(&fenced), Applied::AlreadyApplied);

    // Events of other writers are never fenced; the current term's scheduler still is heard.
    assert_eq!(log.append(Event::SessionActivity), Applied::Yes);
    log.term = Term(2);
    assert_eq!(
        log.append(log.job.decide(launched(1)).unwrap().remove(0)),
        Applied::Yes
    );
    assert_eq!(log.job.state, JobState::Running);

    log.term = Term(3);
    log.ok(finish(1, Outcome::Succeeded, Some(0)));
    assert_eq!(log.job.max_term, Term(3));
}

#[test]
fn applying_the_same_envelope_twice_is_a_no_op() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    let last = log.envelopes.last().unwrap().clone();
    let before = log.job.clone();
    assert_eq!(log.job.apply(&last), Applied::AlreadyApplied);
    assert_eq!(log.job, before);

    for env in log.envelopes.clone() {
        assert_eq!(log.job.apply(&env), Applied::AlreadyApplied, "{env:?}");
    }
    assert_eq!(log.job, before);
}

#[test]
fn replaying_the_log_rebuilds_the_same_job() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 1"));
    log.ok(started(0));
    log.ok(Command::Touch);
    log.ok(submit_sql("SELECT 2"));
    log.ok(Command::Delete);
    log.ok(finish(
        1,
        Outcome::Killed {
            reason: "deleted".into(),
        },
        None,
    ));

    let mut replayed = Job::created(&log.envelopes[0]).unwrap();
    for env in &log.envelopes[1..] {
        assert_eq!(replayed.apply(env), Applied::Yes);
    }
    assert_eq!(replayed, log.job);
    assert_eq!(replayed.version, log.envelopes.len() as u64);
}

#[test]
fn only_a_job_submitted_envelope_creates_a_job() {
    let log = Log::submit(batch());
    let first = &log.envelopes[0];
    assert_eq!(log.job.applied, first.position);
    assert_eq!(log.job.last_activity_ms, first.at_ms);

    let mut on_cluster = first.clone();
    on_cluster.aggregate = Aggregate::Cluster;
    assert_eq!(Job::created(&on_cluster), None);

    let not_a_submission = log.next_envelope(Event::SessionActivity);
    assert_eq!(Job::created(&not_a_submission), None);
}

// ---- statement documents -------------------------------------------------------------------

/// Folds a job's log into statement documents, as a projection does.
fn statement_docs(envelopes: &[Envelope]) -> BTreeMap<StatementId, Option<Statement>> {
    let mut docs: BTreeMap<StatementId, Option<Statement>> = BTreeMap::new();
    for env in envelopes {
        if let Some(id) = env.event.statement() {
            let doc = docs.entry(id).or_default();
            assert!(Statement::apply(doc, env), "{env:?} not applied");
        }
    }
    docs
}

#[test]
fn a_statement_document_follows_its_events() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 42"));
    let submitted = log.envelopes.last().unwrap().clone();
    let mut doc = None;
    assert!(Statement::apply(&mut doc, &submitted));
    let d = doc.clone().unwrap();
    assert_eq!((d.job, d.id), (JOB, StatementId(0)));
    assert_eq!((d.kind, d.code.as_str()), (SessionKind::Sql, "SELECT 42"));
    assert_eq!(d.state, StatementState::Waiting);
    assert_eq!(d.submitted_at_ms, submitted.at_ms);
    assert_eq!(d.progress(), 0.0);

    log.ok(started(0));
    let start = log.envelopes.last().unwrap().clone();
    assert!(Statement::apply(&mut doc, &start));
    assert_eq!(doc.as_ref().unwrap().state, StatementState::Running);
    assert_eq!(doc.as_ref().unwrap().started_at_ms, Some(start.at_ms));

    log.ok(complete(0));
    let done = log.envelopes.last().unwrap().clone();
    assert!(Statement::apply(&mut doc, &done));
    let d = doc.clone().unwrap();
    assert_eq!(d.state, StatementState::Available);
    assert_eq!(d.output, Some(ok_output(0)));
    assert_eq!(d.completed_at_ms, Some(done.at_ms));
    assert_eq!(d.applied, done.position);
    assert_eq!(d.progress(), 1.0);

    for env in [&submitted, &start, &done] {
        assert!(!Statement::apply(&mut doc, env), "re-applied {env:?}");
    }
    assert_eq!(doc, Some(d));
}

#[test]
fn statement_documents_ignore_what_is_not_theirs() {
    let log = Log::ready_session();
    let mut doc = None;
    let started_first = log.next_envelope(Event::StatementStarted {
        statement: StatementId(0),
    });
    assert!(!Statement::apply(&mut doc, &started_first));
    assert_eq!(doc, None, "only a submission creates a document");

    let not_a_statement = log.next_envelope(Event::SessionActivity);
    assert!(!Statement::apply(&mut doc, &not_a_statement));

    let mut on_cluster = log.next_envelope(Event::StatementSubmitted {
        statement: StatementId(0),
        kind: SessionKind::Pyspark,
        code: "1 + 1".into(),
    });
    on_cluster.aggregate = Aggregate::Cluster;
    assert!(!Statement::apply(&mut doc, &on_cluster));
    assert_eq!(doc, None);
}

#[test]
fn a_cancelled_statement_document_keeps_no_output_from_a_late_completion() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT * FROM huge"));
    log.ok(Command::CancelStatement {
        statement: StatementId(0),
    });
    log.ok(Command::CompleteStatement {
        statement: StatementId(0),
        output: ok_output(0),
        cancelled: true,
    });
    let mut docs = statement_docs(&log.envelopes);
    let doc = docs.get_mut(&StatementId(0)).unwrap();
    assert_eq!(doc.as_ref().unwrap().state, StatementState::Cancelled);
    assert_eq!(doc.as_ref().unwrap().output, None);
    let cancelled = doc.clone();

    // A completion appended by a racing writer after the cancel.
    let late = log.next_envelope(Event::StatementCompleted {
        statement: StatementId(0),
        output: ok_output(0),
    });
    Statement::apply(doc, &late);
    let d = doc.as_ref().unwrap();
    assert_eq!(d.state, StatementState::Cancelled);
    assert_eq!(d.output, None, "a cancelled statement shows an output");
    assert_eq!(d.completed_at_ms, cancelled.unwrap().completed_at_ms);
}

#[test]
fn statement_documents_agree_with_the_job() {
    let mut log = Log::ready_session();
    log.ok(submit_sql("SELECT 0"));
    log.ok(started(0));
    log.ok(complete(0));
    log.ok(submit_sql("SELECT 1"));
    log.ok(Command::CancelStatement {
        statement: StatementId(1),
    });
    log.ok(Command::CompleteStatement {
        statement: StatementId(1),
        output: ok_output(1),
        cancelled: true,
    });
    log.ok(submit_sql("SELECT 2"));
    log.ok(started(2));
    log.ok(finish(1, failed("driver lost"), None));

    let docs = statement_docs(&log.envelopes);
    assert_eq!(docs.len(), log.job.statements.len());
    for (id, doc) in docs {
        let doc = doc.unwrap();
        assert_eq!(
            doc.state, log.job.statements[id.0 as usize],
            "statement {id}"
        );
    }
    assert_eq!(
        log.job.statements,
        [
            StatementState::Available,
            StatementState::Cancelled,
            StatementState::Available
        ]
    );
}
