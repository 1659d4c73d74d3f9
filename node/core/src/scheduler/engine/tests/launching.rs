//! Planning rounds and the chain of a launch: confirmation, reading the job, scheduling it,
//! opening a session's route, the lane's answer.

use super::*;
use kindling_backend::{BackendEvent, KafkaRoute};

fn queue(e: &mut Engine, ids: &[u64], spec: fn(Option<&str>) -> JobSpec) {
    for &id in ids {
        let submitted = Event::JobSubmitted { spec: spec(None) };
        e.on_log(&job_env(id, id, Origin::Api, submitted));
    }
}

fn round(actions: &[Action]) -> Option<Round> {
    actions.iter().find_map(|a| match a {
        Action::ConfirmLeadership(Confirm::Round(r)) => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn a_round_launches_what_fits_and_says_once_why_the_rest_waits() {
    let mut e = engine(2);
    queue(&mut e, &[1, 2, 3], batch_spec);
    let out = e.plan_round(0);
    // Job 3, the one waiting, was submitted at the test log's 1 s.
    assert!(out.contains(&Action::ClusterLoad {
        cluster: "local".into(),
        drivers: 2,
        waiting: 1,
        oldest_submitted_ms: Some(1_000),
    }));
    let r = round(&out).expect("the round writes");
    assert_eq!(r.launches, [JobId(1), JobId(2)]);
    assert_eq!(r.reasons.len(), 1);
    assert_eq!(r.reasons[0].0, JobId(3));
    assert!(
        r.reasons[0].1.contains("limit of 2 concurrent drivers"),
        "{r:?}"
    );

    // Not confirmed (a newer term, no quorum): nothing is decided, nothing leaves the queue.
    assert!(e.on_confirmed(Confirm::Round(r.clone()), false).is_empty());
    assert_eq!(e.queued().count(), 3);

    let out = e.on_confirmed(Confirm::Round(r), true);
    assert_eq!(
        commands(&out),
        [(
            JobId(3),
            Command::Queue {
                reason: e.shown[&JobId(3)].clone()
            }
        )]
    );
    let loads: Vec<JobId> = out
        .iter()
        .filter_map(|a| match a {
            Action::Load {
                job,
                need: Need::Launch { spec: Some(_) },
            } => Some(*job),
            _ => None,
        })
        .collect();
    assert_eq!(loads, [JobId(1), JobId(2)]);
    assert_eq!(e.queued().collect::<Vec<_>>(), [JobId(3)]);
}

#[test]
fn a_wait_reason_already_recorded_is_not_written_again() {
    let mut e = engine(0);
    queue(&mut e, &[1], batch_spec);
    let r = round(&e.plan_round(0)).unwrap();
    e.on_confirmed(Confirm::Round(r), true);
    let again = e.plan_round(0);
    assert!(round(&again).is_none(), "{again:?}");
}

#[test]
fn a_job_whose_cluster_is_gone_is_ended_with_the_reason() {
    let mut e = engine(2);
    let mut spec = batch_spec(None);
    spec.resources
        .conf
        .insert(kindling_events::CLUSTER_CONF_KEY.into(), "gone".into());
    e.on_log(&job_env(1, 1, Origin::Api, Event::JobSubmitted { spec }));
    let r = round(&e.plan_round(0)).unwrap();
    let out = e.on_confirmed(Confirm::Round(r), true);
    let cmds = commands(&out);
    let [(job, Command::Refuse { reason })] = cmds.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(*job, JobId(1));
    assert!(reason.contains("'gone' does not exist"), "{reason}");
    assert_eq!(e.queued().count(), 0);
}

#[test]
fn a_chosen_job_is_scheduled_only_if_it_still_waits() {
    let killed = {
        let mut j = job(1, batch_spec(None), vec![]);
        j.kill_requested = true;
        j
    };
    let table: Vec<(&str, crate::Result<Loaded>, bool, bool)> = vec![
        // (case, the job as read, scheduled, back in the queue)
        (
            "waiting",
            loaded(job(1, batch_spec(None), vec![])),
            true,
            false,
        ),
        ("killed meanwhile", loaded(killed), false, false),
        ("already running", loaded(running_batch(1)), false, false),
        ("gone", Err(crate::Error::NotFound(JobId(1))), false, false),
        (
            "unreadable now",
            Err(crate::Error::Unavailable("broker away".into())),
            false,
            true,
        ),
    ];
    for (case, read, schedules, requeued) in table {
        let mut e = engine(2);
        let need = Need::Launch {
            spec: Some(Box::new(batch_spec(None))),
        };
        let out = e.on_loaded(JobId(1), need, read);
        assert_eq!(
            out == [Action::Schedule {
                job: JobId(1),
                driver_name: "kindling-1-1".into(),
                secret_digest: String::new()
            }],
            schedules,
            "{case}: {out:?}"
        );
        assert_eq!(e.queued().count() == 1, requeued, "{case}");
    }
}

#[test]
fn a_session_gets_a_secret_whose_digest_only_is_recorded() {
    let mut e = engine(2);
    let need = Need::Launch { spec: None };
    let out = e.on_loaded(JobId(4), need, loaded(job(4, session_spec(None), vec![])));
    let [Action::Schedule { secret_digest, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    let secret = crate::driver_secret::secret(&[7; 32], "kindling-4-1");
    assert_eq!(*secret_digest, crate::driver_secret::secret_digest(&secret));
    assert_ne!(*secret_digest, secret);
}

#[test]
fn a_scheduled_batch_is_launched_on_its_clusters_lane() {
    let mut e = engine(2);
    let j = job(5, batch_spec(None), vec![scheduled(1, 5)]);
    let out = e.on_scheduled(JobId(5), Ok(j));
    let [Action::Lane {
        cluster,
        op: LaneOp::Launch(spec),
    }] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(cluster.name, DEFAULT_CLUSTER);
    assert_eq!((spec.job, spec.attempt), (JobId(5), Attempt(1)));
    assert_eq!(spec.driver_name, "kindling-5-1");
    assert!(spec.session.is_none());
    assert!(matches!(
        e.running()[&JobId(5)].phase,
        Phase::Launching { .. }
    ));
    // A refused schedule (the job moved on) launches nothing.
    let refused = Err(crate::Error::NotLeader(None));
    assert!(e.on_scheduled(JobId(6), refused).is_empty());
}

/// A schedule whose append fails (the broker is away) leaves the job queued for the next
/// round, which takes it again: a leader that lost an append does not forget the job.
#[test]
fn a_job_whose_schedule_failed_is_tried_again() {
    let mut e = engine(2);
    let need = Need::Launch { spec: None };
    let out = e.on_loaded(JobId(7), need, loaded(job(7, batch_spec(None), vec![])));
    assert!(matches!(&out[..], [Action::Schedule { .. }]), "{out:?}");
    assert_eq!(
        e.queued().count(),
        0,
        "taken from the queue while it is scheduled"
    );
    let failed = Err(crate::Error::Unavailable("the broker is away".into()));
    assert!(e.on_scheduled(JobId(7), failed).is_empty());
    assert_eq!(e.queued().collect::<Vec<_>>(), [JobId(7)]);
    let round = e.plan_round(0);
    assert!(
        round
            .iter()
            .any(|a| matches!(a, Action::Load { job: JobId(7), .. })
                || matches!(a, Action::ConfirmLeadership(..))),
        "the next round takes it again: {round:?}"
    );
}

#[test]
fn a_session_is_launched_once_its_route_is_open_with_its_secret() {
    let mut e = engine(2);
    let j = job(6, session_spec(None), vec![scheduled(1, 6)]);
    let out = e.on_scheduled(JobId(6), Ok(j.clone()));
    let [Action::OpenRoute { cluster, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert!(
        e.running().is_empty(),
        "not counted before its route is open"
    );
    let kafka = KafkaRoute {
        brokers: "b:9092".into(),
        requests: "k.job.6.requests".into(),
        replies: "k.job.6.replies".into(),
    };
    let route = SessionRoute {
        endpoints: "n1:8999,n2:8999".into(),
        kafka: Some(kafka.clone()),
    };
    let out = e.on_route_opened(Box::new(j.clone()), cluster.clone(), Ok(route));
    let [LaneOp::Launch(spec)] = &lane_ops(&out)[..] else {
        panic!("{out:?}")
    };
    let link = spec.session.as_ref().expect("a session link");
    assert_eq!(link.endpoints, "n1:8999,n2:8999");
    assert_eq!(link.kafka, Some(kafka));
    let tls = link
        .tls
        .as_ref()
        .expect("the gateways' TLS reaches the driver");
    assert_eq!(tls.ca_pem.as_deref(), Some("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        link.secret,
        crate::driver_secret::secret(&[7; 32], "kindling-6-1")
    );

    let mut e = engine(2);
    let failed = Err(crate::Error::Unavailable("no broker".into()));
    let out = e.on_route_opened(Box::new(j), cluster.clone(), failed);
    let [(_, Command::Finish { outcome, .. })] = &commands(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(outcome, Outcome::Error { reason } if reason.contains("route could not be opened")),
        "{outcome:?}"
    );
    assert!(e.running().is_empty());
}

/// An engine with job 5's launch under way.
fn launching() -> Engine {
    let mut e = engine(2);
    e.on_scheduled(
        JobId(5),
        Ok(job(5, batch_spec(None), vec![scheduled(1, 5)])),
    );
    e
}

#[test]
fn a_launchs_answer_records_the_driver_then_what_it_reported_meanwhile() {
    let mut e = launching();
    let app = BackendEvent::AppIdentified {
        job: JobId(5),
        attempt: Attempt(1),
        app_id: "local-1".into(),
        spark_ui_url: None,
    };
    assert!(e.on_backend_event(app).is_empty(), "held for the answer");
    let out = e.on_launched(JobId(5), Attempt(1), Ok("pid-9".into()), Instant::now());
    assert_eq!(
        out[0],
        Action::CountLaunch {
            cluster: "local".into(),
            ok: true
        }
    );
    let cmds: Vec<Command> = commands(&out).into_iter().map(|(_, c)| c).collect();
    assert!(
        matches!(&cmds[..], [
        Command::DriverLaunched { driver_id, .. },
        Command::AppIdentified { app_id, .. },
    ] if driver_id == "pid-9" && app_id == "local-1"),
        "{cmds:?}"
    );
    assert_eq!(e.running()[&JobId(5)].phase, Phase::Watched);
    // An answer about another attempt is stale.
    assert!(e
        .on_launched(JobId(5), Attempt(2), Ok("x".into()), Instant::now())
        .is_empty());
}

#[test]
fn a_launch_that_certainly_failed_ends_the_job_and_one_in_doubt_is_looked_up() {
    let mut e = launching();
    let certain = LaunchError {
        cause: "no such file".into(),
        certain: true,
    };
    let out = e.on_launched(JobId(5), Attempt(1), Err(certain), Instant::now());
    assert_eq!(
        out[0],
        Action::CountLaunch {
            cluster: "local".into(),
            ok: false
        }
    );
    let [(_, Command::Finish { outcome, .. })] = &commands(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(outcome, Outcome::Error { reason } if reason.contains("could not be launched: no such file"))
    );
    assert!(e.running().is_empty());

    let mut e = launching();
    let now = Instant::now();
    let doubt = LaunchError {
        cause: "timed out".into(),
        certain: false,
    };
    let out = e.on_launched(JobId(5), Attempt(1), Err(doubt), now);
    assert_eq!(
        out,
        [Action::CountLaunch {
            cluster: "local".into(),
            ok: false
        }]
    );
    assert!(lane_ops(&e.on_tick(now + FIND_RETRY / 2, 0)).is_empty());
    let ops = lane_ops(&e.on_tick(now + FIND_RETRY, 0));
    assert_eq!(
        ops,
        [LaneOp::Find {
            job: JobId(5),
            attempt: Attempt(1),
            driver_name: "kindling-5-1".into()
        }]
    );
    assert!(
        lane_ops(&e.on_tick(now + FIND_RETRY * 2, 0)).is_empty(),
        "looked up once per failure"
    );
}

#[test]
fn an_exit_reads_as_the_jobs_outcome() {
    let killed = {
        let mut j = running_batch(8);
        j.kill_requested = true;
        j.reason = Some("killed by a client".into());
        j
    };
    let starting_session = job(
        8,
        session_spec(None),
        vec![
            scheduled(1, 8),
            Event::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "d".into(),
            },
        ],
    );
    /// A case: the job as read, its exit code, the cluster's word, the scheduler's reason for
    /// stopping it, and the outcome recorded.
    struct Exit(
        &'static str,
        Job,
        Option<i32>,
        Option<&'static str>,
        Option<&'static str>,
        Outcome,
    );
    let table = vec![
        Exit(
            "exit 0",
            running_batch(8),
            Some(0),
            None,
            None,
            Outcome::Succeeded,
        ),
        Exit(
            "exit 3",
            running_batch(8),
            Some(3),
            None,
            None,
            Outcome::Failed {
                reason: "the driver exited with code 3".into(),
            },
        ),
        Exit(
            "the cluster's word",
            running_batch(8),
            Some(137),
            Some("OOMKilled"),
            None,
            Outcome::Failed {
                reason: "the driver exited with code 137 (OOMKilled)".into(),
            },
        ),
        Exit(
            "killed",
            killed,
            Some(143),
            None,
            None,
            Outcome::Killed {
                reason: "killed by a client".into(),
            },
        ),
        Exit(
            "stopped by the scheduler",
            running_batch(8),
            Some(143),
            None,
            Some("the driver sent no heartbeat for 10 s"),
            Outcome::Failed {
                reason: "the driver sent no heartbeat for 10 s".into(),
            },
        ),
        Exit(
            "a session before it was ready",
            starting_session,
            Some(1),
            None,
            None,
            Outcome::Error {
                reason: "the session's driver exited with code 1 before it was ready; see the \
                         session log"
                    .into(),
            },
        ),
    ];
    for Exit(case, j, exit_code, cause, doomed, want) in table {
        let mut e = watching(vec![j.clone()]);
        if let Some(reason) = doomed {
            e.running.get_mut(&JobId(8)).unwrap().doomed = Some(reason.into());
        }
        let ev = BackendEvent::Exited {
            job: JobId(8),
            attempt: Attempt(1),
            exit_code,
            reason: cause.map(str::to_string),
        };
        let out = e.on_backend_event(ev);
        assert_eq!(
            out[0],
            Action::ShutdownLink {
                job: JobId(8),
                reason: "the driver exited"
            },
            "{case}"
        );
        let Action::Load { need, .. } = out[1].clone() else {
            panic!("{case}: {out:?}")
        };
        assert!(e.running().is_empty(), "{case}");
        let out = e.on_loaded(JobId(8), need, loaded(j));
        assert_eq!(
            commands(&out),
            [(
                JobId(8),
                Command::Finish {
                    attempt: Attempt(1),
                    outcome: want,
                    exit_code
                }
            )],
            "{case}"
        );
    }
}

#[test]
fn a_new_leader_knows_since_when_the_jobs_it_took_over_have_waited() {
    let mut e = engine(0);
    let mut early = job(4, batch_spec(None), vec![]);
    early.submitted_at_ms = 250;
    let mut late = job(6, batch_spec(None), vec![]);
    late.submitted_at_ms = 900;
    e.start(TERM, vec![late, early], Registry::default());
    let out = e.plan_round(0);
    assert!(
        out.contains(&Action::ClusterLoad {
            cluster: "local".into(),
            drivers: 0,
            waiting: 2,
            oldest_submitted_ms: Some(250),
        }),
        "{out:?}"
    );
}
