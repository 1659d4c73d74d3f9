//! The client side of the Raft link: openraft's `RaftNetworkFactory`/`RaftNetwork` over tonic,
//! and the channel pool it shares with forwarded leader requests. Owns dialing, deadlines and
//! turning transport failures into the errors openraft acts on; the server side is `service`.
//!
//! Channels are dialed lazily, one per peer address, and reused by every RPC to that peer
//! (openraft asks for a new client per vote round). A call that fails in transport drops its
//! channel, so the next call dials afresh instead of trusting a connection to a peer that may
//! have restarted. Errors map to openraft's classes: a peer that refuses connections or is
//! shutting down is `Unreachable` (openraft backs off), a call past its deadline is `Timeout`,
//! anything else in transport is `Network` (openraft retries at once).

use crate::cluster::codec::{from_wire, to_wire, CodecError, LIMIT, WIRE_CODEC};
use crate::cluster::secret::ClusterSecret;
use crate::cluster::types::{MemberAddrs, MemberId, TypeConfig};
use kindling_proto::raft::v1::raft_peer_client::RaftPeerClient;
use kindling_proto::raft::v1::{raft_reply, RaftReply, RaftRequest};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// The RPCs of `kindling.raft.v1.RaftPeer`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Forward,
}

impl Rpc {
    /// The name a call's token is signed for.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rpc::AppendEntries => "append_entries",
            Rpc::Vote => "vote",
            Rpc::InstallSnapshot => "install_snapshot",
            Rpc::Forward => "forward",
        }
    }
}

/// The metadata key of a call's cluster token.
pub(crate) const CLUSTER_TOKEN: &str = "x-kindling-cluster-token";

/// How a call failed before an answer came back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("no answer from {addr} within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("{addr} is unreachable: {status}")]
    Unreachable { addr: String, status: tonic::Status },
    #[error("call to {addr} failed: {status}")]
    Transport { addr: String, status: tonic::Status },
    #[error("bad address {addr:?}: {message}")]
    BadAddress { addr: String, message: String },
    #[error("{0}")]
    Codec(#[from] CodecError),
}

/// One lazily dialed channel per peer address.
#[derive(Clone)]
pub(crate) struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    connect_timeout: Duration,
    secret: Option<Arc<ClusterSecret>>,
}

impl PeerChannels {
    /// Channels that sign every call with `secret`, if the cluster has one.
    pub fn new(connect_timeout: Duration, secret: Option<Arc<ClusterSecret>>) -> Self {
        PeerChannels {
            channels: Default::default(),
            connect_timeout,
            secret,
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, CallError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let uri = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let bad = |e: tonic::transport::Error| CallError::BadAddress {
            addr: addr.to_string(),
            message: e.to_string(),
        };
        let channel = Endpoint::from_shared(uri)
            .map_err(bad)?
            .connect_timeout(self.connect_timeout)
            // Heartbeats and votes are tiny: without it each waits out a delayed ACK.
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    fn forget(&self, addr: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if channels.remove(addr).is_some() {
            tracing::debug!(addr, "dropped raft channel after a failed call");
        }
    }

    /// One unary call with a deadline; the request and the answer are bincode payloads.
    pub async fn call<Req, Ok, Err>(
        &self,
        addr: &str,
        rpc: Rpc,
        req: &Req,
        deadline: Duration,
    ) -> Result<Result<Ok, Err>, CallError>
    where
        Req: Serialize,
        Ok: DeserializeOwned,
        Err: DeserializeOwned,
    {
        let payload = to_wire(req)?;
        let token = self.secret.as_ref().map(|s| s.sign(rpc.name(), &payload));
        let mut request = tonic::Request::new(RaftRequest {
            codec: WIRE_CODEC,
            payload,
        });
        if let Some(token) = token {
            let value = token.parse().expect("a token is ASCII");
            request.metadata_mut().insert(CLUSTER_TOKEN, value);
        }
        // Tells the peer when to stop working on it.
        request.set_timeout(deadline);
        let mut client = RaftPeerClient::new(self.channel(addr)?)
            .max_decoding_message_size(LIMIT)
            .max_encoding_message_size(LIMIT);
        let call = async {
            match rpc {
                Rpc::AppendEntries => client.append_entries(request).await,
                Rpc::Vote => client.vote(request).await,
                Rpc::InstallSnapshot => client.install_snapshot(request).await,
                Rpc::Forward => client.forward(request).await,
            }
        };
        let reply = match tokio::time::timeout(deadline, call).await {
            Err(_) => {
                self.forget(addr);
                return Err(CallError::Timeout {
                    addr: addr.to_string(),
                    after: deadline,
                });
            }
            Ok(Err(status)) => {
                self.forget(addr);
                return Err(classify(addr, status));
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        Ok(decode_reply(reply)?)
    }
}

fn classify(addr: &str, status: tonic::Status) -> CallError {
    let addr = addr.to_string();
    match status.code() {
        tonic::Code::DeadlineExceeded => CallError::Timeout {
            addr,
            after: Duration::ZERO,
        },
        // Connection refused or reset, the peer's Raft stopped, it speaks another codec or
        // holds another cluster secret: none of these passes within a retry, so openraft
        // should back off.
        tonic::Code::Unavailable
        | tonic::Code::FailedPrecondition
        | tonic::Code::Unauthenticated => CallError::Unreachable { addr, status },
        _ => CallError::Transport { addr, status },
    }
}

fn decode_reply<Ok: DeserializeOwned, Err: DeserializeOwned>(
    reply: RaftReply,
) -> Result<Result<Ok, Err>, CodecError> {
    match reply.result {
        Some(raft_reply::Result::Ok(b)) => Ok(Ok(from_wire(reply.codec, &b)?)),
        Some(raft_reply::Result::Error(b)) => Ok(Err(from_wire(reply.codec, &b)?)),
        None => Err(CodecError::Empty),
    }
}

/// openraft's factory of per-peer clients.
pub struct PeerNetwork {
    local: MemberId,
    channels: PeerChannels,
    retry_every: Duration,
}

impl PeerNetwork {
    /// `retry_every`: how soon a call to a peer that was unreachable is tried again (see
    /// [`PeerConnection::backoff`]).
    pub(crate) fn new(local: MemberId, channels: PeerChannels, retry_every: Duration) -> Self {
        PeerNetwork {
            local,
            channels,
            retry_every,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: MemberId, node: &MemberAddrs) -> PeerConnection {
        PeerConnection {
            local: self.local,
            target,
            node: node.clone(),
            channels: self.channels.clone(),
            retry_every: self.retry_every,
        }
    }
}

/// openraft's client for one peer.
pub struct PeerConnection {
    local: MemberId,
    target: MemberId,
    node: MemberAddrs,
    channels: PeerChannels,
    retry_every: Duration,
}

impl PeerConnection {
    async fn send<Req, Resp, E>(
        &self,
        rpc: Rpc,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<MemberId, MemberAddrs, RaftError<MemberId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let deadline = option.hard_ttl();
        let answer = self
            .channels
            .call::<_, Resp, RaftError<MemberId, E>>(&self.node.raft_addr, rpc, req, deadline)
            .await;
        match answer {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Err(CallError::Timeout { .. }) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.local,
                target: self.target,
                timeout: deadline,
            })),
            Err(e @ (CallError::Unreachable { .. } | CallError::BadAddress { .. })) => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e @ (CallError::Transport { .. } | CallError::Codec(_))) => {
                Err(RPCError::Network(NetworkError::new(&e)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<MemberId>, RPCError<MemberId, MemberAddrs, RaftError<MemberId>>>
    {
        self.send(Rpc::AppendEntries, RPCTypes::AppendEntries, &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<MemberId>,
        RPCError<MemberId, MemberAddrs, RaftError<MemberId, InstallSnapshotError>>,
    > {
        self.send(
            Rpc::InstallSnapshot,
            RPCTypes::InstallSnapshot,
            &rpc,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<MemberId>,
        option: RPCOption,
    ) -> Result<VoteResponse<MemberId>, RPCError<MemberId, MemberAddrs, RaftError<MemberId>>> {
        self.send(Rpc::Vote, RPCTypes::Vote, &rpc, &option).await
    }

    /// openraft waits this long before calling a peer that was `Unreachable` again; its
    /// default is 500 ms. A member that restarts calls an election if no heartbeat reaches it
    /// within its election timeout (0.5 to 0.8 s after it starts): a leader still waiting out
    /// half a second would let it, and the restarted member's higher term would then depose a
    /// healthy leader. Retrying every heartbeat interval reaches it in time; a refused
    /// connection costs next to nothing, a blackholed one is bounded by the connect timeout.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.retry_every))
    }
}
