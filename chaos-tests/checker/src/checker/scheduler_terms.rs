//! Invariant 4: at most one scheduler acts per term, and a deposed leader acts no more once a
//! newer one has. Read from the log (read once after healing) and every job's events as the
//! nodes serve them (each with its log position, origin, the leader's Raft term and the
//! writing node):
//! - every scheduler event carries a term;
//! - the events of one term (the scheduler's, and the commands the leader decided) come from
//!   one node: two writers in a term means two leaders;
//! - a deposed leader's late write, an event of an older term after one of a newer term in
//!   the log, counts nowhere: no node's served history and no fresh replay holds it. Without
//!   the broker's fence (`--kafka-transactions false`, as the harness runs on tansu) such
//!   writes reach the log and every reader must ignore them, the way a `read_committed`
//!   reader ignores an aborted transaction's records; so the terms of the events that count
//!   only grow. With the broker's fence, none may reach the log at all.

use super::{Invariant, Observations, Violation};
use std::collections::{BTreeMap, BTreeSet};

const MAX_SHOWN: usize = 10;

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::SchedulerTerms, m);
    let mut out = vec![];
    let mut writers: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let log = o.log();
    let every = log
        .iter()
        .map(|(p, (job, e))| (*p, Some(*job), e))
        .chain(o.cluster_events.iter().map(|e| (e.position, None, e)));
    for (position, job, e) in every {
        let Some(term) = e.term else {
            if e.origin == "scheduler" {
                let about = job.map_or("the cluster".to_string(), |j| format!("job {j}"));
                out.push(v(format!(
                    "{about}: scheduler event {} at position {position} carries no term",
                    e.kind
                )));
            }
            continue;
        };
        writers.entry(term).or_default().insert(e.node);
    }
    for (term, nodes) in writers {
        if nodes.len() > 1 {
            out.push(v(format!(
                "term {term} has leader events from {} nodes: {nodes:?}",
                nodes.len()
            )));
        }
    }
    let late = o.late_writes();
    if o.log_fenced && !late.is_empty() {
        let (p, (t, at)) = late.iter().next().unwrap();
        out.push(v(format!(
            "{} late write(s) of deposed leaders reached the log through the broker's fence, \
             first at position {p} (term {t} came first at {at})",
            late.len()
        )));
    }
    let mut counted = 0;
    for s in o.snapshots.iter().chain(o.fresh.iter()) {
        let who = if o.fresh.as_ref().is_some_and(|f| std::ptr::eq(f, s)) {
            "the fresh replay".to_string()
        } else {
            format!("node {}", s.node)
        };
        for (job, events) in &s.events {
            for e in events {
                let Some((newer, at)) = late.get(&e.position) else {
                    continue;
                };
                counted += 1;
                if counted <= MAX_SHOWN {
                    out.push(v(format!(
                        "{who} counts a deposed leader's late write: job {job}'s {} of term {} \
                         by node {} at position {}, after term {newer} at {at}",
                        e.kind,
                        e.term.unwrap_or_default(),
                        e.node,
                        e.position
                    )));
                }
            }
        }
    }
    if counted > MAX_SHOWN {
        out.push(v(format!(
            "{} more late writes are counted by some node",
            counted - MAX_SHOWN
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    fn obs(jobs: &[(u64, &str, Vec<crate::records::EventRecord>)]) -> Observations {
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
        assert!(o.late_writes().is_empty());
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
            .contains("term 2 has leader events from 2 nodes"));
    }

    #[test]
    fn a_command_decided_by_a_second_node_in_a_term_is_a_second_leader() {
        let mut ev = batch_events(0, 2, 1);
        ev.push(event(4, "api", Some(2), 3, "KillRequested"));
        let v = check(&obs(&[(1, "killed", ev)]));
        assert!(
            v[0].message
                .contains("term 2 has leader events from 2 nodes"),
            "{v:?}"
        );
    }

    /// A late write that is in the log but nobody counts: the fence held.
    fn late_but_ignored() -> Observations {
        let mut o = obs(&[(1, "success", batch_events(1, 3, 2))]);
        // Node 2 took over in term 3 with a marker at 0; node 1 (term 2) killed job 1 at 5.
        o.cluster_events = vec![event(0, "scheduler", Some(3), 2, "SchedulerMarker")];
        let mut in_log = batch_events(1, 3, 2);
        in_log.push(event(5, "api", Some(2), 1, "KillRequested"));
        o.events.insert(1, in_log);
        o
    }

    #[test]
    fn a_late_write_that_nobody_counts_passes_without_the_broker_fence() {
        let o = late_but_ignored();
        assert_eq!(
            o.late_writes().into_iter().collect::<Vec<_>>(),
            [(5, (3, 0))]
        );
        assert_eq!(check(&o), vec![]);
        assert!(
            o.job_events()[&1].iter().all(|e| e.kind != "KillRequested"),
            "the other checkers do not see it either"
        );
    }

    #[test]
    fn fails_when_a_late_write_reaches_a_log_behind_the_broker_fence() {
        let mut o = late_but_ignored();
        o.log_fenced = true;
        let v = check(&o);
        assert!(
            v[0].message
                .contains("1 late write(s) of deposed leaders reached the log"),
            "{v:?}"
        );
    }

    #[test]
    fn fails_when_a_node_counts_a_deposed_leaders_late_write() {
        let mut o = late_but_ignored();
        let late = o.events[&1].last().unwrap().clone();
        o.snapshots[0].events.get_mut(&1).unwrap().push(late);
        let v = check(&o);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains(
                "node 1 counts a deposed leader's late write: job 1's KillRequested of term 2 \
                 by node 1 at position 5, after term 3 at 0"
            ),
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
