//! Gets a leader request executed by whoever leads: this member itself, the leader it knows,
//! the leader a refusing member names, or, on a member that knows no cluster yet, one of the
//! seed addresses it was given. Owns the retry policy; what a request does is
//! `leader_request`'s business.
//!
//! A follower forwards rather than failing because any node answers any REST call: a
//! `POST /batches` on a follower still needs an id block, and a retry loop in every caller
//! would be the same loop, worse. Attempts that failed in a way that may pass (no leader yet,
//! an unreachable member) wait for the next change of leadership, at most one election
//! timeout, so a request spans an election without spinning; the whole request gives up after
//! a deadline with a retryable error.

use crate::cluster::leader_request::{execute, LeaderReply, LeaderRequest, Refusal};
use crate::cluster::network::{PeerChannels, Rpc};
use crate::cluster::types::{KindlingRaft, MemberAddrs, MemberId};
use crate::error::{RaftError, Result};
use crate::leadership::LeaderState;
use crate::metrics;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Local,
    Remote(String),
}

pub(crate) struct LeaderRouter {
    pub id: MemberId,
    pub raft: KindlingRaft,
    pub channels: PeerChannels,
    pub leader: watch::Receiver<LeaderState>,
    pub catch_up: Duration,
    /// The longest wait between two attempts: one election timeout.
    pub retry_wait: Duration,
}

impl LeaderRouter {
    fn target(&self, id: MemberId, addrs: &MemberAddrs) -> Target {
        if id == self.id {
            Target::Local
        } else {
            Target::Remote(addrs.raft_addr.clone())
        }
    }

    fn known_leader(&self) -> Option<Target> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addrs = m.membership_config.membership().get_node(&id)?;
        Some(self.target(id, addrs))
    }

    async fn forward(
        &self,
        addr: &str,
        req: &LeaderRequest,
        deadline: Duration,
    ) -> Result<LeaderReply, Refusal> {
        match self
            .channels
            .call::<_, LeaderReply, Refusal>(addr, Rpc::Forward, req, deadline)
            .await
        {
            Ok(answer) => answer,
            Err(e) => Err(Refusal::Retry(e.to_string())),
        }
    }

    /// Executes `req` on the leader within `timeout`. `seeds` (Raft addresses) are tried when
    /// this member knows no leader, e.g. before it has joined.
    pub async fn send(
        &self,
        req: LeaderRequest,
        seeds: &[String],
        timeout: Duration,
    ) -> Result<LeaderReply> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut leadership = self.leader.clone();
        leadership.borrow_and_update();
        let mut hint: Option<Target> = None;
        let mut next_seed = 0;
        let mut last = String::from("no leader known");
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                metrics::leader_request("no_leader");
                tracing::warn!(?req, waited = ?started.elapsed(), last = %last, "no leader executed the request");
                return Err(RaftError::NoLeader {
                    waited: started.elapsed(),
                    last,
                });
            }
            let target = hint.take().or_else(|| self.known_leader()).or_else(|| {
                let seed = seeds.get(next_seed % seeds.len().max(1))?;
                next_seed += 1;
                Some(Target::Remote(seed.clone()))
            });
            let outcome = match &target {
                None => Err(Refusal::NotLeader { leader: None }),
                Some(Target::Local) => {
                    execute(&self.raft, req.clone(), self.catch_up.min(remaining)).await
                }
                Some(Target::Remote(addr)) => self.forward(addr, &req, remaining).await,
            };
            let must_wait = match outcome {
                Ok(reply) => {
                    metrics::leader_request("ok");
                    return Ok(reply);
                }
                Err(Refusal::Rejected(why)) => {
                    metrics::leader_request("rejected");
                    return Err(RaftError::Rejected(why));
                }
                Err(Refusal::NotLeader {
                    leader: Some((id, addrs)),
                }) => {
                    let next = self.target(id, &addrs);
                    last = format!("redirected to member {id} at {}", addrs.raft_addr);
                    // Named the member just asked: its view is stale, let leadership settle.
                    let same = target.as_ref() == Some(&next);
                    hint = Some(next);
                    same
                }
                Err(refusal) => {
                    last = refusal.to_string();
                    true
                }
            };
            if must_wait {
                tracing::debug!(target = ?target, last = %last, "leader request not executed yet, waiting for leadership to change");
                let nap = self
                    .retry_wait
                    .min(deadline.saturating_duration_since(Instant::now()));
                if let Ok(Err(_)) = tokio::time::timeout(nap, leadership.changed()).await {
                    return Err(RaftError::Stopped("the member is shutting down".into()));
                }
            }
        }
    }
}
