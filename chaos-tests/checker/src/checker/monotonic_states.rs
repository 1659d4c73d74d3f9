//! Invariant 3: every job's state, as seen by any client through any node, only moves
//! forward in real time. If one read completed before another was invoked, the later one
//! may not show an earlier state; once a terminal state has been seen, every later read
//! shows that same state. Livy's states are ranked
//!
//! `absent < not_started < starting < {idle, busy, running, recovering} < shutting_down < terminal`
//!
//! where `absent` is a native read's 404 (a job a client was told exists must stay visible)
//! and moves within the middle rank (a session going idle <-> busy, or recovering) are free.

use super::{Invariant, Observations, Violation};
use crate::history::{Op, OpKind, OpResult};
use std::collections::BTreeMap;

pub fn rank(state: &str) -> Option<u8> {
    Some(match state {
        "absent" => 0,
        "not_started" => 1,
        "starting" => 2,
        "idle" | "busy" | "running" | "recovering" => 3,
        "shutting_down" => 4,
        "success" | "dead" | "killed" | "error" => 5,
        _ => return None,
    })
}

fn observes_job(op: &Op) -> bool {
    op.result == OpResult::Ok
        && matches!(
            op.kind,
            OpKind::ReadJob
                | OpKind::SubmitBatch
                | OpKind::CreateSession
                | OpKind::Probe
                | OpKind::KillJob
        )
}

fn describe(op: &Op) -> String {
    format!(
        "{} via node {} [{}..{} ms]",
        op.state.as_deref().unwrap_or("?"),
        op.node,
        op.invoke_ms,
        op.complete_ms
    )
}

/// At most this many messages per job: one regression tends to repeat on every read.
const PER_JOB: usize = 3;

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::MonotonicStates, m);
    let mut out = vec![];
    let mut by_job: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in o.history.iter().filter(|op| observes_job(op)) {
        if let (Some(job), Some(state)) = (op.job, op.state.as_deref()) {
            if rank(state).is_none() {
                out.push(v(format!(
                    "job {job}: a client saw an unknown state {state:?}"
                )));
                continue;
            }
            by_job.entry(job).or_default().push(op);
        }
    }
    for (job, obs) in by_job {
        let mut by_complete = obs.clone();
        by_complete.sort_by_key(|o| o.complete_ms);
        let mut by_invoke = obs;
        by_invoke.sort_by_key(|o| o.invoke_ms);
        let mut i = 0;
        let mut highest: Option<&Op> = None;
        let mut terminal: Option<&Op> = None;
        let mut found = 0;
        for b in by_invoke {
            while i < by_complete.len() && by_complete[i].complete_ms < b.invoke_ms {
                let a = by_complete[i];
                let ra = rank(a.state.as_deref().unwrap()).unwrap();
                if highest.is_none_or(|h| ra > rank(h.state.as_deref().unwrap()).unwrap()) {
                    highest = Some(a);
                }
                if ra == 5 && terminal.is_none() {
                    terminal = Some(a);
                }
                i += 1;
            }
            if found >= PER_JOB {
                break;
            }
            let rb = rank(b.state.as_deref().unwrap()).unwrap();
            if let Some(h) = highest {
                if rb < rank(h.state.as_deref().unwrap()).unwrap() {
                    found += 1;
                    out.push(v(format!(
                        "job {job} went back: {} after {}",
                        describe(b),
                        describe(h)
                    )));
                    continue;
                }
            }
            if let Some(t) = terminal {
                if b.state != t.state {
                    found += 1;
                    out.push(v(format!(
                        "job {job} changed its end: {} after {}",
                        describe(b),
                        describe(t)
                    )));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    fn obs(history: Vec<Op>) -> Observations {
        Observations {
            history,
            ..Default::default()
        }
    }

    #[test]
    fn passes_when_states_move_forward_or_overlap() {
        let v = check(&obs(vec![
            submit(1, 0, 10, 0),
            read(1, 11, 20, "starting"),
            read(1, 21, 30, "running"),
            // Concurrent with the read above: either order is possible.
            read(1, 22, 29, "starting"),
            read(1, 31, 40, "success"),
            read(1, 41, 50, "success"),
        ]));
        assert_eq!(v, vec![]);
        // Sessions move freely between idle and busy.
        let v = check(&obs(vec![
            read(2, 0, 1, "idle"),
            read(2, 2, 3, "busy"),
            read(2, 4, 5, "idle"),
            read(2, 6, 7, "recovering"),
            read(2, 8, 9, "idle"),
        ]));
        assert_eq!(v, vec![]);
    }

    #[test]
    fn fails_when_a_later_read_goes_back() {
        let v = check(&obs(vec![
            read(1, 0, 10, "running"),
            read(1, 11, 20, "starting"),
        ]));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("job 1 went back: starting"), "{v:?}");
    }

    #[test]
    fn fails_when_an_acknowledged_job_disappears() {
        let v = check(&obs(vec![submit(1, 0, 10, 0), read(1, 11, 20, "absent")]));
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn fails_when_a_terminal_state_changes() {
        let v = check(&obs(vec![
            read(1, 0, 10, "success"),
            read(1, 11, 20, "dead"),
        ]));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("changed its end"), "{v:?}");
    }
}
