//! This node as a member of the Raft cluster: starting its member (bootstrap, join, or
//! rejoin), the identity the cluster agrees on, leadership with lifted terms, and the
//! member as the core's `Member` port (job ids, confirmed leadership).

use crate::config::Config;
use anyhow::Context;
use kindling_core::{LeaderState, MemberError};
use kindling_events::{JobId, NodeId};
use kindling_raft::{
    ClusterConfig, ClusterIdentity, ClusterMember, ClusterSecret, IdAllocator, LeaderCheck,
    MemberAddrs,
};
use std::sync::Arc;
use std::time::Duration;

/// The identity this node proposes if the cluster has none yet: what a data directory of an
/// earlier, single-node Kindling holds (`cluster.id`, `node.key`), so its drivers and
/// session secrets stay valid, otherwise fresh random values. `term_base` lifts Raft's terms
/// above every scheduler term the projections have seen.
pub fn proposed_identity(data: &std::path::Path, term_base: u64) -> ClusterIdentity {
    let cluster_id = std::fs::read_to_string(data.join("cluster.id"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()));
    let key = std::fs::read(data.join("node.key"))
        .ok()
        .filter(|k| k.len() >= 32)
        .unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
    ClusterIdentity {
        cluster_id,
        key,
        term_base,
    }
}

/// Leadership as the rest of the node sees it: Raft's, with terms lifted by `base`.
pub fn lifted_terms(
    mut raft: tokio::sync::watch::Receiver<kindling_raft::LeaderState>,
    base: u64,
) -> tokio::sync::watch::Receiver<LeaderState> {
    let lift = move |s: kindling_raft::LeaderState| LeaderState {
        term: kindling_events::Term(s.term.0 + base),
        leader: s.leader,
        is_leader: s.is_leader,
    };
    let (tx, rx) = tokio::sync::watch::channel(lift(*raft.borrow_and_update()));
    tokio::spawn(async move {
        while raft.changed().await.is_ok() {
            if tx.send(lift(*raft.borrow_and_update())).is_err() {
                return;
            }
        }
        // The member stopped: nobody leads as far as this node knows.
        tx.send_modify(|s| s.is_leader = false);
    });
    rx
}

/// Starts this node's Raft member and makes it part of a cluster: the one it belongs to
/// already (a restart), the one `join` names, or a new one of its own.
pub async fn start_member(
    cfg: &Config,
    addrs: MemberAddrs,
    listener: tokio::net::TcpListener,
    secret: Option<Arc<ClusterSecret>>,
) -> anyhow::Result<ClusterMember> {
    let mut config = ClusterConfig::new(
        NodeId(cfg.node_id),
        addrs,
        cfg.data_dir.join("raft-cluster"),
    );
    config.secret = secret;
    let member = ClusterMember::start(config, listener)
        .await
        .context("cannot start the raft member")?;
    if cfg.join.is_empty() {
        member
            .bootstrap()
            .await
            .context("cannot bootstrap the cluster")?;
        return Ok(member);
    }
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(200);
    loop {
        match member.join(&cfg.join).await {
            Ok(()) => return Ok(member),
            Err(e) if started.elapsed() < Duration::from_secs(120) => {
                tracing::warn!(error = %e, peers = ?cfg.join, "cannot join the cluster yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot join the cluster at {:?}", cfg.join))
            }
        }
    }
}

/// Retries a request that needs the Raft leader while the cluster elects one.
pub async fn with_leader<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kindling_raft::Result<T>>,
{
    let started = std::time::Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && started.elapsed() < Duration::from_secs(60) => {
                tracing::info!(error = %e, "{what}: waiting for a leader");
            }
            Err(e) => return Err(e).with_context(|| format!("cannot {what}")),
        }
    }
}

/// The Raft member as the core asks it: job ids and confirmation of leadership.
pub struct RaftMember(pub Arc<ClusterMember>);

fn member_error(e: kindling_raft::RaftError) -> MemberError {
    if e.is_retryable() {
        MemberError::no_leader(e.to_string())
    } else {
        MemberError::failed(e.to_string())
    }
}

#[async_trait::async_trait]
impl kindling_core::Member for RaftMember {
    async fn next_job_id(&self) -> Result<JobId, MemberError> {
        IdAllocator::next_job_id(self.0.as_ref())
            .await
            .map_err(member_error)
    }

    async fn confirm_leadership(&self) -> Result<(), MemberError> {
        LeaderCheck::confirm_leadership(self.0.as_ref())
            .await
            .map_err(member_error)
    }
}

/// The driver gateways of every member, the leader's first: a session driver tries them in
/// order until one accepts it (only the leader does).
pub fn driver_endpoints(view: &kindling_raft::ClusterView) -> String {
    let mut members: Vec<_> = view
        .members
        .iter()
        .filter(|m| !m.driver_addr.is_empty())
        .collect();
    members.sort_by_key(|m| (!m.leader, m.id));
    members
        .iter()
        .map(|m| m.driver_addr.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
