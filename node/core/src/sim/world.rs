//! The simulated cluster's state: each node's Raft member (job ids and leadership as the Raft
//! model says), its running incarnation, and the world they share (the log, the Spark cluster
//! and Raft models, the client's history and the faults applied).

use super::*;

/// A node's Raft member: job ids as Raft's id blocks hand them out (unique across nodes and
/// restarts), and leadership confirmed as a heartbeat round would: only the node the
/// cluster's majority follows gets a quorum's answer.
pub(super) struct Member {
    pub(super) node: u64,
    pub(super) ids: Arc<AtomicU64>,
    pub(super) raft: Arc<Mutex<SimRaft>>,
}

#[async_trait::async_trait]
impl RaftMember for Member {
    async fn next_job_id(&self) -> Result<JobId, MemberError> {
        Ok(JobId(self.ids.fetch_add(1, Ordering::SeqCst)))
    }

    async fn confirm_leadership(&self) -> Result<(), MemberError> {
        // A heartbeat round trip.
        sleep(Duration::from_millis(2)).await;
        if self.raft.lock().unwrap().leader() == Some(self.node) {
            return Ok(());
        }
        Err(MemberError::no_leader("a newer term answered"))
    }
}

/// One running incarnation of a node.
pub(super) struct Node {
    pub(super) core: Arc<Core>,
    pub(super) shutdown: CancellationToken,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// A crash: every task of the node stops where it is.
    pub(super) fn crash(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            t.abort();
        }
    }
}

pub(super) struct World {
    pub(super) cfg: SimConfig,
    pub(super) log: Arc<ObservedLog>,
    pub(super) cluster: Arc<SimCluster>,
    pub(super) raft: Arc<Mutex<SimRaft>>,
    pub(super) ids: Arc<AtomicU64>,
    pub(super) nodes: Mutex<BTreeMap<u64, Node>>,
    pub(super) started: Instant,
    pub(super) history: Mutex<Vec<Op>>,
    pub(super) faults: Mutex<Vec<String>>,
}

impl World {
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn note(&self, fault: String) {
        let at = self.now_ms();
        tracing::info!(at_ms = at, "fault: {fault}");
        self.faults
            .lock()
            .unwrap()
            .push(format!("{at} ms: {fault}"));
    }

    /// Starts node `id` on the shared log and cluster, with empty projections.
    pub(super) async fn start(&self, id: u64) {
        let shutdown = CancellationToken::new();
        let store = SledProjections::temporary().expect("temporary projections");
        let projections: Arc<dyn ProjectionStore> = if self.cfg.blind_readers {
            Arc::new(blind::FenceBlind::new(store))
        } else {
            Arc::new(store)
        };
        let (projected_tx, projected) = tokio::sync::watch::channel(LogPosition(0));
        let terms = Arc::new(LeaderTerms::default());
        let span = tracing::info_span!("node", id);
        let projector = tokio::spawn(
            crate::projector::run(
                self.log.clone(),
                projections.clone(),
                projected_tx,
                terms.clone(),
                shutdown.clone(),
            )
            .instrument(span.clone()),
        );
        let leadership = self.raft.lock().unwrap().watch(id);
        let core = Arc::new(
            Core::new(
                NodeId(id),
                Storage {
                    log: self.log.clone(),
                    projections,
                    projected,
                    writer_id: "kindling-leader-sim".into(),
                    fenced_writes: self.cfg.fenced_writes,
                    terms,
                },
                Arc::new(Member {
                    node: id,
                    ids: self.ids.clone(),
                    raft: self.raft.clone(),
                }),
                Arc::new(SystemClock),
                leadership.clone(),
                Duration::from_secs(3),
            )
            .await
            .expect("a core on a readable log"),
        );
        let gateway = Arc::new(NoDrivers);
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel::<BackendEvent>();
        let backends = Arc::new(Backends::new(
            Arc::new(OneBackend(self.cluster.backend(events_tx.clone()))),
            events_tx,
            shutdown.clone(),
        ));
        let scheduler = Scheduler::new(
            core.clone(),
            self.log.clone(),
            builtin_cluster(),
            backends,
            gateway,
            SchedulerConfig {
                driver_endpoints: Arc::new(String::new),
                heartbeat_timeout: Duration::from_secs(10),
                recovery_grace: Duration::from_secs(30),
                secret_key: vec![7; 32],
                gateway_tls: None,
            },
            events,
        );
        let scheduler = tokio::spawn(scheduler.run(leadership, shutdown.clone()).instrument(span));
        let node = Node {
            core,
            shutdown,
            tasks: vec![scheduler, projector],
        };
        self.nodes.lock().unwrap().insert(id, node);
    }

    pub(super) fn core(&self, id: u64) -> Option<Arc<Core>> {
        self.nodes.lock().unwrap().get(&id).map(|n| n.core.clone())
    }

    pub(super) fn live(&self) -> Vec<u64> {
        self.nodes.lock().unwrap().keys().copied().collect()
    }

    pub(super) fn record(&self, op: Op) {
        self.history.lock().unwrap().push(op);
    }
}
