//! The leader fence, as every projection store must keep it: a deposed leader's events that
//! come after an event of a newer term (on any aggregate: the new leader's marker is about no
//! job) change no document, no history, no statement and no registry, across batches and
//! reopens, and a replay of the same log gives the same documents.

use super::{batch_spec, new_event, session_spec, ProjectionHarness};
use crate::projections::ProjectionStore;
use kindling_events::{
    Aggregate, Attempt, Capacity, ClusterConfig, ClusterKind, Credentials, Envelope, Event, JobId,
    JobState, LogPosition, NewEvent, NodeId, Origin, SessionKind, StatementId, StatementOutput,
    StatementState, Term,
};

fn at(position: u64, e: NewEvent) -> Envelope {
    Envelope::new(LogPosition(position), e)
}

fn other(aggregate: Aggregate, version: u64, origin: Origin, event: Event) -> NewEvent {
    NewEvent {
        aggregate,
        version,
        origin,
        node: NodeId(2),
        actor: None,
        at_ms: 1_700_000_000_000,
        event,
    }
}

fn api(term: u64) -> Origin {
    Origin::ApiDecided { term: Term(term) }
}

fn driver(term: u64) -> Origin {
    Origin::DriverDecided { term: Term(term) }
}

fn sched(term: u64) -> Origin {
    Origin::Scheduler { term: Term(term) }
}

fn statement(id: u64, code: &str) -> Event {
    Event::StatementSubmitted {
        statement: StatementId(id),
        kind: SessionKind::Pyspark,
        code: code.into(),
    }
}

/// Leader 5 takes over while leader 4 still writes: a batch (job 1) and a session (job 2).
/// Returns the log and the positions of leader 4's late writes.
fn contested_log() -> (Vec<Envelope>, Vec<u64>) {
    let registry = ClusterConfig {
        kind: ClusterKind::Standalone,
        connection: [
            ("restUrl".to_string(), "http://master:6066".to_string()),
            ("webUiUrl".to_string(), "http://master:8080".to_string()),
        ]
        .into(),
        credentials: Credentials::None,
        spark_conf: Default::default(),
        capacity: Capacity::default(),
    };
    let log = vec![
        at(
            0,
            new_event(
                1,
                1,
                Origin::Api,
                Event::JobSubmitted {
                    spec: batch_spec(None),
                },
            ),
        ),
        at(
            1,
            new_event(
                2,
                1,
                Origin::Api,
                Event::JobSubmitted {
                    spec: session_spec(None),
                },
            ),
        ),
        at(2, new_event(2, 2, sched(4), scheduled(2))),
        // Leader 5 takes over: its marker is about no job.
        at(
            3,
            other(
                Aggregate::Cluster,
                0,
                sched(5),
                Event::SchedulerMarker { nonce: 9 },
            ),
        ),
        // Leader 4 has not heard: a kill, a launch, a cluster, a statement, a driver's report.
        at(
            4,
            new_event(
                1,
                2,
                api(4),
                Event::KillRequested {
                    reason: "late".into(),
                },
            ),
        ),
        at(5, new_event(1, 2, sched(4), scheduled(1))),
        at(
            6,
            other(
                Aggregate::Registry,
                1,
                api(4),
                Event::ClusterRegistered {
                    name: "lab".into(),
                    config: registry,
                },
            ),
        ),
        at(7, new_event(2, 3, api(4), statement(0, "late = 1"))),
        at(
            8,
            new_event(
                2,
                3,
                driver(4),
                Event::SessionReady {
                    attempt: Attempt(1),
                },
            ),
        ),
        // Leader 5 carries on: the session comes up and runs its own statement 0.
        at(
            9,
            new_event(
                2,
                3,
                driver(5),
                Event::SessionReady {
                    attempt: Attempt(1),
                },
            ),
        ),
        at(10, new_event(2, 4, api(5), statement(0, "1 + 1"))),
        // Leader 4 again, after the store was reopened: a result, then a kill of job 1.
        at(
            11,
            new_event(
                2,
                4,
                driver(4),
                Event::StatementCompleted {
                    statement: StatementId(0),
                    output: StatementOutput::Ok {
                        execution_count: 0,
                        data_json: r#"{"text/plain":"1"}"#.into(),
                    },
                },
            ),
        ),
        at(
            12,
            new_event(
                1,
                2,
                api(4),
                Event::KillRequested {
                    reason: "late".into(),
                },
            ),
        ),
        // Leader 5 kills job 1; leader 6 is elected and schedules nothing yet.
        at(
            13,
            new_event(
                1,
                2,
                api(5),
                Event::KillRequested {
                    reason: "by ann".into(),
                },
            ),
        ),
        at(
            14,
            other(
                Aggregate::Cluster,
                0,
                sched(6),
                Event::SchedulerMarker { nonce: 3 },
            ),
        ),
    ];
    (log, vec![4, 5, 6, 7, 8, 11, 12])
}

fn scheduled(job: u64) -> Event {
    Event::JobScheduled {
        attempt: Attempt(1),
        driver_name: format!("kindling-{job}-1"),
        secret_digest: String::new(),
    }
}

pub async fn leader_fence_suite<H: ProjectionHarness>(h: &H) {
    let (log, late) = contested_log();
    let store = h.open("fence").await;
    assert_eq!(store.fence().await.unwrap().newest(), Term(0));
    store.apply(&log[..6]).await.unwrap();
    assert_eq!(store.fence().await.unwrap().newest(), Term(5));
    store.apply(&log[6..11]).await.unwrap();
    // The fence is kept with the checkpoint: a reopened store still ignores leader 4.
    h.close(store).await;
    let store = h.open("fence").await;
    assert_eq!(store.fence().await.unwrap().newest(), Term(5));
    store.apply(&log[11..]).await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(15));
    assert_eq!(store.fence().await.unwrap().newest(), Term(6));
    check_documents(&store, &late).await;

    // A replay of the whole log in one batch agrees.
    let fresh = h.open("fence-replay").await;
    fresh.apply(&log).await.unwrap();
    check_documents(&fresh, &late).await;
    for job in [JobId(1), JobId(2)] {
        assert_eq!(
            fresh.job(job).await.unwrap(),
            store.job(job).await.unwrap(),
            "{job:?}: batches and reopens change nothing"
        );
    }
    h.close(fresh).await;
    h.close(store).await;
}

async fn check_documents(store: &impl ProjectionStore, late: &[u64]) {
    let batch = store.job(JobId(1)).await.unwrap().unwrap();
    assert_eq!(
        batch.state,
        JobState::NotStarted,
        "leader 4 launched nothing"
    );
    assert!(batch.kill_requested, "leader 5's kill counts");
    assert_eq!(batch.reason.as_deref(), Some("by ann"));
    assert_eq!(batch.version, 2);
    let session = store.job(JobId(2)).await.unwrap().unwrap();
    assert_eq!(session.state, JobState::Busy, "statement 0 has no result");
    assert_eq!(session.version, 4);
    assert_eq!(session.statements, [StatementState::Waiting]);
    let s0 = store
        .statement(JobId(2), StatementId(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s0.code, "1 + 1", "leader 5's statement, not leader 4's");
    assert_eq!(s0.output, None);
    let histories = [
        store.history(JobId(1)).await.unwrap(),
        store.history(JobId(2)).await.unwrap(),
    ];
    let positions = |h: &[LogPosition]| h.iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(positions(&histories[0]), [0, 13]);
    assert_eq!(positions(&histories[1]), [1, 2, 9, 10]);
    for p in late {
        assert!(
            histories.iter().flatten().all(|h| h.0 != *p),
            "late write at {p} is in a history"
        );
    }
    assert!(
        store.registry().await.unwrap().clusters.is_empty(),
        "leader 4 registered no cluster"
    );
}
