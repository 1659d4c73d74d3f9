//! `plan` over time: rounds of a small simulation in which launched drivers run for a few
//! rounds and then end. No job waits forever while capacity for it keeps freeing, and busy
//! queues share a cluster in proportion to their weights.

use super::*;
use crate::queues::{QueueConfig, Queues};
use proptest::prelude::*;

/// A job of the simulation: when it arrives and how many rounds its driver runs.
#[derive(Debug, Clone)]
struct Arrival {
    round: u32,
    job: QueuedJob,
    runs_for: u32,
}

fn job(id: u64, queue: &str, user: &str, cores: u32, priority: i32) -> QueuedJob {
    QueuedJob {
        id: JobId(id),
        owner: Some(user.into()),
        cluster: "c".into(),
        demand: Demand {
            cores,
            memory_mb: 1024,
        },
        queue: queue.into(),
        user: Some(user.into()),
        priority,
    }
}

/// What a simulation saw: when each job launched, and the drivers each queue ran per round.
struct Run {
    launched: BTreeMap<JobId, u32>,
    per_round: Vec<BTreeMap<String, u64>>,
}

fn simulate(cap: Capacity, queues: Queues, arrivals: &[Arrival], rounds: u32) -> Run {
    let mut queued: Vec<QueuedJob> = vec![];
    let mut running: Vec<(RunningJob, u32)> = vec![];
    let mut run = Run {
        launched: BTreeMap::new(),
        per_round: vec![],
    };
    let runs_for: BTreeMap<JobId, u32> = arrivals.iter().map(|a| (a.job.id, a.runs_for)).collect();
    for round in 0..rounds {
        running.retain(|(_, ends)| *ends > round);
        queued.extend(
            arrivals
                .iter()
                .filter(|a| a.round == round)
                .map(|a| a.job.clone()),
        );
        let snapshot = Snapshot {
            queued: queued.clone(),
            running: running.iter().map(|(r, _)| r.clone()).collect(),
            clusters: [("c".to_string(), cap)].into(),
            queues: [("c".to_string(), queues.clone())].into(),
            max_per_owner: None,
        };
        let p = plan(&snapshot);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        for l in &p.launches {
            let i = queued.iter().position(|q| q.id == l.job).unwrap();
            let q = queued.remove(i);
            run.launched.insert(q.id, round);
            let r = RunningJob {
                owner: q.owner,
                cluster: q.cluster,
                demand: q.demand,
                queue: q.queue,
                user: q.user,
            };
            running.push((r, round + runs_for[&l.job]));
        }
        let mut per_queue: BTreeMap<String, u64> = BTreeMap::new();
        for (r, _) in &running {
            *per_queue.entry(r.queue.clone()).or_default() += u64::from(r.demand.cores);
        }
        run.per_round.push(per_queue);
    }
    run
}

fn cores(n: u32) -> Capacity {
    Capacity {
        max_driver_cores: Some(n),
        ..Capacity::default()
    }
}

fn weighted(weights: &[(&str, u32)]) -> Queues {
    Queues {
        queues: weights
            .iter()
            .map(|(q, w)| {
                let cfg = QueueConfig {
                    weight: *w,
                    limits: Capacity::default(),
                };
                (q.to_string(), cfg)
            })
            .collect(),
        max_drivers_per_user: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Arrivals for 40 rounds, then none: every job launches, each within a bound of the
    /// work ahead of it (each round either launches or waits for a driver to end).
    #[test]
    fn once_arrivals_stop_every_job_launches(
        jobs in prop::collection::vec(
            (0u32..40, prop::sample::select(vec!["a", "b", "c"]),
             prop::sample::select(vec!["ann", "bob"]), 1u32..9, -1i32..2, 1u32..5),
            1..60),
        weights in prop::collection::vec(1u32..4, 3),
        per_user in prop::option::of(1u32..3),
    ) {
        let arrivals: Vec<Arrival> = jobs.iter().enumerate().map(|(i, (round, q, u, c, p, d))| {
            Arrival { round: *round, job: job(i as u64 + 1, q, u, *c, *p), runs_for: *d }
        }).collect();
        let mut queues = weighted(&[("a", weights[0]), ("b", weights[1]), ("c", weights[2])]);
        queues.max_drivers_per_user = per_user;
        let bound = 40 + 5 * arrivals.len() as u32 + 5;
        let run = simulate(cores(8), queues, &arrivals, bound);
        for a in &arrivals {
            prop_assert!(run.launched.contains_key(&a.job.id), "job {} never launched", a.job.id);
        }
    }

    /// A driver that needs the whole cluster, in a queue of weight 1, while another queue
    /// (of any weight) keeps the cluster busy with a stream of small jobs: it still starts,
    /// and no small job submitted after it starts before it (the cluster holds its freed
    /// capacity for it; only the stream's older backlog may go first).
    #[test]
    fn a_big_job_is_not_starved_by_a_stream_of_small_ones(
        weight in 1u32..10,
        runs_for in 1u32..4,
        per_round in 2u64..6,
    ) {
        // Ids follow submission, as job ids do.
        let mut arrivals = vec![];
        let mut id = 1;
        let mut big = None;
        for round in 0..100 {
            if round == 10 {
                let b = Arrival { round, job: job(id, "big", "bob", 8, 0), runs_for: 1 };
                big = Some(b.clone());
                arrivals.push(b);
                id += 1;
            }
            for _ in 0..per_round {
                arrivals.push(Arrival { round, job: job(id, "stream", "ann", 1, 0), runs_for });
                id += 1;
            }
        }
        let big = big.unwrap();
        let run = simulate(cores(8), weighted(&[("stream", weight), ("big", 1)]), &arrivals, 100);
        let at = run.launched.get(&big.job.id).copied();
        prop_assert!(at.is_some(), "the big job never launched");
        let at = at.unwrap();
        for (id, round) in &run.launched {
            prop_assert!(
                *id <= big.job.id || *round >= at,
                "job {} (submitted after the big one) launched at round {}, before it at {}",
                id, round, at
            );
        }
    }

    /// Queues that always have work share a cluster as their weights say: over 150 rounds,
    /// each one's average part of the cluster is within 0.1 of its weighted share.
    #[test]
    fn busy_queues_share_by_weight(
        weights in prop::collection::vec(1u32..5, 2..4),
        durations in prop::collection::vec(1u32..5, 1800),
    ) {
        let names = ["q0", "q1", "q2", "q3"];
        let mut arrivals = vec![];
        for (i, runs_for) in durations.iter().enumerate() {
            let q = names[i % weights.len()];
            // Everything arrives at once: each queue is busy throughout.
            arrivals.push(Arrival { round: 0, job: job(i as u64 + 1, q, "ann", 1, 0), runs_for: *runs_for });
        }
        let cfg: Vec<(&str, u32)> = names.iter().copied().zip(weights.iter().copied()).collect();
        let run = simulate(cores(12), weighted(&cfg), &arrivals, 150);
        let total: u32 = weights.iter().sum();
        for (q, w) in &cfg {
            let used: u64 = run.per_round.iter().map(|r| r.get(*q).copied().unwrap_or(0)).sum();
            let share = used as f64 / (150.0 * 12.0);
            let target = f64::from(*w) / f64::from(total);
            prop_assert!((share - target).abs() <= 0.1, "queue {} of weight {}: {:.3}, not {:.3}", q, w, share, target);
        }
    }
}
