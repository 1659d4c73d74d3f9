//! Properties of the job aggregate under random command sequences: whatever `decide` accepts
//! is appended and applied, and the invariants below must hold after every event. The state
//! only moves along the legal moves, terminal states absorb, statements are dense and only move
//! forward, a session is busy exactly when it is ready with work, retried commands are no-ops,
//! and the log replays to the same job however often it is applied. A batch with a restart
//! policy is launched at most as often as the policy allows, never again once killed, and
//! its state never goes back while it is retried.

use kindling_events::job::Applied;
use kindling_events::{
    Aggregate, Attempt, BatchSpec, Command, Envelope, Event, Job, JobId, JobKind, JobSpec,
    JobState, LogPosition, NewEvent, NodeId, Origin, Outcome, SessionKind, SessionSpec,
    SparkResources, Statement, StatementId, StatementOutput, StatementState, Term,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const JOB: JobId = JobId(3);

/// A batch retried up to `attempts` in all, with no wait between attempts.
fn retried_spec(attempts: u32) -> JobSpec {
    let mut spec = spec(false);
    let conf = &mut spec.resources.conf;
    conf.insert("kindling.restart.policy".into(), "onFailure".into());
    conf.insert("kindling.restart.maxAttempts".into(), attempts.to_string());
    conf.insert("kindling.restart.backoff".into(), "0s".into());
    spec
}

fn spec(session: bool) -> JobSpec {
    let kind = if session {
        JobKind::Session(SessionSpec {
            kind: SessionKind::Pyspark,
            heartbeat_timeout_secs: 60,
            ttl: None,
            idle_timeout: None,
        })
    } else {
        JobKind::Batch(BatchSpec {
            file: "s3a://jobs/pi.py".into(),
            class_name: None,
            args: vec![],
        })
    };
    JobSpec {
        kind,
        name: None,
        owner: None,
        proxy_user: None,
        resources: SparkResources::default(),
    }
}

// ---- generators ----------------------------------------------------------------------------

/// Mostly the first attempt, often a later one (a retried batch's), sometimes a stale one.
fn attempt() -> impl Strategy<Value = Attempt> {
    prop_oneof![3 => Just(Attempt(1)), 2 => (0u32..5).prop_map(Attempt)]
}

fn statement() -> impl Strategy<Value = StatementId> {
    (0u64..5).prop_map(StatementId)
}

fn reason() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["exit 1", "evicted", "stopped by ann"]).prop_map(String::from)
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Succeeded),
        reason().prop_map(|reason| Outcome::Failed { reason }),
        reason().prop_map(|reason| Outcome::Killed { reason }),
        reason().prop_map(|reason| Outcome::Error { reason }),
    ]
}

fn output() -> impl Strategy<Value = StatementOutput> {
    prop_oneof![
        (0u64..5).prop_map(|n| StatementOutput::Ok {
            execution_count: n,
            data_json: format!(r#"{{"text/plain":"{n}"}}"#),
        }),
        (0u64..5).prop_map(|n| StatementOutput::Error {
            execution_count: n,
            ename: "ValueError".into(),
            evalue: "bad".into(),
            traceback: vec![],
        }),
    ]
}

/// Commands weighted so that a sequence usually gets a session to run statements before
/// something ends it.
fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => Just(Command::Schedule {
            driver_name: "kindling-3-1".into(),
            secret_digest: "ab".into(),
        }),
        2 => (attempt(), prop::sample::select(vec!["pod-a", "pod-b"])).prop_map(
            |(attempt, id)| Command::DriverLaunched { attempt, driver_id: id.into() }
        ),
        1 => (attempt(), prop::sample::select(vec!["app-1", "app-2"]), any::<bool>()).prop_map(
            |(attempt, app, ui)| Command::AppIdentified {
                attempt,
                app_id: app.into(),
                spark_ui_url: ui.then(|| "http://driver:4040".into()),
            }
        ),
        3 => attempt().prop_map(|attempt| Command::SessionReady { attempt }),
        1 => (attempt(), reason())
            .prop_map(|(attempt, reason)| Command::SessionRecovering { attempt, reason }),
        1 => reason().prop_map(|reason| Command::Kill { reason }),
        1 => Just(Command::Delete),
        1 => (attempt(), outcome(), prop::option::of(-9i32..2)).prop_map(
            |(attempt, outcome, exit_code)| Command::Finish { attempt, outcome, exit_code }
        ),
        5 => prop::sample::select(SessionKind::ALL.to_vec())
            .prop_map(|kind| Command::SubmitStatement { kind, code: "1 + 1".into() }),
        4 => statement().prop_map(|statement| Command::StatementStarted { statement }),
        4 => (statement(), output(), prop::bool::weighted(0.2)).prop_map(
            |(statement, output, cancelled)| Command::CompleteStatement {
                statement,
                output,
                cancelled,
            }
        ),
        2 => statement().prop_map(|statement| Command::CancelStatement { statement }),
        1 => Just(Command::Touch),
        1 => prop::sample::select(vec!["cluster 'a' is full", "cluster 'a' has no free cores"])
            .prop_map(|reason| Command::Queue { reason: reason.into() }),
    ]
}

/// One step of a history: a command, and whether a new scheduler leader took over before it.
fn steps() -> impl Strategy<Value = Vec<(Command, bool)>> {
    prop::collection::vec((command(), prop::bool::weighted(0.1)), 0..60)
}

// ---- running a history ---------------------------------------------------------------------

struct History {
    job: Job,
    log: Vec<Envelope>,
    term: Term,
}

impl History {
    fn submit(session: bool) -> History {
        History::submit_spec(spec(session))
    }

    fn submit_spec(spec: JobSpec) -> History {
        let first = Envelope::new(
            LogPosition(1),
            NewEvent {
                aggregate: Aggregate::Job(JOB),
                version: 1,
                origin: Origin::Api,
                node: NodeId(1),
                actor: None,
                at_ms: 1_000,
                event: Job::submit(spec).remove(0),
            },
        );
        History {
            job: Job::created(&first).expect("JobSubmitted creates a job"),
            log: vec![first],
            term: Term(1),
        }
    }

    fn envelope(&self, event: Event, origin: Origin) -> Envelope {
        let position = self.log.last().unwrap().position.next();
        Envelope::new(
            position,
            NewEvent {
                aggregate: Aggregate::Job(JOB),
                version: self.job.version + 1,
                origin,
                node: NodeId(1),
                actor: None,
                at_ms: 1_000 * position.0 as i64,
                event,
            },
        )
    }

    fn origin_of(&self, event: &Event) -> Origin {
        match event {
            Event::JobScheduled { .. }
            | Event::DriverLaunched { .. }
            | Event::SessionRecovering { .. }
            | Event::JobFinished { .. }
            | Event::AttemptFailed { .. }
            | Event::JobQueued { .. } => Origin::Scheduler { term: self.term },
            Event::SessionReady { .. } | Event::StatementStarted { .. } => Origin::Driver,
            _ => Origin::Api,
        }
    }

    /// Decides `cmd`, appends and applies what it decided, checking every event's effect.
    fn step(&mut self, cmd: &Command) -> Result<(), TestCaseError> {
        let Ok(events) = self.job.decide(cmd.clone()) else {
            return Ok(()); // refused: nothing happens, which decide's `&self` guarantees
        };
        for event in events {
            let env = self.envelope(event.clone(), self.origin_of(&event));
            let before = self.job.clone();
            prop_assert_eq!(self.job.apply(&env), Applied::Yes, "{:?}", event);
            check_event(&before, &self.job, &env)?;
            self.log.push(env);
        }
        if is_retried_by_callers(cmd) {
            prop_assert_eq!(
                self.job.decide(cmd.clone()),
                Ok(vec![]),
                "retrying {:?} in {} decided again",
                cmd,
                self.job.state
            );
        }
        Ok(())
    }
}

/// Commands that drivers, trackers and clients retry after a timeout: a retry must decide
/// nothing once the first attempt's events are applied.
fn is_retried_by_callers(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Schedule { .. } | Command::SubmitStatement { .. } | Command::Touch
    )
}

fn can_move(job: &Job, from: JobState, to: JobState) -> bool {
    if job.is_session() {
        from.session_can_move_to(to)
    } else {
        from.batch_can_move_to(to)
    }
}

/// What must hold across one applied event.
fn check_event(before: &Job, after: &Job, env: &Envelope) -> Result<(), TestCaseError> {
    let event = &env.event;
    prop_assert!(
        after.state == before.state || can_move(after, before.state, after.state),
        "{:?} moved {} -> {}",
        event,
        before.state,
        after.state
    );
    if before.state.is_terminal() {
        prop_assert_eq!(
            after.state,
            before.state,
            "left a terminal state on {:?}",
            event
        );
    }
    prop_assert_eq!(after.version, before.version + 1);
    prop_assert_eq!(after.applied, env.position);

    // Statements: appended one at a time with the next id, and each only moves forward.
    let grown = after.statements.len() - before.statements.len();
    match event {
        Event::StatementSubmitted { statement, .. } => {
            prop_assert_eq!(*statement, before.next_statement_id());
            prop_assert_eq!(grown, 1);
        }
        _ => prop_assert_eq!(grown, 0, "{:?} added a statement", event),
    }
    for (i, (was, now)) in before.statements.iter().zip(&after.statements).enumerate() {
        prop_assert!(
            was == now || was.can_move_to(*now),
            "statement {} moved {} -> {} on {:?}",
            i,
            was,
            now,
            event
        );
    }
    if let Some(new) = after.statements.get(before.statements.len()) {
        prop_assert_eq!(*new, StatementState::Waiting);
    }
    // Why a job waits is shown only while it waits, and goes once it is scheduled.
    if let Event::JobQueued { reason } = event {
        prop_assert!(before.waits_for_driver(), "queued in {}", before.state);
        prop_assert_eq!(after.reason.as_deref(), Some(reason.as_str()));
    }
    if matches!(event, Event::JobScheduled { .. }) {
        prop_assert_eq!(
            &after.reason,
            &None,
            "scheduled but still shows why it waited"
        );
    }

    check_job(after)
}

/// What must hold of any job.
fn check_job(job: &Job) -> Result<(), TestCaseError> {
    if job.is_session() {
        let ready = matches!(job.state, JobState::Idle | JobState::Busy);
        let working = job.active_statements().next().is_some();
        prop_assert_eq!(
            job.state == JobState::Busy,
            ready && working,
            "session {} with statements {:?}",
            job.state,
            &job.statements
        );
    } else {
        prop_assert!(job.statements.is_empty(), "a batch with statements");
    }
    if job.state == JobState::NotStarted && job.retry_at_ms.is_none() {
        prop_assert_eq!(job.attempt, Attempt(0));
        prop_assert!(
            job.driver_id.is_none() && job.app_id.is_none() && job.started_at_ms.is_none(),
            "a job that never started shows a driver: {:?}",
            job
        );
    }
    if job.retry_at_ms.is_some() {
        // A retry waits with the state the job had: under way, never back to waiting.
        prop_assert!(
            matches!(job.state, JobState::Starting | JobState::Running),
            "a retry waits in {}",
            job.state
        );
        prop_assert!(job.driver_id.is_none() && job.app_id.is_none(), "{:?}", job);
        prop_assert_eq!(job.retried.last().map(|a| a.attempt), Some(job.attempt));
    }
    prop_assert_eq!(
        job.retried.len(),
        job.retried
            .iter()
            .map(|a| a.attempt)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    if job.state.is_terminal() {
        prop_assert_eq!(job.active_statements().count(), 0, "{:?}", &job.statements);
        prop_assert!(job.finished_at_ms.is_some());
    }
    Ok(())
}

fn run(session: bool, steps: &[(Command, bool)]) -> Result<History, TestCaseError> {
    run_from(History::submit(session), steps)
}

fn run_from(mut history: History, steps: &[(Command, bool)]) -> Result<History, TestCaseError> {
    check_job(&history.job)?;
    for (cmd, new_leader) in steps {
        if *new_leader {
            history.term = Term(history.term.0 + 1);
        }
        history.step(cmd)?;
    }
    Ok(history)
}

fn replay(log: &[Envelope]) -> Job {
    let mut job = Job::created(&log[0]).expect("the log starts with JobSubmitted");
    for env in &log[1..] {
        assert_eq!(job.apply(env), Applied::Yes, "{env:?}");
    }
    job
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_keeps_the_invariants(session in any::<bool>(), steps in steps()) {
        run(session, &steps)?;
    }

    #[test]
    fn a_retried_batch_gets_the_attempts_its_policy_allows_and_no_more(
        attempts in 1u32..5,
        steps in steps(),
    ) {
        let h = run_from(History::submit_spec(retried_spec(attempts)), &steps)?;
        let mut killed = false;
        let (mut launches, mut failures) = (0u32, 0u32);
        for env in &h.log {
            match &env.event {
                Event::KillRequested { .. } => killed = true,
                Event::JobScheduled { attempt, .. } => {
                    launches += 1;
                    prop_assert_eq!(attempt.0, launches, "attempts are launched in order");
                }
                Event::AttemptFailed { attempt, outcome, .. } => {
                    failures += 1;
                    prop_assert!(!killed, "retried after a kill");
                    prop_assert_eq!(attempt.0, launches, "only the last attempt fails");
                    let counts = matches!(outcome, Outcome::Failed { .. } | Outcome::Error { .. });
                    prop_assert!(counts, "{:?} retried", outcome);
                }
                _ => {}
            }
        }
        prop_assert!(launches <= attempts, "{} launches under a policy of {}", launches, attempts);
        prop_assert!(failures < attempts);
        prop_assert_eq!(h.job.retried.len() as u32, failures);
        // A failure ends a launched job only once its attempts are used up (or it was
        // killed): any earlier one is retried.
        let ended_by = h.log.iter().rev().find_map(|e| match &e.event {
            Event::JobFinished { outcome, .. } => Some(outcome.clone()),
            _ => None,
        });
        if let Some(Outcome::Failed { .. } | Outcome::Error { .. }) = ended_by {
            if !killed && launches >= 1 {
                prop_assert_eq!(launches, attempts, "a failure ended the job early");
            }
        }
    }

    #[test]
    fn version_counts_the_applied_events(session in any::<bool>(), steps in steps()) {
        let h = run(session, &steps)?;
        prop_assert_eq!(h.job.version, h.log.len() as u64);
        prop_assert_eq!(h.job.applied, h.log.last().unwrap().position);
    }

    #[test]
    fn statement_ids_are_dense(session in any::<bool>(), steps in steps()) {
        let h = run(session, &steps)?;
        let submitted: Vec<u64> = h
            .log
            .iter()
            .filter_map(|e| match e.event {
                Event::StatementSubmitted { statement, .. } => Some(statement.0),
                _ => None,
            })
            .collect();
        prop_assert_eq!(&submitted, &(0..submitted.len() as u64).collect::<Vec<_>>());
        prop_assert_eq!(h.job.statements.len(), submitted.len());
    }

    #[test]
    fn replaying_the_log_yields_the_same_job(session in any::<bool>(), steps in steps()) {
        let h = run(session, &steps)?;
        prop_assert_eq!(replay(&h.log), h.job);
    }

    #[test]
    fn reapplying_a_prefix_is_a_no_op(
        session in any::<bool>(),
        steps in steps(),
        cut in any::<prop::sample::Index>(),
    ) {
        let h = run(session, &steps)?;
        let k = cut.index(h.log.len()) + 1;
        // A projection that stopped after k events and then sees the log again from the start.
        let mut job = replay(&h.log[..k]);
        let at_k = job.clone();
        for env in &h.log[..k] {
            prop_assert_eq!(job.apply(env), Applied::AlreadyApplied);
        }
        prop_assert_eq!(&job, &at_k);
        for env in &h.log[k..] {
            prop_assert_eq!(job.apply(env), Applied::Yes);
        }
        prop_assert_eq!(&job, &h.job);
        // And the finished job ignores the whole log.
        for env in &h.log {
            prop_assert_eq!(job.apply(env), Applied::AlreadyApplied);
        }
        prop_assert_eq!(job, h.job);
    }

    #[test]
    fn terminal_states_absorb_any_further_command(
        session in any::<bool>(),
        steps in steps(),
        more in prop::collection::vec(command(), 1..20),
    ) {
        let mut h = run(session, &steps)?;
        // End the job the way a client and the driver tracker would: a kill, then the exit.
        h.step(&Command::Kill { reason: "stop".into() })?;
        let attempt = h.job.attempt;
        h.step(&Command::Finish {
            attempt,
            outcome: Outcome::Killed { reason: "stopped".into() },
            exit_code: None,
        })?;
        let terminal = h.job.state;
        prop_assert!(terminal.is_terminal(), "kill and exit left it {}", terminal);
        for cmd in &more {
            h.step(cmd)?;
            prop_assert_eq!(h.job.state, terminal, "after {:?}", cmd);
        }
    }

    #[test]
    fn an_older_terms_scheduler_event_is_fenced(
        session in any::<bool>(),
        steps in steps(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut h = run(session, &steps)?;
        if h.job.max_term == Term(0) {
            // No scheduler event yet: the current leader writes a marker.
            let marker = Event::SchedulerMarker { nonce: 1 };
            let env = h.envelope(marker, Origin::Scheduler { term: h.term });
            prop_assert_eq!(h.job.apply(&env), Applied::Yes);
            h.log.push(env);
        }
        let event = h.log[pick.index(h.log.len())].event.clone();
        let stale = h.envelope(event, Origin::Scheduler { term: Term(h.job.max_term.0 - 1) });
        let mut expected = h.job.clone();
        expected.applied = stale.position;
        prop_assert_eq!(h.job.apply(&stale), Applied::Fenced);
        prop_assert_eq!(&h.job, &expected);
    }

    #[test]
    fn statement_documents_agree_with_the_job(steps in steps()) {
        let h = run(true, &steps)?;
        let mut docs: BTreeMap<StatementId, Option<Statement>> = BTreeMap::new();
        for env in &h.log {
            if let Some(id) = env.event.statement() {
                prop_assert!(Statement::apply(docs.entry(id).or_default(), env));
            }
        }
        prop_assert_eq!(docs.len(), h.job.statements.len());
        for (id, doc) in docs {
            let doc = doc.expect("a submitted statement has a document");
            prop_assert_eq!(doc.state, h.job.statements[id.0 as usize], "statement {}", id);
            prop_assert_eq!(doc.output.is_some(), doc.state == StatementState::Available);
        }
    }
}

/// The generators must reach the interesting states, or the properties prove little.
#[test]
fn generated_histories_reach_every_session_state() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let steps = steps().new_tree(&mut runner).unwrap().current();
        let mut h = History::submit(true);
        seen.insert(h.job.state.as_str());
        for (cmd, _) in &steps {
            h.step(cmd).unwrap();
            seen.insert(h.job.state.as_str());
        }
    }
    for state in JobState::ALL {
        assert!(
            seen.contains(state.as_str()) || state == JobState::Running,
            "no generated session reached {state}; seen {seen:?}"
        );
    }
}
