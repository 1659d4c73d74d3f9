//! The scheduler's placement decision: given what is queued and what runs, which jobs to
//! launch now. A pure function over a snapshot; the node's scheduler loop executes it.
//!
//! Policy: first come, first served (by job id, which follows submission order) under a
//! limit of concurrent drivers, with an optional per-owner limit so one user cannot take
//! every slot.

use crate::ids::JobId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: JobId,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Jobs waiting for a driver, in any order.
    pub queued: Vec<QueuedJob>,
    /// Owners of the drivers that run (one entry per running driver).
    pub running_owners: Vec<Option<String>>,
    /// How many drivers may run at once.
    pub max_drivers: usize,
    /// How many drivers one owner may run at once (`None`: no limit).
    pub max_per_owner: Option<usize>,
}

/// Launch this job's next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub job: JobId,
}

pub fn plan(snapshot: &Snapshot) -> Vec<Launch> {
    let mut free = snapshot
        .max_drivers
        .saturating_sub(snapshot.running_owners.len());
    let mut per_owner: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for o in &snapshot.running_owners {
        *per_owner.entry(o.as_deref()).or_default() += 1;
    }
    let mut queue: Vec<&QueuedJob> = snapshot.queued.iter().collect();
    queue.sort_by_key(|q| q.id);
    queue.dedup_by_key(|q| q.id);
    let mut launches = Vec::new();
    for q in queue {
        if free == 0 {
            break;
        }
        let used = per_owner.entry(q.owner.as_deref()).or_default();
        if let Some(limit) = snapshot.max_per_owner {
            if q.owner.is_some() && *used >= limit {
                continue;
            }
        }
        *used += 1;
        free -= 1;
        launches.push(Launch { job: q.id });
    }
    launches
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(id: u64, owner: Option<&str>) -> QueuedJob {
        QueuedJob {
            id: JobId(id),
            owner: owner.map(str::to_string),
        }
    }

    #[test]
    fn fills_free_slots_in_submission_order() {
        let s = Snapshot {
            queued: vec![q(5, None), q(2, None), q(9, None)],
            running_owners: vec![None],
            max_drivers: 3,
            max_per_owner: None,
        };
        assert_eq!(
            plan(&s),
            vec![Launch { job: JobId(2) }, Launch { job: JobId(5) }]
        );
    }

    #[test]
    fn per_owner_limit_lets_others_pass() {
        let s = Snapshot {
            queued: vec![q(1, Some("ann")), q(2, Some("ann")), q(3, Some("bob"))],
            running_owners: vec![Some("ann".into())],
            max_drivers: 10,
            max_per_owner: Some(2),
        };
        assert_eq!(
            plan(&s),
            vec![Launch { job: JobId(1) }, Launch { job: JobId(3) }]
        );
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let owner = prop::option::of(prop::sample::select(vec!["a", "b", "c"]));
        (
            prop::collection::vec((0u64..50, owner.clone()), 0..30),
            prop::collection::vec(owner, 0..10),
            0usize..12,
            prop::option::of(1usize..4),
        )
            .prop_map(|(queued, running, max_drivers, max_per_owner)| {
                // A job has one owner: a job queued twice repeats it.
                let mut owners = BTreeMap::new();
                Snapshot {
                    queued: queued
                        .into_iter()
                        .map(|(id, o)| q(id, *owners.entry(id).or_insert(o)))
                        .collect(),
                    running_owners: running.into_iter().map(|o| o.map(str::to_string)).collect(),
                    max_drivers,
                    max_per_owner,
                }
            })
    }

    proptest! {
        #[test]
        fn never_exceeds_capacity(s in snapshot()) {
            let launches = plan(&s);
            prop_assert!(s.running_owners.len() + launches.len() <= s.max_drivers.max(s.running_owners.len()));
        }

        #[test]
        fn launches_only_queued_jobs_once(s in snapshot()) {
            let launches = plan(&s);
            let mut seen = std::collections::BTreeSet::new();
            for l in &launches {
                prop_assert!(s.queued.iter().any(|q| q.id == l.job));
                prop_assert!(seen.insert(l.job), "launched twice: {}", l.job);
            }
        }

        #[test]
        fn respects_owner_limit(s in snapshot()) {
            let launches = plan(&s);
            if let Some(limit) = s.max_per_owner {
                for owner in ["a", "b", "c"] {
                    let running = s.running_owners.iter().filter(|o| o.as_deref() == Some(owner)).count();
                    let new = launches.iter().filter(|l| s.queued.iter().any(|q| q.id == l.job && q.owner.as_deref() == Some(owner))).count();
                    prop_assert!(new == 0 || running + new <= limit);
                }
            }
        }

        #[test]
        fn no_idle_slot_while_an_eligible_job_waits(s in snapshot()) {
            let launches = plan(&s);
            let free = s.max_drivers.saturating_sub(s.running_owners.len());
            if launches.len() < free {
                // Every queued job not launched must be blocked by its owner's limit.
                for qj in &s.queued {
                    if launches.iter().any(|l| l.job == qj.id) { continue; }
                    prop_assert!(s.max_per_owner.is_some() && qj.owner.is_some(), "job {} left waiting", qj.id);
                }
            }
        }

        #[test]
        fn older_jobs_go_first_without_owner_limits(mut s in snapshot()) {
            s.max_per_owner = None;
            let launches = plan(&s);
            if let Some(last) = launches.last() {
                for qj in &s.queued {
                    if qj.id < last.job {
                        prop_assert!(launches.iter().any(|l| l.job == qj.id));
                    }
                }
            }
        }
    }
}
