//! `plan` case by case: submission order, limits, refusals, the sizing of drivers.

use super::*;
use crate::spec::{BatchSpec, JobKind, SparkResources};

pub(super) fn d(cores: u32, memory_mb: u64) -> Demand {
    Demand { cores, memory_mb }
}

pub(super) fn q(id: u64, owner: Option<&str>, cluster: &str, demand: Demand) -> QueuedJob {
    QueuedJob {
        id: JobId(id),
        owner: owner.map(str::to_string),
        cluster: cluster.into(),
        demand,
        queue: crate::queues::DEFAULT_QUEUE.into(),
        user: owner.map(str::to_string),
        priority: 0,
    }
}

pub(super) fn r(owner: Option<&str>, cluster: &str, demand: Demand) -> RunningJob {
    RunningJob {
        owner: owner.map(str::to_string),
        cluster: cluster.into(),
        demand,
        queue: crate::queues::DEFAULT_QUEUE.into(),
        user: owner.map(str::to_string),
    }
}

fn drivers(n: u32) -> Capacity {
    Capacity {
        max_drivers: Some(n),
        ..Capacity::default()
    }
}

/// The launched jobs' ids, in id order (the plan lists them in the order it chose them).
fn launched(p: &Plan) -> Vec<u64> {
    let mut ids: Vec<u64> = p.launches.iter().map(|l| l.job.0).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn fills_free_slots_in_submission_order() {
    let s = Snapshot {
        queued: vec![
            q(5, None, "a", d(1, 1024)),
            q(2, None, "a", d(1, 1024)),
            q(9, None, "a", d(1, 1024)),
        ],
        running: vec![r(None, "a", d(1, 1024))],
        clusters: [("a".to_string(), drivers(3))].into(),
        max_per_owner: None,
        queues: BTreeMap::new(),
    };
    let p = plan(&s);
    assert_eq!(launched(&p), [2, 5]);
    assert_eq!(
        p.waiting,
        [(
            JobId(9),
            WaitReason::Full {
                cluster: "a".into(),
                limit: Limit::Drivers(3)
            }
        )]
    );
}

#[test]
fn per_owner_limit_lets_others_pass() {
    let s = Snapshot {
        queued: vec![
            q(1, Some("ann"), "a", d(1, 1)),
            q(2, Some("ann"), "a", d(1, 1)),
            q(3, Some("bob"), "a", d(1, 1)),
        ],
        running: vec![r(Some("ann"), "a", d(1, 1))],
        clusters: [("a".to_string(), drivers(10))].into(),
        max_per_owner: Some(2),
        queues: BTreeMap::new(),
    };
    let p = plan(&s);
    assert_eq!(launched(&p), [1, 3]);
    assert!(matches!(
        &p.waiting[..],
        [(JobId(2), WaitReason::Owner { .. })]
    ));
}

#[test]
fn a_full_cluster_holds_back_its_own_later_jobs_but_not_another_clusters() {
    let s = Snapshot {
        queued: vec![
            q(1, None, "a", d(4, 1024)),
            q(2, None, "a", d(1, 1024)),
            q(3, None, "b", d(1, 1024)),
        ],
        running: vec![r(None, "a", d(2, 1024))],
        clusters: [
            (
                "a".to_string(),
                Capacity {
                    max_driver_cores: Some(4),
                    ..Capacity::default()
                },
            ),
            ("b".to_string(), drivers(1)),
        ]
        .into(),
        max_per_owner: None,
        queues: BTreeMap::new(),
    };
    let p = plan(&s);
    // Job 2 would fit, but job 1 came first and waits for cores: job 2 waits behind it.
    assert_eq!(launched(&p), [3]);
    assert_eq!(
        p.waiting,
        [
            (
                JobId(1),
                WaitReason::Full {
                    cluster: "a".into(),
                    limit: Limit::Cores(4)
                }
            ),
            (
                JobId(2),
                WaitReason::Behind {
                    cluster: "a".into(),
                    limit: Limit::Cores(4)
                }
            ),
        ]
    );
    assert!(p.waiting[0].1.to_string().contains("cluster 'a'"));
}

#[test]
fn unknown_clusters_and_jobs_bigger_than_a_cluster_are_refused_without_blocking() {
    let s = Snapshot {
        queued: vec![
            q(1, None, "gone", d(1, 1)),
            q(2, None, "a", d(1, 8192)),
            q(3, None, "a", d(1, 1024)),
        ],
        running: vec![],
        clusters: [(
            "a".to_string(),
            Capacity {
                max_driver_memory_mb: Some(4096),
                ..Capacity::default()
            },
        )]
        .into(),
        max_per_owner: None,
        queues: BTreeMap::new(),
    };
    let p = plan(&s);
    assert_eq!(launched(&p), [3]);
    assert_eq!(p.refused.len(), 2);
    assert!(p.refused[0]
        .1
        .to_string()
        .contains("cluster 'gone' does not exist"));
    assert!(
        p.refused[1].1.to_string().contains("8192 MB"),
        "{}",
        p.refused[1].1
    );
}

#[test]
fn demand_comes_from_the_request_then_the_conf_then_the_cluster_then_sparks_defaults() {
    let spec = |cores: Option<u32>, mem: Option<&str>, conf: &[(&str, &str)]| JobSpec {
        kind: JobKind::Batch(BatchSpec {
            file: "a.py".into(),
            class_name: None,
            args: vec![],
        }),
        name: None,
        owner: None,
        proxy_user: None,
        resources: SparkResources {
            driver_cores: cores,
            driver_memory: mem.map(str::to_string),
            conf: conf
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..SparkResources::default()
        },
    };
    let cluster: BTreeMap<String, String> = [("spark.driver.memory".into(), "512m".into())].into();
    assert_eq!(
        Demand::of(&spec(None, None, &[]), &BTreeMap::new()),
        d(1, 1024)
    );
    assert_eq!(Demand::of(&spec(None, None, &[]), &cluster), d(1, 512));
    assert_eq!(
        Demand::of(
            &spec(
                None,
                None,
                &[("spark.driver.cores", "3"), ("spark.driver.memory", "2g")]
            ),
            &cluster
        ),
        d(3, 2048)
    );
    assert_eq!(
        Demand::of(
            &spec(Some(2), Some("4g"), &[("spark.driver.cores", "3")]),
            &cluster
        ),
        d(2, 4096)
    );
    assert_eq!(
        Demand::of(&spec(None, Some("lots"), &[]), &cluster),
        d(1, 1024)
    );
    assert_eq!(memory_mb("2048k"), Some(2));
    assert_eq!(memory_mb("1t"), Some(1024 * 1024));
    assert_eq!(memory_mb("3GB"), Some(3072));
    assert_eq!(memory_mb("x"), None);
}
