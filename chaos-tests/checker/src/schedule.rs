//! The fault schedule: a pure function of the seed and the run's shape. Same seed, same
//! schedule, on any machine. Faults never overlap: each starts, holds, heals, and the next
//! starts after a gap, so every fault's recovery can be measured on its own.
//!
//! Targets are roles (the leader, the k-th follower, any node) resolved when the fault fires;
//! who leads at that moment is the cluster's business, so the same seed always asks for the
//! same faults while the node that takes them may differ.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Which node a fault hits, resolved when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Leader,
    /// Followers in id order, this number modulo their count.
    Follower(u64),
    /// Nodes in id order, this number modulo their count.
    Any(u64),
}

/// How a cut link fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    /// Existing connections are reset and new ones closed at once.
    Drop,
    /// Connections are accepted and held, but nothing is forwarded until the link heals.
    Blackhole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// kill -9, restarted on the same ports and directories when healed.
    Kill { target: Target },
    /// SIGSTOP, SIGCONT when healed; held longer than an election timeout.
    Pause { target: Target },
    /// Every node-to-node link (Raft, HTTP, driver gRPC) between these nodes and the rest.
    Partition { targets: Vec<Target>, cut: Cut },
    /// The node's link to the broker.
    CutBroker { target: Target, cut: Cut },
    /// The node's link to the MongoDB server.
    CutMongo { target: Target, cut: Cut },
    /// kill -9 of the broker, restarted on the same port and storage when healed.
    RestartBroker,
    /// kill -9 of the MongoDB server, restarted on the same port and data when healed.
    RestartMongo,
}

impl Action {
    /// The nemesis that produced this action, for tables.
    pub fn nemesis(&self) -> Nemesis {
        match self {
            Action::Kill {
                target: Target::Leader,
            } => Nemesis::KillLeader,
            Action::Kill {
                target: Target::Follower(_),
            } => Nemesis::KillFollower,
            Action::Kill { .. } => Nemesis::KillAny,
            Action::Pause { .. } => Nemesis::Pause,
            Action::Partition { .. } => Nemesis::Partition,
            Action::CutBroker { .. } => Nemesis::CutBroker,
            Action::CutMongo { .. } => Nemesis::CutMongo,
            Action::RestartBroker => Nemesis::RestartBroker,
            Action::RestartMongo => Nemesis::RestartMongo,
        }
    }
}

/// A fault: fires `at_ms` after the run starts, heals `hold_ms` later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub at_ms: u64,
    pub hold_ms: u64,
    pub action: Action,
}

impl Fault {
    pub fn heal_ms(&self) -> u64 {
        self.at_ms + self.hold_ms
    }
}

/// The kinds of fault a run may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nemesis {
    KillLeader,
    KillFollower,
    KillAny,
    Pause,
    Partition,
    CutBroker,
    CutMongo,
    RestartBroker,
    RestartMongo,
}

impl Nemesis {
    pub const ALL: [Nemesis; 9] = [
        Nemesis::KillLeader,
        Nemesis::KillFollower,
        Nemesis::KillAny,
        Nemesis::Pause,
        Nemesis::Partition,
        Nemesis::CutBroker,
        Nemesis::CutMongo,
        Nemesis::RestartBroker,
        Nemesis::RestartMongo,
    ];

    /// Every nemesis but `RestartBroker`: what a broker that keeps its log in memory allows.
    pub fn without_broker_restart() -> Vec<Nemesis> {
        Nemesis::ALL
            .into_iter()
            .filter(|n| *n != Nemesis::RestartBroker)
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Nemesis::KillLeader => "kill-leader",
            Nemesis::KillFollower => "kill-follower",
            Nemesis::KillAny => "kill-any",
            Nemesis::Pause => "pause",
            Nemesis::Partition => "partition",
            Nemesis::CutBroker => "cut-broker",
            Nemesis::CutMongo => "cut-mongo",
            Nemesis::RestartBroker => "restart-broker",
            Nemesis::RestartMongo => "restart-mongo",
        }
    }

    pub fn parse(s: &str) -> Option<Nemesis> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// Relative frequency: node faults more often than dependency restarts.
    fn weight(self) -> u64 {
        match self {
            Nemesis::KillLeader | Nemesis::Partition => 3,
            Nemesis::KillFollower | Nemesis::KillAny | Nemesis::Pause => 2,
            Nemesis::CutBroker | Nemesis::CutMongo => 2,
            Nemesis::RestartBroker | Nemesis::RestartMongo => 1,
        }
    }
}

/// The shape of a run the schedule is drawn for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    pub nodes: usize,
    /// Faults start and heal within this many milliseconds of the run's start.
    pub duration_ms: u64,
    /// No fault before the cluster has served this long.
    pub warmup_ms: u64,
    /// Quiet time between a heal and the next fault, drawn in this range.
    pub gap_ms: (u64, u64),
    /// A pause lasts at least this long: more than the cluster's election timeout.
    pub min_pause_ms: u64,
    pub nemeses: Vec<Nemesis>,
}

impl ScheduleConfig {
    pub fn new(nodes: usize, duration_ms: u64) -> Self {
        ScheduleConfig {
            nodes,
            duration_ms,
            warmup_ms: 10_000,
            gap_ms: (3_000, 8_000),
            min_pause_ms: 3_000,
            nemeses: Nemesis::ALL.to_vec(),
        }
    }
}

/// Nodes a partition isolates: fewer than half, so a majority remains. Followers are
/// consecutive picks, so they resolve to distinct nodes.
fn partition_group(rng: &mut Rng, nodes: usize) -> Vec<Target> {
    let size = if nodes >= 5 && rng.chance(50) { 2 } else { 1 };
    let base = rng.next_u64() % 64;
    let mut group = vec![];
    if rng.chance(50) {
        group.push(Target::Leader);
    }
    let mut k = 0;
    while group.len() < size {
        group.push(Target::Follower(base + k));
        k += 1;
    }
    group
}

fn cut(rng: &mut Rng) -> Cut {
    if rng.chance(50) {
        Cut::Drop
    } else {
        Cut::Blackhole
    }
}

/// The schedule for `seed`.
pub fn schedule(seed: u64, cfg: &ScheduleConfig) -> Vec<Fault> {
    let mut rng = Rng::fork(seed, 0x5c4e_d01e);
    let weights: Vec<u64> = cfg.nemeses.iter().map(|n| n.weight()).collect();
    let mut out = vec![];
    if cfg.nemeses.is_empty() || cfg.nodes == 0 {
        return out;
    }
    let mut t = cfg.warmup_ms;
    loop {
        let nemesis = cfg.nemeses[rng.weighted(&weights)];
        let any = |rng: &mut Rng| Target::Any(rng.next_u64() % 64);
        let role = |rng: &mut Rng| {
            if rng.chance(50) {
                Target::Leader
            } else {
                Target::Follower(rng.next_u64() % 64)
            }
        };
        let (action, hold) = match nemesis {
            Nemesis::KillLeader => (
                Action::Kill {
                    target: Target::Leader,
                },
                rng.range(500, 5_000),
            ),
            Nemesis::KillFollower => (
                Action::Kill {
                    target: Target::Follower(rng.next_u64() % 64),
                },
                rng.range(500, 5_000),
            ),
            Nemesis::KillAny => (
                Action::Kill {
                    target: any(&mut rng),
                },
                rng.range(500, 5_000),
            ),
            Nemesis::Pause => (
                Action::Pause {
                    target: role(&mut rng),
                },
                rng.range(cfg.min_pause_ms, cfg.min_pause_ms + 5_000),
            ),
            Nemesis::Partition => (
                Action::Partition {
                    targets: partition_group(&mut rng, cfg.nodes),
                    cut: cut(&mut rng),
                },
                rng.range(3_000, 10_000),
            ),
            Nemesis::CutBroker => (
                Action::CutBroker {
                    target: role(&mut rng),
                    cut: cut(&mut rng),
                },
                rng.range(2_000, 8_000),
            ),
            Nemesis::CutMongo => (
                Action::CutMongo {
                    target: role(&mut rng),
                    cut: cut(&mut rng),
                },
                rng.range(2_000, 8_000),
            ),
            Nemesis::RestartBroker => (Action::RestartBroker, rng.range(500, 4_000)),
            Nemesis::RestartMongo => (Action::RestartMongo, rng.range(500, 4_000)),
        };
        if t + hold > cfg.duration_ms {
            break;
        }
        out.push(Fault {
            at_ms: t,
            hold_ms: hold,
            action,
        });
        t += hold + rng.range(cfg.gap_ms.0, cfg.gap_ms.1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ScheduleConfig {
        ScheduleConfig::new(3, 600_000)
    }

    #[test]
    fn same_seed_same_schedule() {
        assert_eq!(schedule(17, &cfg()), schedule(17, &cfg()));
        assert_ne!(schedule(17, &cfg()), schedule(18, &cfg()));
    }

    #[test]
    fn faults_fit_the_run_and_never_overlap() {
        for seed in 0..50 {
            let s = schedule(seed, &cfg());
            assert!(!s.is_empty());
            assert!(s[0].at_ms >= 10_000);
            for w in s.windows(2) {
                assert!(w[0].heal_ms() + 3_000 <= w[1].at_ms, "{w:?}");
            }
            assert!(s.last().unwrap().heal_ms() <= 600_000);
        }
    }

    #[test]
    fn pauses_outlast_the_election_timeout() {
        let mut c = cfg();
        c.nemeses = vec![Nemesis::Pause];
        c.min_pause_ms = 4_000;
        for f in schedule(3, &c) {
            assert!(matches!(f.action, Action::Pause { .. }));
            assert!(f.hold_ms >= 4_000);
        }
    }

    #[test]
    fn partitions_leave_a_majority() {
        for nodes in [3, 5] {
            let mut c = ScheduleConfig::new(nodes, 3_600_000);
            c.nemeses = vec![Nemesis::Partition];
            for f in schedule(9, &c) {
                let Action::Partition { targets, .. } = f.action else {
                    panic!("{f:?}")
                };
                assert!(
                    !targets.is_empty() && targets.len() * 2 < nodes,
                    "{targets:?}"
                );
                let followers: Vec<_> = targets
                    .iter()
                    .filter_map(|t| match t {
                        Target::Follower(k) => Some(k),
                        _ => None,
                    })
                    .collect();
                let mut dedup = followers.clone();
                dedup.dedup();
                assert_eq!(dedup.len(), followers.len(), "{targets:?}");
            }
        }
    }

    #[test]
    fn only_chosen_nemeses_fire_and_every_one_can() {
        let mut c = ScheduleConfig::new(3, 3_600_000);
        let all: std::collections::BTreeSet<_> =
            schedule(1, &c).iter().map(|f| f.action.nemesis()).collect();
        assert_eq!(all.len(), Nemesis::ALL.len());
        c.nemeses = vec![Nemesis::RestartBroker, Nemesis::CutMongo];
        assert!(schedule(1, &c)
            .iter()
            .all(|f| c.nemeses.contains(&f.action.nemesis())));
        c.nemeses.clear();
        assert!(schedule(1, &c).is_empty());
    }
}
