//! A deterministic simulation of the scheduler and its Raft glue, beside the real-process chaos
//! harness (`chaos-tests/`). The real `Core`, projector, `Scheduler` and driver gateway of three
//! (or five) nodes run in one current-thread tokio runtime on a paused clock, over one shared event
//! log (sled in a temporary file: fenced writers, ordered appends, as in production), with Raft and
//! the Spark cluster replaced by models ([`model`]). A seeded nemesis fails the leader over
//! (cleanly, with the deposed leader still believing it leads, or through a spell with no leader),
//! crashes and restarts nodes, makes the log's reads fail, makes appends fail before or after they
//! land, and makes the cluster unreachable or slow to launch; a seeded client submits batches and
//! kills jobs through random nodes meanwhile.
//!
//! Time is virtual: a minute of faults runs in about a second and a half (a debug build), so many
//! seeds run where the real harness runs one schedule. After the faults the simulation heals
//! everything, waits (in virtual time) for every job to end, and hands what it saw to the chaos
//! harness's own checker (`kindling_chaos_checker::checker`): the same invariants, the same
//! code.
//!
//! The seed fixes the workload, the fault schedule and the models' choices; the runtime is
//! single-threaded on a paused clock. tokio's `select!` still picks among ready branches at random,
//! so events that become ready together can land in either order from one run of a seed to the next
//! (docs/chaos.md, *Determinism*).

mod blind;
mod faults;
mod model;
mod observe;
mod stand_ins;
mod world;

use crate::clock::SystemClock;
use crate::core::{Core, Storage};
use crate::leader_terms::LeaderTerms;
use crate::leadership::{Member as RaftMember, MemberError};
use crate::reads::Reads;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::test_log::{AppendFault, ObservedLog};
use faults::{nemesis, serving_after};
use kindling_api_model::model::{EventDoc, JobDoc};
use kindling_backend::{BackendEvent, Backends};
use kindling_chaos_checker::checker::{self, Invariant, Observations, Violation};
use kindling_chaos_checker::history::{Op, OpKind, OpResult};
use kindling_chaos_checker::records::{EventRecord, NodeSnapshot};
use kindling_chaos_checker::rng::Rng;
use kindling_events::spec::{BatchSpec, JobKind, JobSpec};
use kindling_events::{
    Aggregate, Capacity, Cluster, ClusterConfig, Command, Envelope, Job, JobId, LogPosition,
    NodeId, Origin, DEFAULT_CLUSTER,
};
use kindling_store::{EventLog, JobQuery, ProjectionStore, SledEventLog, SledProjections};
use model::{ClusterFault, SimCluster, SimRaft};
use observe::{digest, observe, settle};
use stand_ins::{NoDrivers, OneBackend};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use world::World;

/// What one simulated run does.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    /// How long the workload and the faults go on (virtual time).
    pub duration: Duration,
    /// Whether leaders write through the log's fenced writer (`--kafka-transactions`); off,
    /// only the leader fence that readers apply stops a deposed leader's late writes.
    pub fenced_writes: bool,
    /// A fault of the simulation's own: the nodes' projections ignore the leader fence
    /// ([`blind::FenceBlind`]), to show the checker catches it.
    pub blind_readers: bool,
    /// The faults to draw from; all of them by default.
    pub faults: Vec<FaultKind>,
    /// Whether a fault may start while others are in force.
    pub overlap: bool,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            nodes: 3,
            duration: Duration::from_secs(60),
            fenced_writes: true,
            blind_readers: false,
            faults: FaultKind::ALL.to_vec(),
            overlap: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Leadership moves to another node; every node learns it at once.
    Failover,
    /// Leadership moves, and the old leader goes on believing it leads for a while.
    StaleLeader,
    /// A spell with no leader, then a new one.
    NoLeader,
    /// A node (the leader half the time) crashes and starts again later.
    Crash,
    /// Every read of the log fails for a while.
    ReadsDown,
    /// Appends fail, before they are written or after (the answer lost).
    AppendsFail,
    /// The Spark cluster does not answer, or launches take longer than the scheduler waits.
    ClusterDown,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Failover,
        FaultKind::StaleLeader,
        FaultKind::NoLeader,
        FaultKind::Crash,
        FaultKind::ReadsDown,
        FaultKind::AppendsFail,
        FaultKind::ClusterDown,
    ];
}

/// What a run saw, and what the checker made of it.
pub struct SimReport {
    pub seed: u64,
    pub ops: usize,
    pub faults: Vec<String>,
    pub launches: usize,
    pub jobs: usize,
    pub violations: Vec<Violation>,
    /// Deposed leaders' late writes in the log (which no reader may count).
    pub late_writes: usize,
    /// Every job's events, from the log.
    pub events: BTreeMap<u64, Vec<EventRecord>>,
    /// A digest of every job's events (positions, origins, terms, nodes, kinds and data):
    /// equal for two runs that wrote the same log.
    pub digest: u64,
    /// Virtual time the run covered, faults, healing and collection included.
    pub virtual_time: Duration,
}

/// Runs one simulation on a fresh current-thread runtime with a paused clock.
pub fn run(cfg: SimConfig) -> SimReport {
    // KINDLING_SIM_LOG=<filter> shows the nodes' logs, each line under its node's span.
    if let Ok(filter) = std::env::var("KINDLING_SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .without_time()
            .with_test_writer()
            .try_init();
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
        .block_on(simulate(cfg))
}

fn builtin_cluster() -> Cluster {
    Cluster {
        name: DEFAULT_CLUSTER.into(),
        config: ClusterConfig {
            capacity: Capacity {
                max_drivers: Some(8),
                ..Capacity::default()
            },
            ..ClusterConfig::local()
        },
        revision: LogPosition(0),
        registered_at_ms: 0,
        updated_at_ms: 0,
    }
}

fn batch(sleep_ms: u64, exit: i32) -> JobSpec {
    JobSpec {
        kind: JobKind::Batch(BatchSpec {
            file: "/sim/app.py".into(),
            class_name: None,
            args: vec![format!("sleep_ms={sleep_ms}"), format!("exit={exit}")],
        }),
        name: None,
        owner: None,
        proxy_user: None,
        resources: Default::default(),
    }
}

async fn simulate(cfg: SimConfig) -> SimReport {
    let members: Vec<u64> = (1..=cfg.nodes).collect();
    let raft = Arc::new(Mutex::new(SimRaft::new(&members)));
    let world = Arc::new(World {
        log: Arc::new(ObservedLog::new(
            SledEventLog::temporary().expect("a temporary log"),
        )),
        cluster: SimCluster::new(cfg.seed),
        raft,
        ids: Arc::new(AtomicU64::new(0)),
        nodes: Mutex::default(),
        started: Instant::now(),
        history: Mutex::default(),
        faults: Mutex::default(),
        cfg: cfg.clone(),
    });
    let cluster_clock = tokio::spawn(world.cluster.clone().run());
    for id in &members {
        world.start(*id).await;
    }
    world.raft.lock().unwrap().elect(Some(1), None);

    let stop = CancellationToken::new();
    let client = tokio::spawn(client(world.clone(), Rng::fork(cfg.seed, 1), stop.clone()));
    let nemesis = tokio::spawn(nemesis(world.clone(), Rng::fork(cfg.seed, 2), stop.clone()));
    sleep(cfg.duration).await;
    stop.cancel();
    let _ = client.await;
    let _ = nemesis.await;

    // Heal: every fault off, every node up, one leader everyone knows.
    world.log.set_reads_down(false);
    world.log.set_append_fault(AppendFault::None);
    world.cluster.set_fault(ClusterFault::None);
    for id in &members {
        if world.core(*id).is_none() {
            world.start(*id).await;
        }
    }
    let healed = world.now_ms();
    let leader = members[(cfg.seed % cfg.nodes) as usize];
    world.raft.lock().unwrap().elect(Some(leader), None);
    let final_recovery_ms = serving_after(&world, leader, healed).await;

    let settled = settle(&world, Duration::from_secs(300)).await;
    let mut notes = vec![];
    if let Err(e) = settled {
        notes.push(e);
    }
    let observations = observe(&world, &members, final_recovery_ms, notes).await;
    let violations = checker::check_all(&observations);
    let report = SimReport {
        seed: cfg.seed,
        ops: observations.history.len(),
        faults: world.faults.lock().unwrap().clone(),
        launches: observations.launches.len(),
        jobs: observations.events.len(),
        violations,
        late_writes: observations.late_writes().len(),
        digest: digest(&observations.events),
        events: observations.events.clone(),
        virtual_time: world.started.elapsed(),
    };
    for id in members {
        if let Some(n) = world.nodes.lock().unwrap().remove(&id) {
            n.crash();
        }
    }
    cluster_clock.abort();
    report
}

/// Submits batches through random nodes and kills random jobs through the leader, recording
/// each operation as the chaos harness's clients do.
async fn client(world: Arc<World>, mut rng: Rng, stop: CancellationToken) {
    let mut acked: Vec<u64> = vec![];
    let mut next_op = 0;
    while !stop.is_cancelled() {
        sleep(Duration::from_millis(rng.range(20, 300))).await;
        let live = world.live();
        if live.is_empty() {
            continue;
        }
        let node = live[rng.below(live.len())];
        let Some(core) = world.core(node) else {
            continue;
        };
        next_op += 1;
        let invoke_ms = world.now_ms();
        let mut op = Op::new(
            next_op,
            OpKind::SubmitBatch,
            invoke_ms,
            invoke_ms,
            OpResult::Unknown,
        );
        op.node = node;
        if acked.is_empty() || rng.chance(85) {
            let exit = if rng.chance(20) { 1 } else { 0 };
            let spec = batch(rng.range(100, 4_000), exit);
            op.exit_code = Some(exit);
            match core.submit(spec, None).await {
                Ok(job) => {
                    op.result = OpResult::Ok;
                    op.job = Some(job.id.0);
                    op.state = Some(job.state.as_str().into());
                    acked.push(job.id.0);
                }
                // An append that failed may have landed: the job may exist.
                Err(e) => op.error = Some(e.to_string()),
            }
        } else {
            let job = acked[rng.below(acked.len())];
            op.kind = OpKind::KillJob;
            op.job = Some(job);
            let kill = Command::Kill {
                reason: "killed by the simulation's client".into(),
            };
            match core.execute(JobId(job), Origin::Api, kill).await {
                Ok((j, _)) => {
                    op.result = OpResult::Ok;
                    op.state = Some(j.state.as_str().into());
                }
                Err(crate::error::Error::NotLeader(_)) => op.result = OpResult::Fail,
                Err(e) => op.error = Some(e.to_string()),
            }
        }
        op.complete_ms = world.now_ms();
        world.record(op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `KINDLING_SIM_SEEDS` seeds (else `default`) from `KINDLING_SIM_FIRST_SEED` (else 0).
    fn seeds(default: u64) -> std::ops::Range<u64> {
        let n = std::env::var("KINDLING_SIM_SEEDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        let first = std::env::var("KINDLING_SIM_FIRST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        first..first + n
    }

    fn describe(r: &SimReport) -> String {
        let violations: Vec<String> = r
            .violations
            .iter()
            .map(|v| format!("invariant {}: {}", v.invariant.number(), v.message))
            .collect();
        // The events of the first jobs a violation names.
        let named: Vec<String> = r
            .violations
            .iter()
            .filter_map(|v| {
                let words: Vec<&str> = v.message.split_whitespace().collect();
                let id: u64 = words.windows(2).find_map(|w| {
                    ["job", "batch"].contains(&w[0]).then_some(())?;
                    w[1].trim_end_matches(':').parse().ok()
                })?;
                let events = r.events.get(&id)?;
                let lines: Vec<String> = events
                    .iter()
                    .map(|e| {
                        format!(
                            "  {} {} {:?} node {} {}",
                            e.position, e.kind, e.term, e.node, e.data
                        )
                    })
                    .collect();
                Some(format!("job {id}:\n{}", lines.join("\n")))
            })
            .take(3)
            .collect();
        format!(
            "seed {}: {} ops, {} faults, {} jobs, {} launches, {:?} virtual\nviolations:\n{}\nfaults:\n{}\n{}",
            r.seed,
            r.ops,
            r.faults.len(),
            r.jobs,
            r.launches,
            r.virtual_time,
            violations.join("\n"),
            r.faults.join("\n"),
            named.join("\n")
        )
    }

    /// Every seed's minute of faults ends with nothing lost, nothing launched twice, terms
    /// that only grow and projections equal to a fresh replay.
    #[test]
    fn simulated_clusters_keep_every_invariant_under_seeded_faults() {
        let wall = std::time::Instant::now();
        let mut total_ops = 0;
        let mut total_faults = 0;
        for seed in seeds(16) {
            let r = run(SimConfig::new(seed));
            eprintln!(
                "seed {seed}: {} ops, {} faults, {} jobs, {} launches, {:?} virtual, log {:016x}",
                r.ops,
                r.faults.len(),
                r.jobs,
                r.launches,
                r.virtual_time,
                r.digest
            );
            if let Ok(dir) = std::env::var("KINDLING_SIM_DUMP") {
                let path = std::path::Path::new(&dir).join(format!("seed-{seed}.json"));
                std::fs::write(path, serde_json::to_string_pretty(&r.events).unwrap()).unwrap();
            }
            assert!(r.violations.is_empty(), "{}", describe(&r));
            assert!(r.launches > 10, "the workload ran: {}", describe(&r));
            total_ops += r.ops;
            total_faults += r.faults.len();
        }
        eprintln!(
            "simulated {} seeds ({total_ops} ops, {total_faults} faults) in {:?}",
            seeds(16).count(),
            wall.elapsed()
        );
    }

    /// Five nodes, with faults that overlap: a crash during a stale leader's spell, reads
    /// failing while the cluster is down, and so on.
    #[test]
    fn five_nodes_under_overlapping_faults_keep_every_invariant() {
        for seed in seeds(8) {
            let cfg = SimConfig {
                nodes: 5,
                overlap: true,
                ..SimConfig::new(seed)
            };
            let r = run(cfg);
            eprintln!(
                "seed {seed} (5 nodes, overlapping): {} ops, {} faults, {} launches",
                r.ops,
                r.faults.len(),
                r.launches
            );
            assert!(r.violations.is_empty(), "{}", describe(&r));
            assert!(r.launches > 10, "the workload ran: {}", describe(&r));
        }
    }

    /// The job events of a run that a leader wrote after an event of a newer term (in the
    /// job events alone), by kind.
    fn late_kinds(r: &SimReport) -> BTreeMap<String, usize> {
        let mut all: Vec<&EventRecord> = r.events.values().flatten().collect();
        all.sort_by_key(|e| e.position);
        let mut newest = 0;
        let mut late = BTreeMap::new();
        for e in all {
            let Some(term) = e.term else { continue };
            if term < newest {
                *late.entry(e.kind.clone()).or_default() += 1;
            }
            newest = newest.max(term);
        }
        late
    }

    /// Without the log's fence, a deposed leader that has not yet learned it lost goes on
    /// writing after its successor took over (what its drivers report), and those writes
    /// reach the log. Every reader ignores them (the leader fence) and the deposed leader is
    /// told they did not happen: every invariant holds. It decides nothing new meanwhile (no
    /// `JobScheduled` or `JobQueued` of its old term comes late): it confirms its leadership
    /// with a quorum before each round of decisions.
    #[test]
    fn without_the_log_fence_a_stale_leaders_late_writes_count_nowhere() {
        let mut late_writes = 0;
        for seed in 0..8 {
            let cfg = SimConfig {
                fenced_writes: false,
                faults: vec![FaultKind::StaleLeader],
                ..SimConfig::new(seed)
            };
            let r = run(cfg);
            assert!(r.violations.is_empty(), "{}", describe(&r));
            late_writes += r.late_writes;
            let late = late_kinds(&r);
            for decision in ["JobScheduled", "JobQueued"] {
                assert_eq!(late.get(decision), None, "seed {seed}: {late:?}");
            }
        }
        assert!(
            late_writes > 0,
            "no seed had a stale leader write after its successor: the test shows nothing"
        );
    }

    /// The simulation can fail: with readers blind to the leader fence, those late writes
    /// count, and invariant 4 says so.
    #[test]
    fn readers_blind_to_the_leader_fence_count_late_writes_and_invariant_4_says_so() {
        let mut broke = false;
        for seed in 0..8 {
            let cfg = SimConfig {
                fenced_writes: false,
                blind_readers: true,
                faults: vec![FaultKind::StaleLeader],
                ..SimConfig::new(seed)
            };
            let r = run(cfg);
            broke |= r.violations.iter().any(|v| {
                v.invariant == Invariant::SchedulerTerms
                    && v.message.contains("counts a deposed leader's late write")
            });
        }
        assert!(
            broke,
            "no seed showed a late write counted by a blind reader"
        );
    }
}
