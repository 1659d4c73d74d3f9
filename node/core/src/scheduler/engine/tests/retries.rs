//! Retries under a restart policy: a failed attempt's job waits for its backoff, then is
//! planned again and launched as the next attempt; a kill while it waits ends the retries;
//! a new leader keeps the wait.

use super::*;

/// A batch retried up to 3 times in all, 2 s after its first failure.
fn retried_spec() -> JobSpec {
    let mut spec = batch_spec(None);
    for (k, v) in [
        ("kindling.restart.policy", "onFailure"),
        ("kindling.restart.maxAttempts", "3"),
        ("kindling.restart.backoff", "2s"),
    ] {
        spec.resources.conf.insert(k.into(), v.into());
    }
    spec
}

fn launched(id: u64, attempt: u32) -> Vec<Event> {
    vec![
        scheduled(attempt, id),
        Event::DriverLaunched {
            attempt: Attempt(attempt),
            driver_id: "d".into(),
        },
    ]
}

/// The job after its first attempt failed: what the domain decides on the driver's exit.
fn failed_once(id: u64) -> (Job, Event) {
    let job = job(id, retried_spec(), launched(id, 1));
    let finish = Command::Finish {
        attempt: Attempt(1),
        outcome: Outcome::Failed {
            reason: "exit 1".into(),
        },
        exit_code: Some(1),
    };
    let events = job.decide(finish).unwrap();
    let [failed @ Event::AttemptFailed {
        backoff_ms: 2000, ..
    }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    let mut after = job.clone();
    let mut env = job_env(id * 100 + 50, id, sched(), failed.clone());
    env.version = job.version + 1;
    after.apply(&env);
    (after, failed.clone())
}

fn launches(e: &Engine, now_ms: i64) -> Vec<JobId> {
    e.plan_round(now_ms)
        .iter()
        .find_map(|a| match a {
            Action::ConfirmLeadership(Confirm::Round(r)) => Some(r.launches.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn a_failed_attempt_is_launched_again_once_its_backoff_is_over() {
    let mut e = watching(vec![job(1, retried_spec(), launched(1, 1))]);
    assert!(e.running().contains_key(&JobId(1)));
    let (after, failed) = failed_once(1);
    // Logged at 1 s (the test log's clock): due at 3 s.
    let out = e.on_log(&job_env(150, 1, sched(), failed));
    assert_eq!(
        out,
        [Action::Load {
            job: JobId(1),
            need: Need::Retry
        }]
    );
    assert!(!e.running().contains_key(&JobId(1)), "its driver ended");
    assert_eq!(
        e.on_loaded(JobId(1), Need::Retry, loaded(after.clone())),
        [Action::CountRetry {
            cluster: "local".into()
        }]
    );
    assert_eq!(launches(&e, 2_999), Vec::<JobId>::new());
    assert_eq!(launches(&e, 3_000), [JobId(1)]);

    let r = match e.plan_round(3_000).into_iter().last() {
        Some(Action::ConfirmLeadership(Confirm::Round(r))) => r,
        other => panic!("{other:?}"),
    };
    let out = e.on_confirmed(Confirm::Round(r), true);
    let [Action::Load { need, .. }] = out.as_slice() else {
        panic!("{out:?}")
    };
    let out = e.on_loaded(JobId(1), need.clone(), loaded(after));
    let [Action::Schedule { driver_name, .. }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        *driver_name,
        kindling_backend::driver_name(JobId(1), Attempt(2)),
        "the next attempt has a driver of its own"
    );
}

#[test]
fn a_kill_while_a_retry_waits_ends_the_retries() {
    let mut e = watching(vec![job(1, retried_spec(), launched(1, 1))]);
    let (after, failed) = failed_once(1);
    e.on_log(&job_env(150, 1, sched(), failed));
    e.on_loaded(JobId(1), Need::Retry, loaded(after));
    let kill = Event::KillRequested {
        reason: "by ann".into(),
    };
    e.on_log(&job_env(151, 1, Origin::Api, kill));
    assert_eq!(e.queued().count(), 0);
    assert_eq!(launches(&e, i64::MAX), Vec::<JobId>::new());
}

#[test]
fn a_new_leader_keeps_a_retrys_wait() {
    let (after, _) = failed_once(1);
    let mut e = engine(4);
    let out = e.start(Term(TERM.0 + 1), vec![after], Registry::default());
    assert!(out.is_empty(), "nothing runs: {out:?}");
    assert_eq!(e.queued().collect::<Vec<_>>(), [JobId(1)]);
    // The failure was logged at 1 s (the test log's clock): due at 3 s.
    assert_eq!(launches(&e, 2_999), Vec::<JobId>::new());
    assert_eq!(launches(&e, 3_000), [JobId(1)]);
}
