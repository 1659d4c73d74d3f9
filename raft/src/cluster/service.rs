//! The server side of the Raft link: a tonic service that decodes each RPC, hands it to this
//! member's `Raft` (or executes a forwarded leader request) and encodes the answer. It owns no
//! state; `network` is the client side.
//!
//! An answer from Raft, error or not, travels as encoded bytes; only failures of the link
//! itself are gRPC statuses. One exception: when this member's Raft has stopped, the call
//! fails with UNAVAILABLE, so the caller treats it like a member that is down and backs off.
//! A call that does not prove the cluster secret (when the member has one) fails with
//! UNAUTHENTICATED before anything is decoded.

use crate::cluster::codec::{from_wire, to_wire, LIMIT, WIRE_CODEC};
use crate::cluster::leader_request::{self, LeaderRequest};
use crate::cluster::network::{Rpc, CLUSTER_TOKEN};
use crate::cluster::secret::ClusterSecret;
use crate::cluster::types::{KindlingRaft, MemberId};
use kindling_proto::raft::v1::raft_peer_server::{RaftPeer, RaftPeerServer};
use kindling_proto::raft::v1::{raft_reply, RaftReply, RaftRequest};
use openraft::error::RaftError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Serves `kindling.raft.v1.RaftPeer` for one member.
#[derive(Clone)]
pub struct PeerService {
    raft: KindlingRaft,
    catch_up: Duration,
    secret: Option<Arc<ClusterSecret>>,
}

impl PeerService {
    /// `catch_up` bounds how long a joining member may take to receive the log when this
    /// member, as leader, adds it; with a `secret`, every call must prove it.
    pub fn new(raft: KindlingRaft, catch_up: Duration, secret: Option<Arc<ClusterSecret>>) -> Self {
        PeerService {
            raft,
            catch_up,
            secret,
        }
    }

    /// Decodes a call of `rpc` once it proves the cluster secret (if this member has one).
    fn admit<T: DeserializeOwned>(&self, rpc: Rpc, req: Request<RaftRequest>) -> Result<T, Status> {
        if let Some(secret) = &self.secret {
            let token = req
                .metadata()
                .get(CLUSTER_TOKEN)
                .and_then(|v| v.to_str().ok());
            if let Err(e) = secret.verify(rpc.name(), token, &req.get_ref().payload) {
                let from = req.remote_addr();
                tracing::warn!(?from, rpc = rpc.name(), error = %e, "raft call refused");
                return Err(Status::unauthenticated(e.to_string()));
            }
        }
        decode(req)
    }

    /// The tonic service, with message limits that fit snapshot chunks and append batches.
    pub fn into_server(self) -> RaftPeerServer<PeerService> {
        RaftPeerServer::new(self)
            .max_decoding_message_size(LIMIT)
            .max_encoding_message_size(LIMIT)
    }
}

fn decode<T: DeserializeOwned>(req: Request<RaftRequest>) -> Result<T, Status> {
    let req = req.into_inner();
    if req.codec != WIRE_CODEC {
        return Err(Status::failed_precondition(format!(
            "raft codec {} is not spoken here (this member speaks {WIRE_CODEC})",
            req.codec
        )));
    }
    from_wire(req.codec, &req.payload)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft request: {e}")))
}

fn encode<T: Serialize, E: Serialize>(
    answer: &Result<T, E>,
) -> Result<Response<RaftReply>, Status> {
    let result = match answer {
        Ok(v) => raft_reply::Result::Ok(to_wire(v).map_err(|e| Status::internal(e.to_string()))?),
        Err(e) => {
            raft_reply::Result::Error(to_wire(e).map_err(|e| Status::internal(e.to_string()))?)
        }
    };
    Ok(Response::new(RaftReply {
        codec: WIRE_CODEC,
        result: Some(result),
    }))
}

fn answer<T: Serialize, E: Serialize + std::error::Error>(
    answer: Result<T, RaftError<MemberId, E>>,
) -> Result<Response<RaftReply>, Status> {
    if let Err(RaftError::Fatal(f)) = &answer {
        return Err(Status::unavailable(format!(
            "raft is not running here: {f}"
        )));
    }
    encode(&answer)
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        answer(
            self.raft
                .append_entries(self.admit(Rpc::AppendEntries, request)?)
                .await,
        )
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        answer(self.raft.vote(self.admit(Rpc::Vote, request)?).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        answer(
            self.raft
                .install_snapshot(self.admit(Rpc::InstallSnapshot, request)?)
                .await,
        )
    }

    async fn forward(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req: LeaderRequest = self.admit(Rpc::Forward, request)?;
        tracing::debug!(?req, "executing forwarded leader request");
        encode(&leader_request::execute(&self.raft, req, self.catch_up).await)
    }
}
