//! Invariant 1: every acknowledged submission exists on every node and has reached a terminal
//! state once the faults stopped; no id was acknowledged to two submissions; and a batch that
//! nobody tried to kill ended as its program did (exit 0: `success`, otherwise `dead`).
//! Jobs nobody acknowledged (an `unknown` submission that did happen) must end too.

use super::{Invariant, Observations, Violation};
use crate::history::{OpKind, OpResult};
use std::collections::{BTreeMap, BTreeSet};

const TERMINAL: [&str; 4] = ["success", "dead", "killed", "error"];

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::Acknowledged, m);
    let mut out = vec![];
    let mut acked: BTreeMap<u64, Option<i32>> = BTreeMap::new();
    for op in &o.history {
        if !op.kind.submits() || op.result != OpResult::Ok {
            continue;
        }
        let Some(id) = op.job else { continue };
        if acked.insert(id, op.exit_code).is_some() {
            out.push(v(format!(
                "job id {id} was acknowledged to two submissions (the second by node {} at {} ms)",
                op.node, op.complete_ms
            )));
        }
    }
    // Jobs some client asked to kill or delete (unless that certainly failed).
    let killed: BTreeSet<u64> = o
        .history
        .iter()
        .filter(|op| matches!(op.kind, OpKind::KillJob | OpKind::DeleteJob))
        .filter(|op| op.result != OpResult::Fail)
        .filter_map(|op| op.job)
        .collect();
    let Some(reference) = o.reference() else {
        out.push(v("no node could be read after the faults stopped".into()));
        return out;
    };
    for s in o.snapshots.iter().chain(o.fresh.iter()) {
        if !s.errors.is_empty() {
            continue; // invariant 6 reports unreadable nodes
        }
        let states = s.states();
        let missing: Vec<u64> = acked
            .keys()
            .filter(|id| !states.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            out.push(v(format!(
                "node {} does not list {} acknowledged job(s): {}",
                s.node,
                missing.len(),
                ids(&missing)
            )));
        }
    }
    let states = reference.states();
    for (id, state) in &states {
        if !TERMINAL.contains(&state.as_str()) {
            let how = if acked.contains_key(id) {
                "acknowledged"
            } else {
                "unacknowledged"
            };
            out.push(v(format!(
                "{how} job {id} is still {state} after the faults stopped (node {})",
                reference.node
            )));
        }
    }
    let events = o.job_events();
    for (id, exit_code) in &acked {
        let (Some(state), Some(code)) = (states.get(id), exit_code) else {
            continue;
        };
        let kill_event = events.get(id).is_some_and(|ev| {
            ev.iter()
                .any(|e| e.kind == "KillRequested" || e.kind == "JobDeleted")
        });
        if killed.contains(id) || kill_event {
            continue;
        }
        let want = if *code == 0 { "success" } else { "dead" };
        if TERMINAL.contains(&state.as_str()) && state != want {
            out.push(v(format!(
                "batch {id} exited {code} and nobody killed it, but it ended {state} (expected {want})"
            )));
        }
    }
    out
}

fn ids(v: &[u64]) -> String {
    let shown: Vec<String> = v.iter().take(20).map(|i| i.to_string()).collect();
    let more = if v.len() > 20 {
        format!(" and {} more", v.len() - 20)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;
    use crate::history::Op;

    fn obs(states: &[(u64, &str)], history: Vec<Op>) -> Observations {
        let jobs: Vec<_> = states
            .iter()
            .map(|(id, s)| (*id, *s, batch_events(id * 10, 1, 1)))
            .collect();
        Observations {
            history,
            snapshots: vec![node(1, &jobs), node(2, &jobs)],
            fresh: Some(node(4, &jobs)),
            ..Default::default()
        }
    }

    #[test]
    fn passes_when_every_acknowledged_job_ended_as_expected() {
        let o = obs(
            &[(1, "success"), (2, "dead"), (3, "killed")],
            vec![
                submit(1, 0, 5, 0),
                submit(2, 1, 6, 1),
                submit(3, 2, 7, 0),
                {
                    let mut k = Op::new(0, OpKind::KillJob, 8, 9, OpResult::Unknown);
                    k.job = Some(3);
                    k
                },
            ],
        );
        assert_eq!(check(&o), vec![]);
    }

    #[test]
    fn fails_on_a_lost_job() {
        let o = obs(
            &[(1, "success")],
            vec![submit(1, 0, 5, 0), submit(2, 1, 6, 0)],
        );
        let v = check(&o);
        assert_eq!(v.len(), 3, "{v:?}"); // missing on both members and the fresh node
        assert!(v[0]
            .message
            .contains("does not list 1 acknowledged job(s): 2"));
    }

    #[test]
    fn fails_on_a_job_that_never_ends_or_ends_wrong() {
        let o = obs(
            &[(1, "running"), (2, "dead")],
            vec![submit(1, 0, 5, 0), submit(2, 1, 6, 0)],
        );
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].message.contains("job 1 is still running"));
        assert!(v[1].message.contains("batch 2 exited 0"));
    }

    #[test]
    fn fails_on_an_id_handed_out_twice() {
        let o = obs(
            &[(1, "success")],
            vec![submit(1, 0, 5, 0), submit(1, 1, 6, 0)],
        );
        assert!(check(&o)[0]
            .message
            .contains("acknowledged to two submissions"));
    }
}
