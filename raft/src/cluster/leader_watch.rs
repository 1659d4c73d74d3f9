//! Drives the `Leadership` port's watch from openraft's metrics: one task per member that
//! publishes (term, leader, am-I-leader) whenever any of them changes, and publishes "not
//! leader" when the member stops, so a scheduler watching it stands down.
//!
//! "Am I leader" is stricter than openraft's `ServerState::Leader`: the member must also have
//! heard from a quorum within the leader lease. openraft restores a member that led before a
//! restart as leader at once, in its old term, before anyone acknowledges it (others may have
//! elected someone else meanwhile); and a leader cut off from its followers stays `Leader`
//! in openraft. Neither may schedule. Within the lease after a quorum acknowledged it, the
//! followers refuse to vote for anyone else, so no other leader can exist yet.

use crate::cluster::types::{KindlingRaft, RaftMetrics};
use crate::leadership::LeaderState;
use crate::metrics;
use kindling_events::{NodeId, Term};
use openraft::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `lease`: openraft's leader lease, the election timeout's upper bound.
pub(crate) fn leader_state(m: &RaftMetrics, lease: Duration) -> LeaderState {
    let acknowledged = m
        .millis_since_quorum_ack
        .is_some_and(|ms| u128::from(ms) < lease.as_millis());
    LeaderState {
        term: Term(m.current_term),
        leader: m.current_leader.map(NodeId),
        is_leader: m.state == ServerState::Leader && m.current_leader == Some(m.id) && acknowledged,
    }
}

fn publish(tx: &watch::Sender<LeaderState>, next: LeaderState) {
    tx.send_if_modified(|cur| {
        if *cur == next {
            return false;
        }
        // A member's first reading of its term is where it stands, not an election.
        if cur.term != next.term && cur.term.0 != 0 {
            metrics::election();
        }
        if cur.leader != next.leader {
            metrics::leader_changed();
            metrics::set_leader_id(next.leader);
            tracing::info!(
                term = next.term.0,
                leader = next.leader.map(|l| l.0),
                is_leader = next.is_leader,
                "raft leader changed"
            );
        }
        if cur.is_leader != next.is_leader {
            metrics::set_is_leader(next.is_leader);
        }
        *cur = next;
        true
    });
}

pub(crate) fn spawn(
    raft: &KindlingRaft,
    tx: Arc<watch::Sender<LeaderState>>,
    lease: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let mut metrics = raft.metrics();
    {
        // Every series from the start, not only after a first change.
        let now = tx.borrow();
        metrics::set_is_leader(now.is_leader);
        metrics::set_leader_id(now.leader);
    }
    tokio::spawn(async move {
        loop {
            let next = {
                let m = metrics.borrow_and_update();
                crate::metrics::raft_progress(&m);
                leader_state(&m, lease)
            };
            publish(&tx, next);
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { break },
                _ = shutdown.cancelled() => break,
            }
        }
        let stopped = LeaderState {
            leader: None,
            is_leader: false,
            ..*tx.borrow()
        };
        publish(&tx, stopped);
    })
}
