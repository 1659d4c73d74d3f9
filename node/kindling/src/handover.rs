//! Leaving the cluster on SIGTERM. A leader that simply exited would leave the cluster
//! leaderless for an election timeout after its last heartbeat, with its in-flight requests
//! cut. Instead a leading node first stops its Raft member (its scheduler steps down at once,
//! its heartbeats stop, so the others elect), and waits until a peer names a new leader
//! before it drains its requests and exits. openraft 0.9 has no leadership transfer call;
//! stopping the member is how this node gives leadership up. Drivers are left running: their
//! jobs carry on under the new leader.

use kindling_api::forward::Forwarder;
use kindling_raft::ClusterMember;
use std::time::{Duration, Instant};

/// How long a leaving leader waits for a successor before it exits anyway.
const SUCCESSOR_WAIT: Duration = Duration::from_secs(10);
const ASK_TIMEOUT: Duration = Duration::from_millis(500);
const ASK_EVERY: Duration = Duration::from_millis(100);

/// Whether this member led when it was asked to stop. If it did, its Raft member is
/// stopped here, and this returns once a peer knows another leader (or after
/// [`SUCCESSOR_WAIT`]).
pub async fn step_down(member: &ClusterMember, forwarder: &Forwarder) -> bool {
    let view = member.cluster_view();
    let me = view.node_id;
    if view.leader != Some(me) {
        return false;
    }
    let peers: Vec<String> = view
        .members
        .iter()
        .filter(|m| m.id != me && !m.http_addr.is_empty())
        .map(|m| m.http_addr.clone())
        .collect();
    tracing::info!(node = me.0, "leader stopping: giving leadership up first");
    if let Err(e) = member.shutdown().await {
        tracing::warn!(error = %e, "raft member did not stop cleanly");
    }
    if peers.is_empty() {
        return true;
    }
    let started = Instant::now();
    while started.elapsed() < SUCCESSOR_WAIT {
        for peer in &peers {
            let Ok(ready) = forwarder.peer_get(peer, "/api/v1/ready", ASK_TIMEOUT).await else {
                continue;
            };
            if let Some(leader) = ready["leader"].as_u64().filter(|l| *l != me.0) {
                tracing::info!(
                    leader,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "a new leader took over"
                );
                return true;
            }
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
    tracing::warn!(
        "no peer named a new leader within {} s; stopping anyway",
        SUCCESSOR_WAIT.as_secs()
    );
    true
}
