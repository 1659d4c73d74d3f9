//! The conformance suites of the two ports, written once. Every adapter (sled here; Kafka and
//! MongoDB in the HA cluster) runs them through a small harness that opens and closes a
//! store by name, so the same assertions hold everywhere.

mod event_log;
mod fenced_writer;
mod leader_fence;
mod long_history;
mod projections;
mod registry;
mod tokens;

pub use event_log::event_log_suite;
pub use fenced_writer::{fenced_writer_suite, KnownGaps};
pub use leader_fence::leader_fence_suite;
pub use long_history::long_history_suite;
pub use projections::projection_suite;
pub use registry::registry_suite;
pub use tokens::tokens_suite;

use crate::log::EventLog;
use crate::projections::{JobQuery, KindFilter, ProjectionStore};
use async_trait::async_trait;
use kindling_events::spec::{BatchSpec, JobKind, JobSpec, SessionKind, SessionSpec};
use kindling_events::{
    Aggregate, Attempt, Capacity, ClusterConfig, ClusterKind, Credentials, Envelope, Event, JobId,
    JobState, LogPosition, NewEvent, NodeId, Origin, Outcome, Registry, StatementId,
    StatementOutput, StatementState, Term,
};
use std::collections::BTreeSet;
use std::sync::Arc;

#[async_trait]
pub trait LogHarness: Send + Sync {
    type Log: EventLog;
    /// Opens the log called `name`, creating it empty the first time.
    async fn open(&self, name: &str) -> Self::Log;
    /// Closes a log so that it can be opened again.
    async fn close(&self, log: Self::Log);
    /// Known gaps of the store under test. A harness must find them out from the store,
    /// never assume them; the fenced writer suite then reports what it saw instead of
    /// asserting that part.
    fn known_gaps(&self) -> KnownGaps {
        KnownGaps::default()
    }
}

#[async_trait]
pub trait ProjectionHarness: Send + Sync {
    type Store: ProjectionStore;
    async fn open(&self, name: &str) -> Self::Store;
    async fn close(&self, store: Self::Store);
}

pub fn batch_spec(owner: Option<&str>) -> JobSpec {
    JobSpec {
        kind: JobKind::Batch(BatchSpec {
            file: "/tmp/pi.py".into(),
            class_name: None,
            args: vec!["10".into()],
        }),
        name: Some("pi".into()),
        owner: owner.map(str::to_string),
        proxy_user: None,
        resources: Default::default(),
    }
}

pub fn session_spec(owner: Option<&str>) -> JobSpec {
    JobSpec {
        kind: JobKind::Session(SessionSpec {
            kind: SessionKind::Pyspark,
            heartbeat_timeout_secs: 10,
            ttl: None,
            idle_timeout: None,
        }),
        name: None,
        owner: owner.map(str::to_string),
        proxy_user: Some("alice".into()),
        resources: Default::default(),
    }
}

pub fn new_event(job: u64, version: u64, origin: Origin, event: Event) -> NewEvent {
    NewEvent {
        aggregate: Aggregate::Job(JobId(job)),
        version,
        origin,
        node: NodeId(1),
        actor: None,
        at_ms: 1_700_000_000_000 + version as i64,
        event,
    }
}

fn sched(term: u64) -> Origin {
    Origin::Scheduler { term: Term(term) }
}

pub(crate) fn three_events() -> Vec<NewEvent> {
    vec![
        new_event(
            7,
            1,
            Origin::Api,
            Event::JobSubmitted {
                spec: batch_spec(Some("ann")),
            },
        ),
        new_event(
            7,
            2,
            sched(3),
            Event::JobScheduled {
                attempt: Attempt(1),
                driver_name: "kindling-7-1".into(),
                secret_digest: String::new(),
            },
        ),
        new_event(
            7,
            3,
            sched(3),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "local:123".into(),
            },
        ),
    ]
}

/// A session (job 2) with two statements and a batch (job 1) that succeeds.
pub fn sample_history() -> Vec<Envelope> {
    let events = vec![
        new_event(
            1,
            1,
            Origin::Api,
            Event::JobSubmitted {
                spec: batch_spec(Some("ann")),
            },
        ),
        new_event(
            2,
            1,
            Origin::Api,
            Event::JobSubmitted {
                spec: session_spec(Some("bob")),
            },
        ),
        new_event(
            1,
            2,
            sched(1),
            Event::JobScheduled {
                attempt: Attempt(1),
                driver_name: "kindling-1-1".into(),
                secret_digest: String::new(),
            },
        ),
        new_event(
            2,
            2,
            sched(1),
            Event::JobScheduled {
                attempt: Attempt(1),
                driver_name: "kindling-2-1".into(),
                secret_digest: "abc".into(),
            },
        ),
        new_event(
            1,
            3,
            sched(1),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "local:1".into(),
            },
        ),
        new_event(
            2,
            3,
            sched(1),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "local:2".into(),
            },
        ),
        new_event(
            2,
            4,
            Origin::Driver,
            Event::SessionReady {
                attempt: Attempt(1),
            },
        ),
        new_event(
            2,
            5,
            Origin::Api,
            Event::StatementSubmitted {
                statement: StatementId(0),
                kind: SessionKind::Pyspark,
                code: "1+1".into(),
            },
        ),
        new_event(
            2,
            6,
            Origin::Driver,
            Event::StatementStarted {
                statement: StatementId(0),
            },
        ),
        new_event(
            2,
            7,
            Origin::Driver,
            Event::StatementCompleted {
                statement: StatementId(0),
                output: StatementOutput::Ok {
                    execution_count: 0,
                    data_json: r#"{"text/plain":"2"}"#.into(),
                },
            },
        ),
        new_event(
            2,
            8,
            Origin::Api,
            Event::StatementSubmitted {
                statement: StatementId(1),
                kind: SessionKind::Sql,
                code: "select 1".into(),
            },
        ),
        new_event(
            1,
            4,
            sched(1),
            Event::JobFinished {
                attempt: Attempt(1),
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
            },
        ),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| Envelope::new(LogPosition(i as u64), e))
        .collect()
}
