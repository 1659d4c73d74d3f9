//! Requests only the leader may execute, as they travel between members (`Forward` RPC), and
//! how a member executes one itself. A member that is not the leader refuses with where the
//! leader is; it never forwards on, so the sender decides where a request goes next
//! (`routing`).
//!
//! Every request is safe to execute twice (a lease burns a block, a floor or a membership
//! change that already happened changes nothing), so a sender that lost an answer retries.

use crate::cluster::types::{Command, CommandResponse, KindlingRaft, MemberAddrs, MemberId};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderRequest {
    /// Append a command to the log and answer what applying it produced.
    Apply(Command),
    /// Make `id` a voter: add it as a learner, wait until it has caught up, promote it.
    AddMember { id: MemberId, addrs: MemberAddrs },
    /// Take `id` out of the membership altogether.
    RemoveMember { id: MemberId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderReply {
    Applied(CommandResponse),
    MembershipChanged,
}

/// Why a member did not execute a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// Not the leader: certainly not executed here. Names the leader when this member knows it.
    #[error("not the leader (leader: {})", leader.as_ref().map(|(id, a)| format!("{id} at {}", a.raft_addr)).unwrap_or_else(|| "unknown".into()))]
    NotLeader {
        leader: Option<(MemberId, MemberAddrs)>,
    },
    /// Failed in a way that may pass: another change in progress, leadership lost midway, the
    /// member unreachable or stopping. It may have happened; retrying is safe.
    #[error("{0}")]
    Retry(String),
    /// Can never succeed as asked; retrying would not help.
    #[error("{0}")]
    Rejected(String),
}

type WriteError = RaftError<MemberId, ClientWriteError<MemberId, MemberAddrs>>;

fn refusal(e: WriteError) -> Refusal {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Refusal::NotLeader {
            leader: f.leader_id.zip(f.leader_node),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            e @ ChangeMembershipError::InProgress(_),
        )) => Refusal::Retry(e.to_string()),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Refusal::Rejected(e.to_string())
        }
        RaftError::Fatal(f) => Refusal::Retry(format!("raft is not running here: {f}")),
    }
}

/// The leader as this member sees it, for a refusal.
fn not_leader(raft: &KindlingRaft) -> Refusal {
    let m = raft.metrics();
    let m = m.borrow();
    let leader = m.current_leader.and_then(|id| {
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|a| (id, a.clone()))
    });
    Refusal::NotLeader { leader }
}

/// Executes `req` on this member, which must be the leader. `catch_up` bounds how long a new
/// member may take to receive the log before it is promoted.
pub(crate) async fn execute(
    raft: &KindlingRaft,
    req: LeaderRequest,
    catch_up: Duration,
) -> Result<LeaderReply, Refusal> {
    match req {
        LeaderRequest::Apply(cmd) => {
            let resp = raft.client_write(cmd).await.map_err(refusal)?;
            Ok(LeaderReply::Applied(resp.data))
        }
        LeaderRequest::AddMember { id, addrs } => add_member(raft, id, addrs, catch_up).await,
        LeaderRequest::RemoveMember { id } => remove_member(raft, id).await,
    }
}

/// What the leader's committed membership says about `id`, or `None` when this member is not
/// the leader or its newest membership is not committed yet (then the caller goes through
/// openraft, which knows).
enum Known {
    Voter(MemberAddrs),
    Learner(MemberAddrs),
    Absent,
}

fn committed_view(raft: &KindlingRaft, id: MemberId) -> Result<Option<Known>, Refusal> {
    let m = raft.metrics();
    let m = m.borrow();
    if m.state != ServerState::Leader {
        drop(m);
        return Err(not_leader(raft));
    }
    if m.membership_config.log_id() > &m.last_applied {
        return Ok(None);
    }
    let membership = m.membership_config.membership();
    Ok(Some(match membership.get_node(&id) {
        None => Known::Absent,
        Some(a) if membership.voter_ids().any(|v| v == id) => Known::Voter(a.clone()),
        Some(a) => Known::Learner(a.clone()),
    }))
}

async fn add_member(
    raft: &KindlingRaft,
    id: MemberId,
    addrs: MemberAddrs,
    catch_up: Duration,
) -> Result<LeaderReply, Refusal> {
    match committed_view(raft, id)? {
        Some(Known::Voter(a) | Known::Learner(a)) if a != addrs => {
            // Re-pointing a member's id at another address could let two processes vote as
            // one member; the operator removes the old one first.
            return Err(Refusal::Rejected(format!(
                "member {id} is registered at {a}; remove it before it joins again at {addrs}"
            )));
        }
        Some(Known::Voter(_)) => return Ok(LeaderReply::MembershipChanged),
        _ => {}
    }
    tracing::info!(member = id, %addrs, "adding raft learner");
    // Blocking: a voter that has not caught up would stall commits until it has.
    match tokio::time::timeout(catch_up, raft.add_learner(id, addrs, true)).await {
        Ok(r) => r.map_err(refusal)?,
        Err(_) => {
            return Err(Refusal::Retry(format!(
                "learner {id} did not catch up with the log within {catch_up:?}"
            )))
        }
    };
    tracing::info!(member = id, "promoting raft learner to voter");
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
        .await
        .map_err(refusal)?;
    Ok(LeaderReply::MembershipChanged)
}

async fn remove_member(raft: &KindlingRaft, id: MemberId) -> Result<LeaderReply, Refusal> {
    let change = match committed_view(raft, id)? {
        Some(Known::Absent) => return Ok(LeaderReply::MembershipChanged),
        Some(Known::Learner(_)) => ChangeMembers::RemoveNodes(BTreeSet::from([id])),
        Some(Known::Voter(_)) | None => ChangeMembers::RemoveVoters(BTreeSet::from([id])),
    };
    tracing::info!(member = id, "removing raft member");
    // `retain = false`: a removed voter does not stay on as a learner.
    raft.change_membership(change, false)
        .await
        .map_err(refusal)?;
    Ok(LeaderReply::MembershipChanged)
}
