//! The simulation's models of what Kindling talks to: a Spark cluster (drivers that run for
//! a while and exit, a launch ledger) behind the `ClusterBackend` port, and Raft (who leads,
//! in which term) behind the leadership watch each node reads. Both follow the documented
//! semantics of the real thing where the scheduler depends on them: driver names are unique
//! in the cluster (a launch of a name that exists attaches to it, running or ended, as a
//! Kubernetes backend does with a pod of that name), `find` is truthful, a call to an unreachable
//! cluster may or may not have taken effect, and a deposed leader may go on believing it
//! leads (a paused or partitioned process) until it is told.

use crate::leadership::LeaderState;
use async_trait::async_trait;
use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, Found, LaunchSpec, LogSlice, LogWindow, Result,
};
use kindling_chaos_checker::ledger::Launch;
use kindling_chaos_checker::rng::Rng;
use kindling_events::spec::JobKind;
use kindling_events::{Attempt, JobId, NodeId, Term};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How the cluster answers while a fault is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterFault {
    None,
    /// Every call fails; a launch may have started its driver all the same.
    Unreachable,
    /// Launches take longer than the scheduler waits for them (and then happen).
    Slow,
}

struct Driver {
    job: JobId,
    attempt: Attempt,
    /// When it exits by itself, while it runs.
    ends_at: Option<Instant>,
    exit_code: i32,
    /// Every node backend that launched or found it: each is told when it ends.
    watchers: Vec<mpsc::UnboundedSender<BackendEvent>>,
}

struct Cluster {
    rng: Rng,
    drivers: BTreeMap<String, Driver>,
    ledger: Vec<Launch>,
    fault: ClusterFault,
    started: Instant,
}

/// One Spark cluster, shared by every node's backend.
pub struct SimCluster {
    state: Mutex<Cluster>,
}

impl SimCluster {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(SimCluster {
            state: Mutex::new(Cluster {
                rng: Rng::fork(seed, 7),
                drivers: BTreeMap::new(),
                ledger: vec![],
                fault: ClusterFault::None,
                started: Instant::now(),
            }),
        })
    }

    pub fn set_fault(&self, fault: ClusterFault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Every driver start, in order.
    pub fn ledger(&self) -> Vec<Launch> {
        self.state.lock().unwrap().ledger.clone()
    }

    /// Drivers still running.
    pub fn running(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.drivers
            .iter()
            .filter(|(_, d)| d.ends_at.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Ends every driver whose time has come; runs until the cluster is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let now = Instant::now();
            let mut s = self.state.lock().unwrap();
            for d in s.drivers.values_mut() {
                if d.ends_at.is_some_and(|t| t <= now) {
                    end(d, d.exit_code);
                }
            }
        }
    }

    /// A backend for one node: what it launches or finds is reported on `events`.
    pub fn backend(
        self: &Arc<Self>,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> Arc<dyn ClusterBackend> {
        Arc::new(SimBackend {
            cluster: self.clone(),
            events,
        })
    }

    /// How long a call takes, as the fault in force says.
    fn latency(&self, launch: bool) -> Duration {
        let mut s = self.state.lock().unwrap();
        let ms = match (s.fault, launch) {
            // Past the scheduler's 120 s wait for a launch.
            (ClusterFault::Slow, true) => s.rng.range(100_000, 150_000),
            _ => s.rng.range(5, 200),
        };
        Duration::from_millis(ms)
    }
}

fn end(d: &mut Driver, exit_code: i32) {
    d.ends_at = None;
    d.exit_code = exit_code;
    for w in &d.watchers {
        let _ = w.send(BackendEvent::Exited {
            job: d.job,
            attempt: d.attempt,
            exit_code: Some(exit_code),
            reason: None,
        });
    }
}

/// `key=value` in a batch's arguments.
fn arg(l: &LaunchSpec, key: &str) -> Option<u64> {
    let JobKind::Batch(b) = &l.spec.kind else {
        return None;
    };
    b.args
        .iter()
        .find_map(|a| a.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

struct SimBackend {
    cluster: Arc<SimCluster>,
    events: mpsc::UnboundedSender<BackendEvent>,
}

fn unreachable() -> BackendError {
    BackendError::Io("the cluster does not answer".into())
}

#[async_trait]
impl ClusterBackend for SimBackend {
    async fn launch(&self, l: LaunchSpec) -> Result<String> {
        tokio::time::sleep(self.cluster.latency(true)).await;
        let mut s = self.cluster.state.lock().unwrap();
        let unreachable_now = s.fault == ClusterFault::Unreachable;
        // Unreachable: the request may have reached the cluster before the answer was lost.
        if unreachable_now && s.rng.chance(50) {
            return Err(unreachable());
        }
        let id = format!("sim:{}", l.driver_name);
        if let Some(d) = s.drivers.get_mut(&l.driver_name) {
            // The name is taken: the launch attaches to that driver (Kubernetes answers a
            // create of an existing pod with a conflict, and the backend watches the pod).
            // One that ended already is reported as ended, as a watch of a finished pod is.
            if d.ends_at.is_none() {
                let _ = self.events.send(BackendEvent::Exited {
                    job: d.job,
                    attempt: d.attempt,
                    exit_code: Some(d.exit_code),
                    reason: None,
                });
            }
            d.watchers.push(self.events.clone());
        } else {
            let run_ms = arg(&l, "sleep_ms").unwrap_or(1_000);
            let exit_code = arg(&l, "exit").unwrap_or(0) as i32;
            let line = s.ledger.len() + 1;
            let at_ms = s.started.elapsed().as_millis() as i64;
            s.ledger.push(Launch {
                line,
                at_ms,
                pid: line as u32,
                driver: id.clone(),
                job: l.job.0,
                attempt: l.attempt.0,
                kind: if l.spec.is_session() {
                    "session"
                } else {
                    "batch"
                }
                .into(),
            });
            s.drivers.insert(
                l.driver_name.clone(),
                Driver {
                    job: l.job,
                    attempt: l.attempt,
                    ends_at: Some(Instant::now() + Duration::from_millis(run_ms)),
                    exit_code,
                    watchers: vec![self.events.clone()],
                },
            );
        }
        if unreachable_now {
            return Err(unreachable());
        }
        Ok(id)
    }

    async fn find(&self, _job: JobId, _attempt: Attempt, driver_name: &str) -> Result<Found> {
        tokio::time::sleep(self.cluster.latency(false)).await;
        let mut s = self.cluster.state.lock().unwrap();
        if s.fault == ClusterFault::Unreachable {
            return Err(unreachable());
        }
        Ok(match s.drivers.get_mut(driver_name) {
            None => Found::Never,
            Some(d) if d.ends_at.is_some() => {
                d.watchers.push(self.events.clone());
                Found::Running {
                    driver_id: format!("sim:{driver_name}"),
                }
            }
            Some(d) => Found::Ended {
                exit_code: Some(d.exit_code),
            },
        })
    }

    async fn kill(&self, driver_name: &str) -> Result<()> {
        tokio::time::sleep(self.cluster.latency(false)).await;
        let mut s = self.cluster.state.lock().unwrap();
        if s.fault == ClusterFault::Unreachable {
            return Err(unreachable());
        }
        if let Some(d) = s.drivers.get_mut(driver_name) {
            if d.ends_at.is_some() {
                // SIGTERM: the driver exits as a terminated process does.
                end(d, 143);
            }
        }
        Ok(())
    }

    async fn log(&self, _driver_name: &str, _window: LogWindow) -> Result<LogSlice> {
        Ok(LogSlice::default())
    }
}

/// Raft as the nodes see it: one watch per node, set by the simulation's nemesis.
pub struct SimRaft {
    term: u64,
    leader: Option<u64>,
    views: BTreeMap<u64, watch::Sender<LeaderState>>,
}

impl SimRaft {
    pub fn new(nodes: &[u64]) -> Self {
        let none = LeaderState {
            term: Term(0),
            leader: None,
            is_leader: false,
        };
        SimRaft {
            term: 0,
            leader: None,
            views: nodes
                .iter()
                .map(|id| (*id, watch::Sender::new(none)))
                .collect(),
        }
    }

    pub fn leader(&self) -> Option<u64> {
        self.leader
    }

    pub fn watch(&self, node: u64) -> watch::Receiver<LeaderState> {
        self.views[&node].subscribe()
    }

    fn state(&self, node: u64) -> LeaderState {
        LeaderState {
            term: Term(self.term),
            leader: self.leader.map(NodeId),
            is_leader: self.leader == Some(node),
        }
    }

    /// A new term led by `leader` (or by nobody). Every node learns it at once, except
    /// `unaware`, which goes on believing what it believed until `inform` is called.
    pub fn elect(&mut self, leader: Option<u64>, unaware: Option<u64>) {
        self.term += 1;
        self.leader = leader;
        for id in self.views.keys().copied().collect::<Vec<_>>() {
            if Some(id) != unaware {
                self.inform(id);
            }
        }
    }

    /// Tells `node` who leads now.
    pub fn inform(&mut self, node: u64) {
        let now = self.state(node);
        self.views[&node].send_replace(now);
    }
}
