//! Properties of `plan` over random snapshots: limits never exceeded, each job decided once,
//! turn order within a queue and user, clusters independent, waits only for real reasons.

use super::tests::{d, q, r};
use super::*;
use crate::queues::{QueueConfig, Queues};
use proptest::prelude::*;
use std::collections::BTreeSet;

const CLUSTERS: [&str; 3] = ["a", "b", "c"];

fn demand() -> impl Strategy<Value = Demand> {
    (
        1u32..5,
        prop::sample::select(vec![512u64, 1024, 2048, 4096]),
    )
        .prop_map(|(c, m)| d(c, m))
}

fn capacity() -> impl Strategy<Value = Capacity> {
    (
        prop::option::of(0u32..5),
        prop::option::of(1u32..12),
        prop::option::of(prop::sample::select(vec![1024u64, 4096, 8192])),
    )
        .prop_map(
            |(max_drivers, max_driver_cores, max_driver_memory_mb)| Capacity {
                max_drivers,
                max_driver_cores,
                max_driver_memory_mb,
            },
        )
}

fn queues() -> impl Strategy<Value = Queues> {
    let queue = (1u32..4, capacity()).prop_map(|(weight, limits)| QueueConfig { weight, limits });
    (
        prop::collection::btree_map(prop::sample::select(QUEUES.to_vec()), queue, 0..3),
        prop::option::of(1u32..3),
    )
        .prop_map(|(queues, max_drivers_per_user)| Queues {
            queues: queues
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            max_drivers_per_user,
        })
}

const QUEUES: [&str; 3] = ["default", "etl", "adhoc"];

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let owner = prop::option::of(prop::sample::select(vec!["ann", "bob", "cy"]));
    // "d" is a cluster jobs name but that does not exist.
    let cluster = prop::sample::select(vec!["a", "b", "c", "a", "b", "d"]);
    let queue = prop::sample::select(QUEUES.to_vec());
    (
        prop::collection::vec(
            (
                0u64..50,
                owner.clone(),
                cluster.clone(),
                demand(),
                queue.clone(),
                -2i32..3,
            ),
            0..30,
        ),
        prop::collection::vec(
            (
                owner,
                prop::sample::select(CLUSTERS.to_vec()),
                demand(),
                queue,
            ),
            0..10,
        ),
        prop::collection::vec(capacity(), 3),
        prop::collection::vec(queues(), 3),
        prop::option::of(1usize..4),
    )
        .prop_map(|(queued, running, caps, policies, max_per_owner)| {
            // A job has one owner, cluster, demand, queue and priority: a job queued twice
            // repeats them.
            let mut first = BTreeMap::new();
            Snapshot {
                queued: queued
                    .into_iter()
                    .map(|(id, o, c, dm, qu, pr)| {
                        let (o, c, dm, qu, pr) = *first.entry(id).or_insert((o, c, dm, qu, pr));
                        QueuedJob {
                            queue: qu.into(),
                            priority: pr,
                            ..q(id, o, c, dm)
                        }
                    })
                    .collect(),
                running: running
                    .into_iter()
                    .map(|(o, c, dm, qu)| RunningJob {
                        queue: qu.into(),
                        ..r(o, c, dm)
                    })
                    .collect(),
                clusters: CLUSTERS.iter().map(|c| c.to_string()).zip(caps).collect(),
                queues: CLUSTERS
                    .iter()
                    .map(|c| c.to_string())
                    .zip(policies)
                    .collect(),
                max_per_owner,
            }
        })
}

/// Whether `u` keeps to every limit of `cap`.
fn within(u: &Usage, cap: &Capacity) -> bool {
    cap.max_drivers.is_none_or(|n| u.drivers <= u64::from(n))
        && cap.max_driver_cores.is_none_or(|n| u.cores <= u64::from(n))
        && cap.max_driver_memory_mb.is_none_or(|n| u.memory_mb <= n)
}

fn job(s: &Snapshot, id: JobId) -> &QueuedJob {
    s.queued.iter().find(|q| q.id == id).unwrap()
}

fn without_other_clusters(s: &Snapshot, cluster: &str) -> Snapshot {
    Snapshot {
        queued: s
            .queued
            .iter()
            .filter(|q| q.cluster == cluster)
            .cloned()
            .collect(),
        running: s
            .running
            .iter()
            .filter(|r| r.cluster == cluster)
            .cloned()
            .collect(),
        ..s.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn never_launches_over_a_clusters_capacity(s in snapshot()) {
        let p = plan(&s);
        let mut used: BTreeMap<String, Usage> = BTreeMap::new();
        for r in &s.running {
            used.entry(r.cluster.clone()).or_default().add(r.demand);
        }
        let before = used.clone();
        for l in &p.launches {
            let j = job(&s, l.job);
            used.entry(j.cluster.clone()).or_default().add(j.demand);
        }
        for (cluster, u) in &used {
            if before.get(cluster) == Some(u) {
                continue; // nothing launched there (what runs may exceed a lowered limit)
            }
            let cap = &s.clusters[cluster];
            prop_assert!(within(u, cap), "{} {:?} {:?}", cluster, u, cap);
        }
    }

    #[test]
    fn never_launches_over_a_queues_or_a_users_limit(s in snapshot()) {
        let p = plan(&s);
        let mut queue_used: BTreeMap<(String, String), (Usage, Usage)> = BTreeMap::new();
        let mut user_drivers: BTreeMap<(String, String), (u32, u32)> = BTreeMap::new();
        for r in &s.running {
            let e = queue_used.entry((r.cluster.clone(), r.queue.clone())).or_default();
            e.0.add(r.demand);
            e.1.add(r.demand);
            if let Some(u) = &r.user {
                let e = user_drivers.entry((r.cluster.clone(), u.clone())).or_default();
                e.0 += 1;
                e.1 += 1;
            }
        }
        for l in &p.launches {
            let j = job(&s, l.job);
            queue_used.entry((j.cluster.clone(), j.queue.clone())).or_default().1.add(j.demand);
            if let Some(u) = &j.user {
                user_drivers.entry((j.cluster.clone(), u.clone())).or_default().1 += 1;
            }
        }
        for ((cluster, queue), (before, after)) in &queue_used {
            let limits = s.queues[cluster].queue(queue).limits;
            if before != after {
                prop_assert!(within(after, &limits), "{}/{} {:?} {:?}", cluster, queue, after, limits);
            }
        }
        for ((cluster, user), (before, after)) in &user_drivers {
            if let Some(max) = s.queues[cluster].max_drivers_per_user {
                prop_assert!(before == after || *after <= max, "{} on {}: {} > {}", user, cluster, after, max);
            }
        }
    }

    #[test]
    fn every_queued_job_is_launched_waiting_or_refused_exactly_once(s in snapshot()) {
        let p = plan(&s);
        let mut seen = BTreeSet::new();
        let all = p.launches.iter().map(|l| l.job)
            .chain(p.waiting.iter().map(|w| w.0))
            .chain(p.refused.iter().map(|r| r.0));
        for id in all {
            prop_assert!(s.queued.iter().any(|q| q.id == id), "{} was not queued", id);
            prop_assert!(seen.insert(id), "{} decided twice", id);
        }
        let queued: BTreeSet<JobId> = s.queued.iter().map(|q| q.id).collect();
        prop_assert_eq!(seen, queued);
    }

    #[test]
    fn within_a_queue_and_user_jobs_start_by_priority_then_submission(s in snapshot()) {
        let p = plan(&s);
        let key = |q: &QueuedJob| (-q.priority, q.id);
        for l in &p.launches {
            let b = job(&s, l.job);
            for (a, reason) in &p.waiting {
                let a = job(&s, *a);
                let same = a.cluster == b.cluster && a.queue == b.queue && a.user == b.user;
                if same && key(a) < key(b) {
                    prop_assert!(
                        matches!(reason, WaitReason::Owner { .. }),
                        "job {} launched before job {} of its queue and user, which waits: {}",
                        b.id, a.id, reason
                    );
                }
            }
        }
    }

    #[test]
    fn one_cluster_never_holds_back_another(mut s in snapshot()) {
        // Owners are the one thing clusters share: without an owner limit, each cluster's
        // decisions are those it gets alone.
        s.max_per_owner = None;
        let p = plan(&s);
        for cluster in ["a", "b", "c", "d"] {
            let alone = plan(&without_other_clusters(&s, cluster));
            let mine = |p: &Plan| -> Plan {
                let of = |id: &JobId| job(&s, *id).cluster == cluster;
                Plan {
                    launches: p.launches.iter().filter(|l| of(&l.job)).copied().collect(),
                    waiting: p.waiting.iter().filter(|w| of(&w.0)).cloned().collect(),
                    refused: p.refused.iter().filter(|r| of(&r.0)).cloned().collect(),
                }
            };
            prop_assert_eq!(mine(&p), mine(&alone), "cluster {}", cluster);
        }
    }

    #[test]
    fn a_job_waits_for_room_only_when_it_does_not_fit(s in snapshot()) {
        let p = plan(&s);
        let mut used: BTreeMap<&str, Usage> = usage(&s);
        for l in &p.launches {
            let j = job(&s, l.job);
            used.entry(j.cluster.as_str()).or_default().add(j.demand);
        }
        for (id, reason) in &p.waiting {
            let j = job(&s, *id);
            if let WaitReason::Full { cluster, limit } = reason {
                // Nothing launches on a cluster after its first job that waits for room, so
                // what it runs now is what it ran when that job was looked at.
                let u = used.get(cluster.as_str()).copied().unwrap_or_default();
                prop_assert_eq!(no_room(&s.clusters[cluster], u, j.demand), Some(*limit));
            }
        }
    }

    #[test]
    fn without_limits_everything_on_a_known_cluster_launches(mut s in snapshot()) {
        s.max_per_owner = None;
        for cap in s.clusters.values_mut() {
            *cap = Capacity::default();
        }
        s.queues.clear();
        let p = plan(&s);
        prop_assert!(p.waiting.is_empty());
        for (_, refusal) in &p.refused {
            let unknown = matches!(refusal, Refusal::UnknownCluster { .. });
            prop_assert!(unknown);
        }
    }
}
