//! Session lifetimes at each tick: ttl, idle timeout, heartbeats, the reconnect grace.

use super::*;

/// A tick's session check of `j` (the engine watching it), with the driver last heard from
/// `seen` ago.
fn check(e: &mut Engine, j: Job, now: Instant, now_ms: i64, seen: Option<Instant>) -> Vec<Action> {
    let out = e.on_tick(now, now_ms);
    let need = out
        .iter()
        .find_map(|a| match a {
            Action::Load { job, need } if *job == j.id => Some(need.clone()),
            _ => None,
        })
        .expect("every running driver is checked");
    e.on_loaded(
        j.id,
        need,
        Ok(Loaded {
            job: j,
            last_seen: seen,
        }),
    )
}

fn kill_reason(out: &[Action]) -> Option<String> {
    commands(out).into_iter().find_map(|(_, c)| match c {
        Command::Kill { reason } => Some(reason),
        _ => None,
    })
}

#[test]
fn ttl_and_idle_timeout_kill_a_session_that_outlived_them() {
    let now = Instant::now();
    let with = |ttl_: Option<DurationSpec>, idle: Option<DurationSpec>| {
        let mut j = idle_session(3);
        let kindling_events::JobKind::Session(s) = &mut j.spec.kind else {
            unreachable!()
        };
        s.ttl = ttl_;
        s.idle_timeout = idle;
        j
    };
    let since = |j: &Job| j.idle_since_ms.unwrap();
    let table: Vec<(&str, Job, i64, Option<&str>)> = vec![
        (
            "ttl passed",
            with(ttl("10m", 600_000), None),
            600_001,
            Some("ttl of 10m passed"),
        ),
        (
            "ttl not yet",
            with(ttl("10m", 600_000), None),
            599_000,
            None,
        ),
        (
            "idle too long",
            with(None, ttl("1m", 60_000)),
            60_001,
            Some("idle for longer than 1m"),
        ),
        ("idle not yet", with(None, ttl("1m", 60_000)), 59_000, None),
    ];
    for (case, j, after, want) in table {
        let mut e = watching(vec![j.clone()]);
        let base = if case.starts_with("ttl") {
            j.last_activity_ms
        } else {
            since(&j)
        };
        let out = check(&mut e, j, now, base + after, Some(now));
        let got = kill_reason(&out);
        match want {
            Some(w) => assert!(
                got.as_deref().is_some_and(|g| g.contains(w)),
                "{case}: {out:?}"
            ),
            None => assert!(got.is_none(), "{case}: {out:?}"),
        }
    }
}

#[test]
fn a_silent_driver_is_stopped_and_an_unlinked_one_marked_recovering() {
    let now = Instant::now();
    let j = idle_session(3);
    let mut e = watching(vec![j.clone()]);
    let seen = now - Duration::from_secs(11);
    let out = check(&mut e, j.clone(), now, 0, Some(seen));
    assert!(out.contains(&Action::ShutdownLink {
        job: JobId(3),
        reason: "the session was stopped"
    }));
    assert_eq!(lane_ops(&out).len(), 1, "{out:?}");
    assert_eq!(
        e.running()[&JobId(3)].doomed.as_deref(),
        Some("the driver sent no heartbeat for 10 s")
    );
    // Counted lost once, however often the silence is seen again.
    let lost = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::CountLostDriver { cluster } if cluster == "local"))
            .count()
    };
    assert_eq!(lost(&out), 1, "{out:?}");
    let again = check(&mut e, j.clone(), now, 0, Some(seen));
    assert_eq!(lost(&again), 0, "{again:?}");

    let mut e = watching(vec![j.clone()]);
    let fresh = check(
        &mut e,
        j.clone(),
        now,
        0,
        Some(now - Duration::from_secs(9)),
    );
    assert!(fresh.is_empty(), "{fresh:?}");
    let out = check(&mut e, j, now, 0, None);
    assert!(
        matches!(
            &commands(&out)[..],
            [(_, Command::SessionRecovering { .. })]
        ),
        "{out:?}"
    );
}

#[test]
fn a_recovering_driver_gets_its_grace_then_is_stopped() {
    let t0 = Instant::now();
    let mut j = idle_session(3);
    let mut e = watching(vec![j.clone()]);
    j.state = JobState::Recovering;
    assert!(check(&mut e, j.clone(), t0, 0, None).is_empty());
    let within = t0 + Duration::from_secs(30);
    assert!(check(&mut e, j.clone(), within, 0, None).is_empty());
    let past = t0 + Duration::from_secs(31);
    let out = check(&mut e, j, past, 0, None);
    assert_eq!(lane_ops(&out).len(), 1, "{out:?}");
    assert!(out.contains(&Action::CountLostDriver {
        cluster: "local".into()
    }));
    assert_eq!(
        e.running()[&JobId(3)].doomed.as_deref(),
        Some("the driver did not reconnect within 30 s")
    );
}

#[test]
fn a_batch_or_a_session_that_ended_is_left_alone() {
    let now = Instant::now();
    let mut e = watching(vec![running_batch(3)]);
    assert!(check(&mut e, running_batch(3), now, i64::MAX / 2, None).is_empty());
    let mut ended = idle_session(4);
    let mut e = watching(vec![ended.clone()]);
    ended.kill_requested = true;
    assert!(check(&mut e, ended, now, 0, None).is_empty());
}
