//! Invariant 6: after healing, every node's projections equal a fresh replay of the log.
//! Every member's job listing, sampled job documents and histories, and statements are
//! compared with those of a spare node started at the end on an empty projection database,
//! which can only have built them by replaying the log; and every node's histories with the
//! log itself, read once. A node that cannot be read, or a missing fresh replay,
//! is a violation too: the comparison could not be made.

use super::{Invariant, Observations, Violation};
use crate::records::{EventRecord, NodeSnapshot};
use serde_json::Value;
use std::collections::BTreeMap;

/// The first difference between two maps of per-job values, if any.
fn first_difference<T: PartialEq + std::fmt::Debug>(
    what: &str,
    a: &BTreeMap<u64, T>,
    b: &BTreeMap<u64, T>,
) -> Option<String> {
    let missing: Vec<u64> = a.keys().filter(|k| !b.contains_key(k)).copied().collect();
    let extra: Vec<u64> = b.keys().filter(|k| !a.contains_key(k)).copied().collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Some(format!(
            "{what}: jobs only in the fresh replay {missing:?}, jobs only on this node {extra:?}"
        ));
    }
    let differ: Vec<u64> = a
        .iter()
        .filter(|(k, v)| b.get(k) != Some(v))
        .map(|(k, _)| *k)
        .collect();
    let first = *differ.first()?;
    Some(format!(
        "{what} of {} job(s) differ, first job {first}: fresh {:?} vs {:?}",
        differ.len(),
        abbreviate(&a[&first]),
        abbreviate(&b[&first])
    ))
}

fn abbreviate<T: std::fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    if s.len() > 400 {
        format!("{}...", &s[..400])
    } else {
        s
    }
}

fn listing(s: &NodeSnapshot) -> BTreeMap<u64, Value> {
    s.listing
        .iter()
        .filter_map(|j| Some((j["id"].as_u64()?, j.clone())))
        .collect()
}

pub fn check(o: &Observations) -> Vec<Violation> {
    let v = |m: String| Violation::new(Invariant::Projections, m);
    let mut out = vec![];
    for s in o.snapshots.iter().chain(o.fresh.iter()) {
        for e in s.errors.iter().take(3) {
            out.push(v(format!("node {} could not be read: {e}", s.node)));
        }
    }
    let Some(fresh) = o.fresh.as_ref().filter(|f| f.errors.is_empty()) else {
        if o.fresh.is_none() {
            out.push(v(
                "no fresh replay to compare with (the spare node did not serve)".into(),
            ));
        }
        return out;
    };
    for s in o.snapshots.iter().filter(|s| s.errors.is_empty()) {
        let diffs = [
            first_difference("listings", &listing(fresh), &listing(s)),
            first_difference("job documents", &fresh.docs, &s.docs),
            first_difference("events", &fresh.events, &s.events),
            first_difference("statements", &fresh.statements, &s.statements),
        ];
        for d in diffs.into_iter().flatten() {
            out.push(v(format!("node {} vs the fresh replay: {d}", s.node)));
        }
    }
    // Each node's history of a job (the log's events at the positions its projections list)
    // must be the log's own account of that job (the events that count: no deposed leader's
    // late write), up to where the log ended when it was read: the nodes were read after it,
    // and the cluster may have written since.
    if !o.events.is_empty() {
        let counted = o.job_events();
        let read = |ev: &[EventRecord]| -> Vec<EventRecord> {
            ev.iter()
                .filter(|e| o.events_end.is_none_or(|end| e.position < end))
                .cloned()
                .collect()
        };
        for s in o.snapshots.iter().chain(o.fresh.iter()) {
            let differ: Vec<u64> = s
                .events
                .iter()
                .filter(|(job, ev)| {
                    counted
                        .get(job)
                        .map_or(!read(ev).is_empty(), |l| *l != read(ev))
                })
                .map(|(job, _)| *job)
                .collect();
            if let Some(first) = differ.first() {
                out.push(v(format!(
                    "node {}'s history of {} job(s) differs from the log, first job {first}: log {} vs {}",
                    s.node,
                    differ.len(),
                    abbreviate(&counted.get(first)),
                    abbreviate(&s.events[first])
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;
    use serde_json::json;

    fn jobs() -> Vec<(u64, &'static str, Vec<crate::records::EventRecord>)> {
        vec![
            (1, "success", batch_events(0, 1, 1)),
            (2, "dead", batch_events(4, 1, 1)),
        ]
    }

    fn obs() -> Observations {
        Observations {
            snapshots: vec![node(1, &jobs()), node(2, &jobs()), node(3, &jobs())],
            fresh: Some(node(4, &jobs())),
            ..Default::default()
        }
    }

    #[test]
    fn passes_when_every_node_equals_the_replay() {
        assert_eq!(check(&obs()), vec![]);
    }

    #[test]
    fn fails_on_a_stale_document() {
        let mut o = obs();
        o.snapshots[1]
            .docs
            .insert(2, json!({"id": 2, "state": "running"}));
        let v = check(&o);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.starts_with(
            "node 2 vs the fresh replay: job documents of 1 job(s) differ, first job 2"
        ));
    }

    #[test]
    fn fails_on_a_missing_job_or_an_unreadable_node() {
        let mut o = obs();
        o.snapshots[0].listing.pop();
        o.snapshots[2].errors.push("connection refused".into());
        let v = check(&o);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].message.contains("node 3 could not be read"));
        assert!(v[1].message.contains("jobs only in the fresh replay [2]"));
    }

    #[test]
    fn fails_when_a_nodes_history_of_a_job_is_not_the_logs() {
        let mut o = obs();
        o.events = jobs().into_iter().map(|(id, _, ev)| (id, ev)).collect();
        assert_eq!(check(&o), vec![]);
        // The nodes were read after the log, and the cluster wrote on meanwhile: a node may
        // hold events past where the log was read.
        let end = o
            .events
            .values()
            .flatten()
            .map(|e| e.position)
            .max()
            .unwrap()
            + 1;
        o.events_end = Some(end);
        for s in o.snapshots.iter_mut().chain(o.fresh.iter_mut()) {
            let later = s.events[&2].last().unwrap().clone();
            s.events.get_mut(&2).unwrap().push(EventRecord {
                position: end + 5,
                ..later
            });
        }
        assert_eq!(check(&o), vec![]);
        // A projection that lost one event of job 2's history (below the log's end), on
        // every node alike: only the log shows it.
        for s in o.snapshots.iter_mut().chain(o.fresh.iter_mut()) {
            s.events.get_mut(&2).unwrap().pop();
        }
        for s in o.snapshots.iter_mut().chain(o.fresh.iter_mut()) {
            s.events.get_mut(&2).unwrap().pop();
        }
        let v = check(&o);
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(v[0]
            .message
            .starts_with("node 1's history of 1 job(s) differs from the log, first job 2"));
    }

    #[test]
    fn fails_without_a_fresh_replay() {
        let mut o = obs();
        o.fresh = None;
        assert_eq!(check(&o).len(), 1);
    }
}
