//! What the engine does with the log it follows: the queue, kills, ends, the registry, and
//! the leader fence.

use super::*;

#[test]
fn the_log_fills_and_empties_the_queue() {
    let mut e = engine(2);
    let submitted = || Event::JobSubmitted {
        spec: batch_spec(None),
    };
    for id in 0..3 {
        assert!(e
            .on_log(&job_env(id, id, Origin::Api, submitted()))
            .is_empty());
    }
    assert_eq!(
        e.queued().collect::<Vec<_>>(),
        [JobId(0), JobId(1), JobId(2)]
    );
    // A kill of a queued job takes it out of the queue; there is no driver to stop.
    let kill = Event::KillRequested {
        reason: "killed by a client".into(),
    };
    let out = e.on_log(&job_env(3, 1, Origin::ApiDecided { term: TERM }, kill));
    assert!(out.is_empty(), "{out:?}");
    // An end decided for a queued job (it could never run) takes it out too.
    let end = Event::JobFinished {
        attempt: Attempt(0),
        outcome: Outcome::Error {
            reason: "no".into(),
        },
        exit_code: None,
    };
    assert!(e.on_log(&job_env(4, 2, sched(), end)).is_empty());
    assert_eq!(e.queued().collect::<Vec<_>>(), [JobId(0)]);
}

#[test]
fn a_kill_stops_a_running_driver_once_telling_a_session_first() {
    let mut e = watching(vec![running_batch(7)]);
    let kill = || {
        job_env(
            50,
            7,
            Origin::ApiDecided { term: TERM },
            Event::KillRequested {
                reason: "killed by a client".into(),
            },
        )
    };
    let out = e.on_log(&kill());
    assert_eq!(
        out[0],
        Action::ShutdownLink {
            job: JobId(7),
            reason: "the session was stopped"
        }
    );
    assert_eq!(
        lane_ops(&out),
        [LaneOp::Kill {
            job: JobId(7),
            driver_name: "kindling-7-1".into()
        }]
    );
    assert!(e.running()[&JobId(7)].killing);
    let mut again = kill();
    again.position = LogPosition(51);
    assert!(e.on_log(&again).is_empty(), "a second kill sends nothing");
}

#[test]
fn an_end_of_the_running_attempt_stops_its_driver_and_an_older_one_does_not() {
    let table = [(Attempt(1), true), (Attempt(0), false), (Attempt(2), false)];
    for (attempt, stops) in table {
        let mut e = watching(vec![running_batch(3)]);
        let end = Event::JobFinished {
            attempt,
            outcome: Outcome::Killed { reason: "k".into() },
            exit_code: None,
        };
        let out = e.on_log(&job_env(60, 3, sched(), end));
        assert_eq!(!out.is_empty(), stops, "attempt {attempt:?}: {out:?}");
        assert_eq!(e.running().contains_key(&JobId(3)), !stops);
        if stops {
            assert!(
                !out.iter().any(|a| matches!(a, Action::ShutdownLink { .. })),
                "the driver ended by a decision is not told: {out:?}"
            );
        }
    }
}

#[test]
fn a_deposed_leaders_late_kill_is_no_event_to_react_to() {
    let mut e = watching(vec![running_batch(4)]);
    let late = Event::KillRequested {
        reason: "a stale leader's".into(),
    };
    let older = Origin::ApiDecided {
        term: Term(TERM.0 - 1),
    };
    assert!(e.on_log(&job_env(70, 4, older, late.clone())).is_empty());
    assert!(!e.running()[&JobId(4)].killing);
    // After a newer term's event, the current term's own writes are late too.
    let newer = Origin::Scheduler {
        term: Term(TERM.0 + 1),
    };
    let marker = Event::SchedulerMarker { nonce: 1 };
    assert!(e
        .on_log(&env(71, Aggregate::Cluster, newer, marker))
        .is_empty());
    let own = Origin::ApiDecided { term: TERM };
    assert!(e.on_log(&job_env(72, 4, own, late)).is_empty());
}

fn registered(position: u64, name: &str, max_drivers: u32) -> Envelope {
    let config = ClusterConfig {
        kind: kindling_events::ClusterKind::Standalone,
        connection: [
            ("restUrl".to_string(), "http://m:6066".to_string()),
            ("webUiUrl".to_string(), "http://m:8080".to_string()),
        ]
        .into(),
        capacity: Capacity {
            max_drivers: Some(max_drivers),
            ..Capacity::default()
        },
        ..ClusterConfig::local()
    };
    env(
        position,
        Aggregate::Registry,
        Origin::ApiDecided { term: TERM },
        Event::ClusterRegistered {
            name: name.into(),
            config,
        },
    )
}

#[test]
fn registry_events_change_the_clusters_the_engine_knows() {
    let mut e = engine(1);
    assert!(e.cluster("lab").is_none());
    assert!(e.on_log(&registered(1, "lab", 3)).is_empty());
    let lab = e.cluster("lab").expect("registered");
    assert_eq!(lab.config.capacity.max_drivers, Some(3));
    assert_eq!(lab.revision, LogPosition(1));
    let removed = env(
        2,
        Aggregate::Registry,
        Origin::ApiDecided { term: TERM },
        Event::ClusterRemoved { name: "lab".into() },
    );
    assert_eq!(
        e.on_log(&removed),
        [Action::ForgetCluster { name: "lab".into() }]
    );
    assert!(e.cluster("lab").is_none());
    assert!(e.cluster(DEFAULT_CLUSTER).is_some(), "the built-in stays");
}

#[test]
fn an_updated_cluster_has_its_watched_drivers_looked_up_on_the_new_backend() {
    let mut e = engine(4);
    e.on_log(&registered(1, "lab", 3));
    let mut spec = batch_spec(None);
    spec.resources
        .conf
        .insert(kindling_events::CLUSTER_CONF_KEY.into(), "lab".into());
    let on_lab = job(
        9,
        spec,
        vec![
            scheduled(1, 9),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "d".into(),
            },
        ],
    );
    let registry = e.registry.clone();
    let now = Instant::now();
    e.start(TERM, vec![on_lab.clone(), running_batch(2)], registry);
    for (id, j) in [(9, &on_lab), (2, &running_batch(2))] {
        let load = e.on_found(
            JobId(id),
            Attempt(1),
            Ok(kindling_backend::Found::Running {
                driver_id: "d".into(),
            }),
            now,
        );
        let Some(Action::Load { need, .. }) = load.into_iter().next() else {
            panic!()
        };
        e.on_loaded(JobId(id), need, loaded(j.clone()));
    }
    let mut update = registered(5, "lab", 5);
    let Event::ClusterRegistered { name, config } = update.event.clone() else {
        unreachable!()
    };
    update.event = Event::ClusterUpdated { name, config };
    let out = e.on_log(&update);
    assert_eq!(
        lane_ops(&out),
        [LaneOp::Find {
            job: JobId(9),
            attempt: Attempt(1),
            driver_name: "kindling-9-1".into()
        }],
        "only the updated cluster's drivers"
    );
    let Action::Lane { cluster, .. } = &out[0] else {
        panic!()
    };
    assert_eq!(
        cluster.revision,
        LogPosition(5),
        "looked up on the new revision"
    );
    assert!(matches!(
        e.running()[&JobId(9)].phase,
        Phase::Finding { retry_at: None }
    ));
    assert_eq!(e.running()[&JobId(2)].phase, Phase::Watched);
}
