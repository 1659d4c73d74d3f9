//! The simulation's nemesis: seeded faults drawn from the run's kinds (failovers, crashes
//! and restarts, log reads that fail, appends that fail before or after they land, a cluster
//! unreachable or slow), applied one after another or overlapping, each healed in the end;
//! and how long a leader takes to schedule after the faults.

use super::*;

/// Applies seeded faults: one after another, each healed before the next, or (with
/// `overlap`) each started while others may still be in force.
pub(super) async fn nemesis(world: Arc<World>, mut rng: Rng, stop: CancellationToken) {
    let kinds = world.cfg.faults.clone();
    let mut in_force = vec![];
    while !stop.is_cancelled() {
        sleep(Duration::from_millis(rng.range(300, 2_500))).await;
        let kind = kinds[rng.below(kinds.len())];
        let fault = draw(&world, &mut rng, kind);
        if world.cfg.overlap {
            in_force.push(tokio::spawn(apply(world.clone(), fault)));
        } else {
            apply(world.clone(), fault).await;
        }
    }
    for f in in_force {
        let _ = f.await;
    }
}

/// One fault, with every choice drawn.
enum Fault {
    Failover {
        to: Option<u64>,
    },
    StaleLeader {
        to: Option<u64>,
        span: Duration,
    },
    NoLeader {
        span: Duration,
        then: u64,
    },
    Crash {
        victim: u64,
        span: Duration,
        then: Option<u64>,
    },
    ReadsDown {
        span: Duration,
    },
    AppendsFail {
        fault: AppendFault,
        span: Duration,
    },
    ClusterDown {
        fault: ClusterFault,
        span: Duration,
    },
}

fn draw(world: &World, rng: &mut Rng, kind: FaultKind) -> Fault {
    let leader = world.raft.lock().unwrap().leader();
    let others: Vec<u64> = (1..=world.cfg.nodes)
        .filter(|m| Some(*m) != leader && world.core(*m).is_some())
        .collect();
    let pick = |rng: &mut Rng, from: &[u64]| from.get(rng.below(from.len().max(1))).copied();
    let span = Duration::from_millis(rng.range(200, 4_000));
    match kind {
        FaultKind::Failover => Fault::Failover {
            to: pick(rng, &others),
        },
        FaultKind::StaleLeader => Fault::StaleLeader {
            to: pick(rng, &others),
            span,
        },
        FaultKind::NoLeader => Fault::NoLeader {
            span,
            then: rng.range(1, world.cfg.nodes),
        },
        FaultKind::Crash => {
            let victim = if rng.chance(50) {
                leader
            } else {
                pick(rng, &others)
            };
            let then = pick(rng, &others);
            match victim {
                Some(victim) => Fault::Crash { victim, span, then },
                None => Fault::Failover { to: then },
            }
        }
        FaultKind::ReadsDown => Fault::ReadsDown { span },
        FaultKind::AppendsFail => Fault::AppendsFail {
            fault: if rng.chance(50) {
                AppendFault::Refused
            } else {
                AppendFault::AnswerLost
            },
            span,
        },
        FaultKind::ClusterDown => Fault::ClusterDown {
            fault: if rng.chance(50) {
                ClusterFault::Unreachable
            } else {
                ClusterFault::Slow
            },
            span,
        },
    }
}

/// Applies `fault` and heals it when its span is over.
async fn apply(world: Arc<World>, fault: Fault) {
    let leader = world.raft.lock().unwrap().leader();
    match fault {
        Fault::Failover { to } => {
            world.note(format!("failover from {leader:?} to {to:?}"));
            world.raft.lock().unwrap().elect(to, None);
        }
        Fault::StaleLeader { to, span } => {
            world.note(format!(
                "failover from {leader:?} to {to:?}; {leader:?} learns it after {span:?}"
            ));
            world.raft.lock().unwrap().elect(to, leader);
            sleep(span).await;
            if let Some(old) = leader {
                world.raft.lock().unwrap().inform(old);
            }
        }
        Fault::NoLeader { span, then } => {
            world.note(format!("no leader for {span:?}"));
            world.raft.lock().unwrap().elect(None, None);
            sleep(span).await;
            // The drawn node if it is up, else any node that is.
            let next = world
                .core(then)
                .map(|_| then)
                .or_else(|| world.live().first().copied());
            world.raft.lock().unwrap().elect(next, None);
        }
        Fault::Crash { victim, span, then } => {
            let Some(node) = world.nodes.lock().unwrap().remove(&victim) else {
                return; // down already (overlapping crashes)
            };
            world.note(format!("crash node {victim} for {span:?}"));
            node.crash();
            if leader == Some(victim) {
                // The others elect a new leader once its heartbeats stop.
                let then = then.filter(|n| world.core(*n).is_some());
                world.raft.lock().unwrap().elect(then, None);
            }
            sleep(span).await;
            world.start(victim).await;
            world.raft.lock().unwrap().inform(victim);
        }
        Fault::ReadsDown { span } => {
            world.note(format!("log reads fail for {span:?}"));
            world.log.set_reads_down(true);
            sleep(span).await;
            world.log.set_reads_down(false);
        }
        Fault::AppendsFail { fault, span } => {
            world.note(format!("appends fail ({fault:?}) for {span:?}"));
            world.log.set_append_fault(fault);
            sleep(span).await;
            world.log.set_append_fault(AppendFault::None);
        }
        Fault::ClusterDown { fault, span } => {
            world.note(format!("cluster {fault:?} for {span:?}"));
            world.cluster.set_fault(fault);
            sleep(span).await;
            world.cluster.set_fault(ClusterFault::None);
        }
    }
}

/// Virtual milliseconds from `since` until `leader` schedules.
pub(super) async fn serving_after(world: &World, leader: u64, since: u64) -> Option<u64> {
    let core = world.core(leader)?;
    let mut leading = core.leading();
    tokio::time::timeout(Duration::from_secs(120), leading.wait_for(|t| t.is_some()))
        .await
        .ok()?
        .ok()?;
    Some(world.now_ms() - since)
}
