//! Invariant 7: the cluster serves again within a stated bound after the last fault. Serving
//! means every member answers, all name the same leader, and a probe submission is
//! acknowledged. The bound is the run's `--recovery-bound` (30 s by default: a Raft election
//! of about a second, the new scheduler's catch-up barrier, and a Kafka consumer group join,
//! which takes about half a session timeout, with room to spare on a loaded 2-core machine).
//! A fault the harness could not heal (a node that would not restart) is a violation too.

use super::{Invariant, Observations, Violation};

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::Recovery, m);
    let bound = o.recovery_bound_ms;
    let mut out = vec![];
    for f in &o.faults {
        for n in &f.notes {
            out.push(v(format!(
                "fault {} ({:?}): {n}",
                f.index,
                f.fault.as_ref().map(|f| f.action.nemesis())
            )));
        }
    }
    if let Some(last) = o.faults.last() {
        match last.recovered_after_ms {
            Some(ms) if ms <= bound => {}
            Some(ms) => out.push(v(format!(
                "after the last fault the cluster served again in {ms} ms, over the bound of {bound} ms"
            ))),
            None => out.push(v(format!(
                "after the last fault the cluster did not serve again (probed for {} ms)",
                3 * bound
            ))),
        }
    }
    match o.final_recovery_ms {
        Some(ms) if ms <= bound => {}
        Some(ms) => out.push(v(format!(
            "after the final heal the cluster served again in {ms} ms, over the bound of {bound} ms"
        ))),
        None => out.push(v(
            "after the final heal the cluster did not serve again".into()
        )),
    }
    for n in &o.notes {
        out.push(v(n.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FaultRecord;

    fn obs(last: Option<u64>, fin: Option<u64>) -> Observations {
        Observations {
            faults: vec![
                FaultRecord {
                    index: 0,
                    recovered_after_ms: None,
                    ..Default::default()
                },
                FaultRecord {
                    index: 1,
                    recovered_after_ms: last,
                    ..Default::default()
                },
            ],
            final_recovery_ms: fin,
            recovery_bound_ms: 30_000,
            ..Default::default()
        }
    }

    #[test]
    fn passes_within_the_bound() {
        // Earlier faults that recovered late do not count; the last one does.
        assert_eq!(check(&obs(Some(1_200), Some(50))), vec![]);
    }

    #[test]
    fn fails_over_the_bound_or_never() {
        assert_eq!(check(&obs(Some(31_000), Some(50))).len(), 1);
        assert_eq!(check(&obs(None, None)).len(), 2);
    }

    #[test]
    fn fails_on_a_fault_that_could_not_heal() {
        let mut o = obs(Some(10), Some(10));
        o.faults[0]
            .notes
            .push("heal failed: node 2 printed no ready line".into());
        let v = check(&o);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("node 2 printed no ready line"));
    }
}
