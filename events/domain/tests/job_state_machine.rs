//! The job aggregate through realistic histories: commands go through `Job::decide`, the
//! events it returns are appended at increasing log positions and folded in with `Job::apply`.
//! Covers batch and session lifecycles, statements, kills and deletes, idempotent retries,
//! stale attempts, scheduler-term fencing and replay; and `Statement::apply` on the same logs.

use kindling_events::job::Applied;
use kindling_events::spec::DurationSpec;
use kindling_events::{
    Aggregate, Attempt, BatchSpec, Command, DomainError, Envelope, Event, Job, JobId, JobKind,
    JobSpec, JobState, LogPosition, NewEvent, NodeId, Origin, Outcome, SessionKind, SessionSpec,
    SparkResources, Statement, StatementId, StatementOutput, StatementState, Term,
};
use std::collections::BTreeMap;

#[path = "job_state_machine/batch.rs"]
mod batch;
#[path = "job_state_machine/replay.rs"]
mod replay;
#[path = "job_state_machine/session.rs"]
mod session;

const JOB: JobId = JobId(7);
const T0: i64 = 1_732_183_200_000;

fn batch() -> JobSpec {
    JobSpec {
        kind: JobKind::Batch(BatchSpec {
            file: "s3a://analytics/jobs/rollup.py".into(),
            class_name: None,
            args: vec!["--date".into(), "2024-11-20".into()],
        }),
        name: Some("rollup".into()),
        owner: Some("ann".into()),
        proxy_user: None,
        resources: SparkResources::default(),
    }
}

fn session() -> JobSpec {
    JobSpec {
        kind: JobKind::Session(SessionSpec {
            kind: SessionKind::Pyspark,
            heartbeat_timeout_secs: 60,
            ttl: None,
            idle_timeout: Some(DurationSpec {
                text: "15m".into(),
                millis: 900_000,
            }),
        }),
        name: None,
        owner: Some("ann".into()),
        proxy_user: None,
        resources: SparkResources::default(),
    }
}

/// One job's log: what was appended, and the job folded from it.
struct Log {
    job: Job,
    envelopes: Vec<Envelope>,
    /// The term of the scheduler that writes scheduler events from now on.
    term: Term,
}

impl Log {
    fn submit(spec: JobSpec) -> Log {
        let first = Envelope::new(
            LogPosition(1),
            NewEvent {
                aggregate: Aggregate::Job(JOB),
                version: 1,
                origin: Origin::Api,
                node: NodeId(1),
                actor: None,
                at_ms: T0,
                event: Job::submit(spec).remove(0),
            },
        );
        let job = Job::created(&first).expect("a JobSubmitted envelope creates a job");
        Log {
            job,
            envelopes: vec![first],
            term: Term(1),
        }
    }

    /// The envelope `event` gets when appended now, written by whoever writes such events.
    fn next_envelope(&self, event: Event) -> Envelope {
        let origin = match event {
            Event::JobScheduled { .. }
            | Event::DriverLaunched { .. }
            | Event::SessionRecovering { .. }
            | Event::JobFinished { .. } => Origin::Scheduler { term: self.term },
            Event::AppIdentified { .. }
            | Event::SessionReady { .. }
            | Event::StatementStarted { .. }
            | Event::StatementCompleted { .. }
            | Event::StatementCancelled { .. } => Origin::Driver,
            _ => Origin::Api,
        };
        let position = self.envelopes.last().unwrap().position.next();
        Envelope::new(
            position,
            NewEvent {
                aggregate: Aggregate::Job(JOB),
                version: self.job.version + 1,
                origin,
                node: NodeId(2),
                actor: None,
                at_ms: T0 + position.0 as i64 * 1_000,
                event,
            },
        )
    }

    /// Appends an event as a fact, whoever decided it, and applies it.
    fn append(&mut self, event: Event) -> Applied {
        let env = self.next_envelope(event);
        let applied = self.job.apply(&env);
        self.envelopes.push(env);
        applied
    }

    /// Decides `cmd` and appends whatever it decided.
    fn run(&mut self, cmd: Command) -> Result<Vec<Event>, DomainError> {
        let events = self.job.decide(cmd)?;
        for event in &events {
            let applied = self.append(event.clone());
            assert_eq!(applied, Applied::Yes, "{event:?}");
        }
        Ok(events)
    }

    fn ok(&mut self, cmd: Command) -> Vec<Event> {
        let shown = format!("{cmd:?}");
        self.run(cmd)
            .unwrap_or_else(|e| panic!("{shown} refused in {}: {e}", self.job.state))
    }

    fn last_at(&self) -> i64 {
        self.envelopes.last().unwrap().at_ms
    }

    /// A session that registered its driver and is idle.
    fn ready_session() -> Log {
        let mut log = Log::submit(session());
        log.ok(schedule());
        log.ok(launched(1));
        log.ok(Command::SessionReady {
            attempt: Attempt(1),
        });
        assert_eq!(log.job.state, JobState::Idle);
        log
    }

    /// A batch whose driver runs.
    fn running_batch() -> Log {
        let mut log = Log::submit(batch());
        log.ok(schedule());
        log.ok(launched(1));
        assert_eq!(log.job.state, JobState::Running);
        log
    }
}

fn schedule() -> Command {
    Command::Schedule {
        driver_name: "kindling-7-1".into(),
        secret_digest: "5e884898da28047151d0e56f8dc62927".into(),
    }
}

fn launched(attempt: u32) -> Command {
    Command::DriverLaunched {
        attempt: Attempt(attempt),
        driver_id: format!("spark-jobs/kindling-7-{attempt}-driver"),
    }
}

fn finish(attempt: u32, outcome: Outcome, exit_code: Option<i32>) -> Command {
    Command::Finish {
        attempt: Attempt(attempt),
        outcome,
        exit_code,
    }
}

fn failed(reason: &str) -> Outcome {
    Outcome::Failed {
        reason: reason.into(),
    }
}

fn kill(reason: &str) -> Command {
    Command::Kill {
        reason: reason.into(),
    }
}

fn submit_sql(code: &str) -> Command {
    Command::SubmitStatement {
        kind: SessionKind::Sql,
        code: code.into(),
    }
}

fn ok_output(n: u64) -> StatementOutput {
    StatementOutput::Ok {
        execution_count: n,
        data_json: format!(r#"{{"text/plain":"{n}"}}"#),
    }
}

fn complete(statement: u64) -> Command {
    Command::CompleteStatement {
        statement: StatementId(statement),
        output: ok_output(statement),
        cancelled: false,
    }
}

fn started(statement: u64) -> Command {
    Command::StatementStarted {
        statement: StatementId(statement),
    }
}
