//! The MongoDB adapter against a real wire-protocol server (nx-27017, installed by
//! `ops/dev/install-mongo`), which each test starts on a free port with its own data
//! directory: the shared conformance suite, a restart of the server, racing projectors, and
//! the server behaviours the adapter relies on or avoids.

mod server;

mod conformance;
mod race;
mod restart;
mod throughput;
mod wire_semantics;

use kindling_store_mongo::{MongoConfig, MongoProjections};
use server::NxServer;
use std::time::{SystemTime, UNIX_EPOCH};

/// A server of one test, with the directory it lives in.
pub struct Nx {
    pub server: NxServer,
    pub dir: tempfile::TempDir,
}

impl Nx {
    pub async fn start() -> Nx {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let server = NxServer::start(dir.path()).await;
        Nx { server, dir }
    }

    pub fn config(&self, database: &str) -> MongoConfig {
        MongoConfig {
            uri: self.server.uri(),
            database: database.to_string(),
            password: None,
        }
    }

    pub async fn open(&self, database: &str) -> MongoProjections {
        MongoProjections::open(&self.config(database))
            .await
            .unwrap_or_else(|e| panic!("open {database}: {e}"))
    }
}

/// A database name prefix unique to this test run.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("k{}_{}", std::process::id(), nanos % 1_000_000_000)
}

use kindling_events::{
    Attempt, Envelope, Event, LogPosition, Origin, Outcome, SessionKind, StatementId,
    StatementOutput, Term,
};
use kindling_events::{Job, Statement};
use kindling_store::conformance::{batch_spec, new_event, session_spec};
use kindling_store::{JobQuery, ProjectionStore};

/// A log: `batches` batch jobs of four events each (submitted, scheduled, launched, finished),
/// sixteen at a time so that their events interleave as on a busy cluster; then, if `long` is
/// not 0, one session (the last job id) with `long` more events (activity and statements,
/// enough for history chunks) and a scheduler event of a deposed leader that must be fenced.
pub fn workload(batches: u64, long: u64) -> Vec<Envelope> {
    let sched = |term| Origin::Scheduler { term: Term(term) };
    let mut events = Vec::new();
    for group in (1..=batches).collect::<Vec<_>>().chunks(16) {
        for step in 1..=4u64 {
            for &job in group {
                let attempt = Attempt(1);
                let event = match step {
                    1 => Event::JobSubmitted {
                        spec: batch_spec(Some(if job % 2 == 0 { "ann" } else { "bob" })),
                    },
                    2 => Event::JobScheduled {
                        attempt,
                        driver_name: format!("kindling-{job}-1"),
                        secret_digest: String::new(),
                    },
                    3 => Event::DriverLaunched {
                        attempt,
                        driver_id: format!("local:{job}"),
                    },
                    _ => Event::JobFinished {
                        attempt,
                        outcome: Outcome::Succeeded,
                        exit_code: Some(0),
                    },
                };
                let origin = if step == 1 { Origin::Api } else { sched(1) };
                events.push(new_event(job, step, origin, event));
            }
        }
    }
    if long > 0 {
        let job = batches + 1;
        let attempt = Attempt(1);
        let mut version = 0;
        let mut push = |origin, event| {
            version += 1;
            events.push(new_event(job, version, origin, event));
        };
        push(
            Origin::Api,
            Event::JobSubmitted {
                spec: session_spec(Some("cat")),
            },
        );
        push(
            sched(2),
            Event::JobScheduled {
                attempt,
                driver_name: format!("kindling-{job}-1"),
                secret_digest: "digest".into(),
            },
        );
        push(
            sched(2),
            Event::DriverLaunched {
                attempt,
                driver_id: "local:s".into(),
            },
        );
        push(Origin::Driver, Event::SessionReady { attempt });
        let mut statement = 0;
        for i in 0..long {
            if i % 10 == 0 {
                let s = StatementId(statement);
                statement += 1;
                push(
                    Origin::Api,
                    Event::StatementSubmitted {
                        statement: s,
                        kind: SessionKind::Sql,
                        code: format!("select {i}"),
                    },
                );
                push(Origin::Driver, Event::StatementStarted { statement: s });
                push(
                    Origin::Driver,
                    Event::StatementCompleted {
                        statement: s,
                        output: StatementOutput::Ok {
                            execution_count: s.0,
                            data_json: format!(r#"{{"text/plain":"{i}"}}"#),
                        },
                    },
                );
            } else if i == long / 2 {
                // A deposed leader's write, after the current leader's: fenced.
                push(
                    sched(1),
                    Event::JobFinished {
                        attempt,
                        outcome: Outcome::Failed {
                            reason: "deposed".into(),
                        },
                        exit_code: Some(1),
                    },
                );
            } else {
                push(Origin::Api, Event::SessionActivity);
            }
        }
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| Envelope::new(LogPosition(i as u64), e))
        .collect()
}

/// Everything a store shows: the checkpoint, then every job with its history and statements.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub checkpoint: LogPosition,
    pub jobs: Vec<(Job, Vec<LogPosition>, Vec<Statement>)>,
}

pub async fn snapshot(store: &dyn ProjectionStore) -> Snapshot {
    let all = JobQuery {
        include_deleted: true,
        limit: 1_000_000,
        ..Default::default()
    };
    let mut jobs = Vec::new();
    for job in store.jobs(&all).await.expect("list jobs").items {
        let history = store.history(job.id).await.expect("read history");
        let statements = store
            .statements(job.id, 0, 1_000_000)
            .await
            .expect("list statements")
            .items;
        jobs.push((job, history, statements));
    }
    Snapshot {
        checkpoint: store.checkpoint().await.expect("read the checkpoint"),
        jobs,
    }
}
