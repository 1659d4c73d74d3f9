//! Taking over: what becomes of each job that was active, by what the lookup of its driver
//! finds.

use super::*;
use kindling_backend::Found;

#[test]
fn a_take_over_queues_waiting_jobs_and_looks_up_the_others() {
    let mut e = engine(2);
    let killed_waiting = {
        let mut j = job(2, batch_spec(None), vec![]);
        j.kill_requested = true;
        j
    };
    let mut on_gone = batch_spec(None);
    on_gone
        .resources
        .conf
        .insert(kindling_events::CLUSTER_CONF_KEY.into(), "gone".into());
    let lost = job(4, on_gone, vec![scheduled(1, 4)]);
    let out = e.start(
        TERM,
        vec![
            job(1, batch_spec(None), vec![]),
            killed_waiting,
            running_batch(3),
            lost,
        ],
        Registry::default(),
    );
    assert_eq!(e.queued().collect::<Vec<_>>(), [JobId(1)]);
    assert_eq!(
        lane_ops(&out),
        [LaneOp::Find {
            job: JobId(3),
            attempt: Attempt(1),
            driver_name: "kindling-3-1".into()
        }]
    );
    let [(job4, Command::Finish { outcome, .. })] = &commands(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(*job4, JobId(4));
    assert!(
        matches!(outcome, Outcome::Error { reason } if reason.contains("'gone' no longer exists"))
    );
    assert_eq!(
        e.running().keys().collect::<Vec<_>>(),
        [&JobId(3)],
        "counted against capacity while it is looked up"
    );
}

/// Job 3's lookup after a take-over, answered with `found`, for the job as `j`.
fn found(
    j: Job,
    found: Result<Found, String>,
    last_seen: Option<Instant>,
) -> (Engine, Vec<Action>) {
    let mut e = engine(2);
    e.start(TERM, vec![j.clone()], Registry::default());
    let now = Instant::now();
    let out = e.on_found(j.id, Attempt(1), found, now);
    let [Action::Load { need, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    let out = e.on_loaded(j.id, need.clone(), Ok(Loaded { job: j, last_seen }));
    (e, out)
}

#[test]
fn a_driver_found_running_is_watched_again_and_stopped_if_it_should_not_run() {
    let running = || {
        Ok(Found::Running {
            driver_id: "d2".into(),
        })
    };
    let (e, out) = found(running_batch(3), running(), None);
    assert_eq!(
        commands(&out),
        [(
            JobId(3),
            Command::DriverLaunched {
                attempt: Attempt(1),
                driver_id: "d2".into()
            }
        )]
    );
    assert_eq!(e.running()[&JobId(3)].phase, Phase::Watched);

    let mut killed = running_batch(3);
    killed.kill_requested = true;
    let (_, out) = found(killed, running(), None);
    assert_eq!(lane_ops(&out).len(), 1, "stopped: {out:?}");

    // A session whose driver has not reconnected is recovering until it does.
    let (_, out) = found(idle_session(3), running(), None);
    assert!(
        matches!(&commands(&out)[1].1, Command::SessionRecovering { .. }),
        "{out:?}"
    );
    let (_, out) = found(idle_session(3), running(), Some(Instant::now()));
    assert_eq!(commands(&out).len(), 1, "linked already: {out:?}");
}

#[test]
fn a_driver_that_ended_unwatched_is_recorded_from_its_exit_code() {
    let (e, out) = found(
        running_batch(3),
        Ok(Found::Ended { exit_code: Some(2) }),
        None,
    );
    assert_eq!(
        commands(&out),
        [(
            JobId(3),
            Command::Finish {
                attempt: Attempt(1),
                outcome: Outcome::Failed {
                    reason: "the driver exited with code 2 while no node was watching it".into()
                },
                exit_code: Some(2)
            }
        )]
    );
    assert!(e.running().is_empty());
}

#[test]
fn a_launch_that_never_happened_is_issued_again_once_leadership_is_confirmed() {
    let (mut e, out) = found(running_batch(3), Ok(Found::Never), None);
    let [Action::ConfirmLeadership(Confirm::Reissue { job, now })] = out.as_slice() else {
        panic!("{out:?}")
    };
    let now = *now;
    // Not confirmed: looked up again later, not launched.
    let again = e.on_confirmed(
        Confirm::Reissue {
            job: job.clone(),
            now,
        },
        false,
    );
    assert!(again.is_empty());
    assert!(matches!(
        e.running()[&JobId(3)].phase,
        Phase::Finding { retry_at: Some(_) }
    ));
    let out = e.on_confirmed(
        Confirm::Reissue {
            job: job.clone(),
            now,
        },
        true,
    );
    let [LaneOp::Launch(spec)] = &lane_ops(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (spec.attempt, spec.driver_name.as_str()),
        (Attempt(1), "kindling-3-1"),
        "the same attempt, so the driver's name finds it if it exists after all"
    );
}

#[test]
fn a_launch_that_never_happened_for_a_killed_or_ended_job_is_not_issued() {
    let mut killed = running_batch(3);
    killed.kill_requested = true;
    killed.reason = Some("killed by a client".into());
    let (e, out) = found(killed, Ok(Found::Never), None);
    assert!(
        matches!(
            &commands(&out)[..],
            [(
                _,
                Command::Finish {
                    outcome: Outcome::Killed { .. },
                    ..
                }
            )]
        ),
        "{out:?}"
    );
    assert!(e.running().is_empty());
    let mut ended = running_batch(3);
    ended.state = JobState::Success;
    let (e, out) = found(ended, Ok(Found::Never), None);
    assert!(out.is_empty());
    assert!(e.running().is_empty());
}

#[test]
fn a_lookup_that_failed_is_tried_again_later() {
    let (mut e, out) = found(running_batch(3), Err("master away".into()), None);
    assert!(out.is_empty());
    let Phase::Finding { retry_at: Some(at) } = e.running()[&JobId(3)].phase else {
        panic!()
    };
    assert_eq!(lane_ops(&e.on_tick(at, 0)).len(), 1);
}
