//! Invariant 4: at most one scheduler acts per term, and the terms of scheduler events only
//! grow in log order. Read from every job's events as the nodes serve them (each with its
//! log position, origin, the scheduler's Raft term and the writing node): two nodes writing
//! scheduler events in one term means two leaders; a lower term after a higher one means a
//! deposed leader's write got into the log after its successor's (fencing failed).

use super::{Invariant, Observations, Violation};
use std::collections::{BTreeMap, BTreeSet};

const MAX_REGRESSIONS: usize = 10;

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::SchedulerTerms, m);
    let mut out = vec![];
    let mut writers: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut highest: Option<(u64, u64, u64)> = None; // (term, position, job)
    let mut regressions = 0;
    for (position, (job, e)) in o.log() {
        if e.origin != "scheduler" {
            continue;
        }
        let Some(term) = e.term else {
            out.push(v(format!(
                "job {job}: scheduler event {} at position {position} carries no term",
                e.kind
            )));
            continue;
        };
        writers.entry(term).or_default().insert(e.node);
        match highest {
            Some((t, p, j)) if term < t => {
                regressions += 1;
                if regressions <= MAX_REGRESSIONS {
                    out.push(v(format!(
                        "job {job}: {} of term {term} by node {} at position {position} comes after term {t} (job {j}, position {p})",
                        e.kind, e.node
                    )));
                }
            }
            Some((t, _, _)) if term == t => {}
            _ => highest = Some((term, position, job)),
        }
    }
    if regressions > MAX_REGRESSIONS {
        out.push(v(format!(
            "{} more scheduler events came after a higher term",
            regressions - MAX_REGRESSIONS
        )));
    }
    for (term, nodes) in writers {
        if nodes.len() > 1 {
            out.push(v(format!(
                "term {term} has scheduler events from {} nodes: {nodes:?}",
                nodes.len()
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    fn obs(jobs: &[(u64, &str, Vec<crate::collect::EventRecord>)]) -> Observations {
        Observations {
            snapshots: vec![node(1, jobs)],
            ..Default::default()
        }
    }

    #[test]
    fn passes_when_one_leader_per_term_and_terms_grow() {
        let o = obs(&[
            (1, "success", batch_events(0, 1, 1)),
            (2, "success", batch_events(10, 2, 3)),
            (3, "success", batch_events(20, 2, 3)),
        ]);
        assert_eq!(check(&o), vec![]);
    }

    #[test]
    fn fails_on_two_schedulers_in_one_term() {
        let o = obs(&[
            (1, "success", batch_events(0, 2, 1)),
            (2, "success", batch_events(10, 2, 3)),
        ]);
        let v = check(&o);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0]
            .message
            .contains("term 2 has scheduler events from 2 nodes"));
    }

    #[test]
    fn fails_when_a_deposed_leader_writes_after_its_successor() {
        let mut late = batch_events(0, 3, 2);
        late.push(event(12, "scheduler", Some(2), 1, "JobFinished"));
        let o = obs(&[(1, "success", late), (2, "success", batch_events(5, 3, 2))]);
        let v = check(&o);
        assert!(
            v.iter().any(|v| v
                .message
                .contains("of term 2 by node 1 at position 12 comes after term 3")),
            "{v:?}"
        );
    }

    #[test]
    fn fails_on_a_scheduler_event_without_a_term() {
        let mut ev = batch_events(0, 1, 1);
        ev[1].term = None;
        let v = check(&obs(&[(1, "success", ev)]));
        assert!(v[0].message.contains("carries no term"), "{v:?}");
    }
}
