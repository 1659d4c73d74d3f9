//! The cluster as one member sees it, for `GET /api/v1/cluster`: the term, the leader and
//! every member with its addresses. Read from openraft's metrics; changes nothing.

use crate::cluster::types::RaftMetrics;
use kindling_events::{NodeId, Term};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// The member that answered.
    pub node_id: NodeId,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub id: NodeId,
    pub raft_addr: String,
    pub http_addr: String,
    pub driver_addr: String,
    /// Voters elect and commit; learners only receive the log.
    pub voter: bool,
    pub leader: bool,
    /// The last log index known to be on this member; only the leader knows it for others.
    pub matched_index: Option<u64>,
}

impl ClusterView {
    /// The leader's entry, if a leader is known and is a member.
    pub fn leader_member(&self) -> Option<&MemberView> {
        let leader = self.leader?;
        self.members.iter().find(|m| m.id == leader)
    }

    pub(crate) fn from_metrics(m: &RaftMetrics) -> Self {
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(&id, addrs)| MemberView {
                id: NodeId(id),
                raft_addr: addrs.raft_addr.clone(),
                http_addr: addrs.http_addr.clone(),
                driver_addr: addrs.driver_addr.clone(),
                voter: voters.contains(&id),
                leader: m.current_leader == Some(id),
                matched_index: if id == m.id {
                    m.last_log_index
                } else {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id))
                        .and_then(|l| l.as_ref().map(|l| l.index))
                },
            })
            .collect();
        ClusterView {
            node_id: NodeId(m.id),
            term: Term(m.current_term),
            leader: m.current_leader.map(NodeId),
            members,
        }
    }
}
