//! The conformance suites of the two ports, written once. Every adapter (sled here; Kafka and
//! MongoDB in the HA cluster) runs them through a small harness that opens and closes a
//! store by name, so the same assertions hold everywhere.

mod event_log;
mod fenced_writer;
mod leader_fence;
mod long_history;
mod registry;
mod tokens;

pub use event_log::event_log_suite;
pub use fenced_writer::{fenced_writer_suite, KnownGaps};
pub use leader_fence::leader_fence_suite;
pub use long_history::long_history_suite;
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

pub async fn projection_suite<H: ProjectionHarness>(h: &H) {
    let store = h.open("main").await;
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(0));
    assert_eq!(store.job(JobId(1)).await.unwrap(), None);
    assert_eq!(store.jobs(&JobQuery::default()).await.unwrap().total, 0);

    let history = sample_history();
    store.apply(&history[..5]).await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(5));
    // Overlapping batches: what is already reflected is skipped.
    store.apply(&history[3..]).await.unwrap();
    store.apply(&history).await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(12));

    let batch = store.job(JobId(1)).await.unwrap().unwrap();
    assert_eq!(batch.state, JobState::Success);
    assert_eq!(batch.version, 4, "each event applied exactly once");
    assert_eq!(batch.applied, LogPosition(11));
    assert_eq!(batch.exit_code, Some(0));
    let session = store.job(JobId(2)).await.unwrap().unwrap();
    assert_eq!(session.state, JobState::Busy, "statement 1 is waiting");
    assert_eq!(session.version, 8);
    assert_eq!(
        session.statements,
        [StatementState::Available, StatementState::Waiting]
    );

    let s0 = store
        .statement(JobId(2), StatementId(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s0.state, StatementState::Available);
    assert_eq!(s0.code, "1+1");
    assert!(matches!(s0.output, Some(StatementOutput::Ok { .. })));
    let page = store.statements(JobId(2), 1, 10).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, StatementId(1));
    assert_eq!(page.items[0].state, StatementState::Waiting);

    let h2 = store.history(JobId(2)).await.unwrap();
    assert_eq!(
        h2.iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 3, 5, 6, 7, 8, 9, 10]
    );

    // Filters and paging.
    let all = store
        .jobs(&JobQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (all.total, all.items.len(), all.items[0].id),
        (2, 1, JobId(1))
    );
    let second = store
        .jobs(&JobQuery {
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(second.items[0].id, JobId(2));
    let sessions = store
        .jobs(&JobQuery {
            kind: Some(KindFilter::Session),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        sessions.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    let done = store
        .jobs(&JobQuery {
            state: Some(JobState::Success),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        done.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(1)]
    );
    let bobs = store
        .jobs(&JobQuery {
            owner: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        bobs.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    // A caller who may view only its own jobs sees those it owns and those that run as it.
    for (user, expected) in [
        ("ann", vec![JobId(1)]),
        ("bob", vec![JobId(2)]),
        ("alice", vec![JobId(2)]),
        ("eve", vec![]),
    ] {
        let mine = store
            .jobs(&JobQuery {
                visible_to: Some(user.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = mine.items.iter().map(|j| j.id).collect();
        assert_eq!(
            (ids, mine.total),
            (expected.clone(), expected.len()),
            "{user}"
        );
    }

    // Fencing: a scheduler event from an older term than one applied changes nothing.
    let fenced = Envelope::new(
        LogPosition(12),
        new_event(
            2,
            9,
            sched(0),
            Event::JobFinished {
                attempt: Attempt(1),
                outcome: Outcome::Failed {
                    reason: "deposed leader".into(),
                },
                exit_code: Some(1),
            },
        ),
    );
    // Deletion hides a job from Livy's lists but not from the native API.
    let deleted = Envelope::new(
        LogPosition(13),
        new_event(1, 5, Origin::Api, Event::JobDeleted),
    );
    store.apply(&[fenced, deleted]).await.unwrap();
    let session = store.job(JobId(2)).await.unwrap().unwrap();
    assert_eq!(session.state, JobState::Busy, "fenced event ignored");
    assert_eq!(session.version, 8);
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(14));
    let visible = store.jobs(&JobQuery::default()).await.unwrap();
    assert_eq!(
        visible.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    let with_deleted = store
        .jobs(&JobQuery {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(with_deleted.total, 2);

    // Durable across reopen.
    let before = store.job(JobId(2)).await.unwrap();
    h.close(store).await;
    let store = h.open("main").await;
    assert_eq!(store.job(JobId(2)).await.unwrap(), before);
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(14));

    // Clearing drops everything; a replay rebuilds the same documents.
    store.clear().await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(0));
    assert_eq!(store.job(JobId(2)).await.unwrap(), None);
    assert!(store.history(JobId(2)).await.unwrap().is_empty());
    store.apply(&history).await.unwrap();
    let rebuilt = store.job(JobId(1)).await.unwrap().unwrap();
    assert_eq!(rebuilt, batch);
    assert_eq!(store.history(JobId(2)).await.unwrap(), h2);
    h.close(store).await;
    long_history_suite(h).await;
    registry_suite(h).await;
    tokens_suite(h).await;
    leader_fence_suite(h).await;
}
