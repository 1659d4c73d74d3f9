//! The test cluster: starts members on loopback ports and their own sled directories, stops
//! and restarts them there, and waits on their observable state (leadership watches, openraft
//! metrics) against deadlines.

use kindling_events::{NodeId, Term};
use kindling_raft::{
    ClusterConfig, ClusterMember, IdAllocator, LeaderState, Leadership, MemberAddrs,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Generous: two cores are shared by every test (and other builds) running at once.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,kindling_raft=info".into()),
        )
        .with_test_writer()
        .try_init();
}

pub type Tweak = fn(&mut ClusterConfig);

/// Members of one test cluster, with their directories and Raft addresses, so a stopped member
/// can be started again where it was.
pub struct Cluster {
    _root: TempDir,
    pub dirs: BTreeMap<u64, PathBuf>,
    pub addrs: BTreeMap<u64, SocketAddr>,
    pub live: BTreeMap<u64, Arc<ClusterMember>>,
    tweak: Tweak,
}

impl Cluster {
    pub fn new(tweak: Tweak) -> Self {
        Cluster {
            _root: tempfile::tempdir().unwrap(),
            dirs: BTreeMap::new(),
            addrs: BTreeMap::new(),
            live: BTreeMap::new(),
            tweak,
        }
    }

    /// Starts member `id`: on a fresh port and directory the first time, on its own port and
    /// directory (its log) after a stop.
    pub async fn start(&mut self, id: u64) -> Arc<ClusterMember> {
        let bind = self
            .addrs
            .get(&id)
            .copied()
            .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = self
            .dirs
            .entry(id)
            .or_insert_with(|| self._root.path().join(format!("member-{id}")))
            .clone();
        let mut config = ClusterConfig::new(
            NodeId(id),
            MemberAddrs::new(addr.to_string(), format!("127.0.0.1:{}", 8990 + id)),
            dir,
        );
        (self.tweak)(&mut config);
        let member = Arc::new(ClusterMember::start(config, listener).await.unwrap());
        self.addrs.insert(id, addr);
        self.live.insert(id, member.clone());
        member
    }

    pub async fn stop(&mut self, id: u64) {
        let member = self.live.remove(&id).expect("member is live");
        member.shutdown().await.unwrap();
    }

    /// Members started from now on get `tweak` instead.
    pub fn set_tweak(&mut self, tweak: Tweak) {
        self.tweak = tweak;
    }

    pub fn member(&self, id: u64) -> &Arc<ClusterMember> {
        &self.live[&id]
    }

    pub fn seeds(&self) -> Vec<String> {
        self.addrs.values().map(|a| a.to_string()).collect()
    }

    /// Member 1 bootstraps; members 2..=n join through it, all at once.
    pub async fn form(tweak: Tweak, n: u64) -> Cluster {
        let mut c = Cluster::new(tweak);
        let first = c.start(1).await;
        first.bootstrap().await.unwrap();
        let seed = vec![first.local_addr().to_string()];
        let mut joining = Vec::new();
        for id in 2..=n {
            let m = c.start(id).await;
            let seed = seed.clone();
            joining.push(tokio::spawn(async move { m.join(&seed).await }));
        }
        for j in joining {
            j.await.unwrap().unwrap();
        }
        let all: BTreeSet<u64> = (1..=n).collect();
        for m in c.live.values() {
            m.raft()
                .wait(Some(DEADLINE))
                .voter_ids(all.clone(), "every member sees every voter")
                .await
                .unwrap();
        }
        c
    }

    pub async fn agreed_leader(&self) -> LeaderState {
        let members: Vec<_> = self.live.values().cloned().collect();
        agreed_leader(&members, Term(0)).await
    }
}

/// Waits until every member's `Leadership` watch names the same leader in the same term, later
/// than `after`, and the leader's own watch says it leads. Starts over when a newer term shows
/// up.
pub async fn agreed_leader(members: &[Arc<ClusterMember>], after: Term) -> LeaderState {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    'elect: loop {
        let mut rx = members[0].watch();
        let first = *tokio::time::timeout_at(
            deadline,
            rx.wait_for(|s| s.leader.is_some() && s.term > after),
        )
        .await
        .expect("no leader elected in time")
        .unwrap();
        let leader = first.leader.unwrap();
        for m in members {
            let me = m.node_id();
            let mut rx = m.watch();
            let seen = *tokio::time::timeout_at(
                deadline,
                rx.wait_for(|s| {
                    s.term > first.term
                        || (s.term == first.term
                            && s.leader == Some(leader)
                            && (me != leader || s.is_leader))
                }),
            )
            .await
            .expect("members did not agree on the leader in time")
            .unwrap();
            if seen.term > first.term {
                continue 'elect;
            }
        }
        return LeaderState {
            is_leader: true,
            ..first
        };
    }
}

/// Leases `per_member` ids from each of `members`, all calls concurrent.
pub async fn lease_concurrently(members: &[Arc<ClusterMember>], per_member: usize) -> Vec<u64> {
    let mut calls = Vec::new();
    for m in members {
        for _ in 0..per_member {
            let m = m.clone();
            calls.push(tokio::spawn(async move { m.next_job_id().await }));
        }
    }
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().expect("job id").0);
    }
    ids
}

pub fn insert_all_distinct(seen: &mut BTreeSet<u64>, ids: &[u64]) {
    for id in ids {
        assert!(seen.insert(*id), "job id {id} handed out twice");
    }
}
