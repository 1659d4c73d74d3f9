//! A member of the HA cluster: one openraft `Raft` over the sled storage, serving the Raft
//! link on a listener, and providing the crate's ports (`Leadership`, `IdAllocator`) plus the
//! membership operations (bootstrap, join, add, remove) and the cluster view. Owns the
//! member's lifecycle: everything it starts, `shutdown` stops.

use crate::cluster::config::ClusterConfig;
use crate::cluster::db::RaftDb;
use crate::cluster::leader_request::{LeaderReply, LeaderRequest};
use crate::cluster::leader_watch::{self, leader_state};
use crate::cluster::log_store::SledLogStore;
use crate::cluster::network::{PeerChannels, PeerNetwork};
use crate::cluster::routing::LeaderRouter;
use crate::cluster::service::PeerService;
use crate::cluster::state_machine::SledStateMachine;
use crate::cluster::types::{ClusterIdentity, Command, CommandResponse, KindlingRaft, MemberAddrs};
use crate::cluster::view::ClusterView;
use crate::error::{RaftError, Result};
use crate::leadership::{IdAllocator, LeaderCheck, LeaderState, Leadership};
use crate::metrics;
use async_trait::async_trait;
use kindling_events::{JobId, NodeId};
use openraft::error::InitializeError;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long `shutdown` waits for each of the member's tasks and for its storage to close.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct ClusterMember {
    id: NodeId,
    config: ClusterConfig,
    raft: KindlingRaft,
    leader: Arc<watch::Sender<LeaderState>>,
    router: LeaderRouter,
    /// The rest of the id block this member leased last; handed out from memory.
    ids: Mutex<Range<u64>>,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    storage_closed: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl ClusterMember {
    /// Opens the member's storage in `config.dir`, starts its Raft and serves the Raft link on
    /// `listener`. A member with state from a previous run resumes from it; a new one waits
    /// for [`bootstrap`](Self::bootstrap) or [`join`](Self::join).
    pub async fn start(config: ClusterConfig, listener: TcpListener) -> Result<Self> {
        let id = config.node_id;
        let raft_config = Arc::new(config.openraft()?);
        let (db, storage_closed) = RaftDb::open(&config.dir)?;
        let db = Arc::new(db);
        let log = SledLogStore::new(db.clone());
        let sm = SledStateMachine::open(db)?;
        let channels = PeerChannels::new(config.connect_timeout, config.secret.clone());
        let raft = KindlingRaft::new(
            id.0,
            raft_config,
            PeerNetwork::new(id.0, channels.clone(), config.heartbeat_interval),
            log,
            sm,
        )
        .await?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| RaftError::Transport(e.to_string()))?;

        let shutdown = CancellationToken::new();
        let lease = config.election_timeout_max;
        let (tx, rx) = watch::channel(leader_state(&raft.metrics().borrow(), lease));
        let leader = Arc::new(tx);
        let watcher = leader_watch::spawn(&raft, leader.clone(), lease, shutdown.clone());
        let server = spawn_server(
            PeerService::new(raft.clone(), config.catch_up_timeout, config.secret.clone()),
            listener,
            shutdown.clone(),
        );
        let router = LeaderRouter {
            id: id.0,
            raft: raft.clone(),
            channels,
            leader: rx,
            catch_up: config.catch_up_timeout,
            retry_wait: config.election_timeout_max,
        };
        tracing::info!(node_id = id.0, %local_addr, addrs = %config.addrs, dir = %config.dir.display(), "raft member started");
        Ok(ClusterMember {
            id,
            config,
            raft,
            leader,
            router,
            ids: Mutex::new(0..0),
            local_addr,
            shutdown,
            tasks: std::sync::Mutex::new(vec![watcher, server]),
            storage_closed: std::sync::Mutex::new(Some(storage_closed)),
        })
    }

    /// The address the Raft link listens on (useful when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The openraft handle, for metrics and waits (`raft().wait(..)`).
    pub fn raft(&self) -> &KindlingRaft {
        &self.raft
    }

    /// Makes this member the first of a new cluster of one. Does nothing on a member that is
    /// part of a cluster already (e.g. after a restart), so a node may call it on every start.
    pub async fn bootstrap(&self) -> Result<()> {
        let members = BTreeMap::from([(self.id.0, self.config.addrs.clone())]);
        match self.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(
                    node_id = self.id.0,
                    "bootstrapped a one-member raft cluster"
                );
                Ok(())
            }
            Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(_))) => {
                tracing::debug!("raft already initialised, not bootstrapping");
                Ok(())
            }
            Err(openraft::error::RaftError::APIError(e)) => Err(RaftError::Rejected(e.to_string())),
            Err(openraft::error::RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Joins the cluster that the members at `seeds` (Raft addresses) belong to: the leader
    /// adds this member as a learner, lets it catch up with the log, then makes it a voter.
    /// Returns at once on a member that is a voter already (e.g. after a restart).
    pub async fn join(&self, seeds: &[String]) -> Result<()> {
        if self.is_voter() {
            tracing::debug!("already a raft voter, not joining");
            return Ok(());
        }
        if seeds.is_empty() {
            return Err(RaftError::Config(
                "joining needs the address of at least one member".into(),
            ));
        }
        tracing::info!(node_id = self.id.0, ?seeds, "joining raft cluster");
        let req = LeaderRequest::AddMember {
            id: self.id.0,
            addrs: self.config.addrs.clone(),
        };
        let timeout = self.config.leader_request_timeout + self.config.catch_up_timeout;
        self.router.send(req, seeds, timeout).await?;
        Ok(())
    }

    /// Adds member `id` at `addrs` as a voter (what `join` asks of the leader, for an operator).
    pub async fn add_member(&self, id: NodeId, addrs: MemberAddrs) -> Result<()> {
        let timeout = self.config.leader_request_timeout + self.config.catch_up_timeout;
        self.router
            .send(LeaderRequest::AddMember { id: id.0, addrs }, &[], timeout)
            .await?;
        Ok(())
    }

    /// Takes member `id` out of the cluster. It stops receiving the log and counting towards
    /// quorums; it can no longer be elected. Stop its process afterwards.
    pub async fn remove_member(&self, id: NodeId) -> Result<()> {
        self.router
            .send(
                LeaderRequest::RemoveMember { id: id.0 },
                &[],
                self.config.leader_request_timeout,
            )
            .await?;
        Ok(())
    }

    fn is_voter(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        let voter = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.id.0);
        voter
    }

    /// The cluster as this member sees it now.
    pub fn cluster_view(&self) -> ClusterView {
        ClusterView::from_metrics(&self.raft.metrics().borrow())
    }

    /// Makes sure no id below `floor` is handed out from now on, by any member: the node calls
    /// it with one past the highest job id its event log holds, so losing the Raft metadata
    /// never reissues an id.
    pub async fn ensure_id_floor(&self, floor: JobId) -> Result<()> {
        self.apply(Command::EnsureFloor(floor.0)).await?;
        let mut block = self.ids.lock().await;
        if block.start < floor.0 {
            block.start = floor.0.min(block.end);
        }
        Ok(())
    }

    /// The cluster's identity: `proposed` if this is the first proposal the cluster accepts,
    /// otherwise the identity chosen before. Needs a leader (forwarded to it).
    pub async fn identity(&self, proposed: ClusterIdentity) -> Result<ClusterIdentity> {
        match self.apply(Command::ProposeIdentity(proposed)).await? {
            CommandResponse::Identity(id) => Ok(id),
            other => Err(RaftError::Rejected(format!(
                "unexpected answer to an identity proposal: {other:?}"
            ))),
        }
    }

    /// Whether this member is a voter of the cluster it belongs to (false before it bootstraps
    /// or joins).
    pub fn is_member(&self) -> bool {
        self.is_voter()
    }

    async fn apply(&self, cmd: Command) -> Result<CommandResponse> {
        let reply = self
            .router
            .send(
                LeaderRequest::Apply(cmd),
                &[],
                self.config.leader_request_timeout,
            )
            .await?;
        match reply {
            LeaderReply::Applied(r) => Ok(r),
            other => Err(RaftError::Rejected(format!(
                "unexpected answer to a command: {other:?}"
            ))),
        }
    }

    async fn lease_block(&self) -> Result<Range<u64>> {
        let cmd = Command::LeaseIdBlock {
            node: self.id.0,
            size: self.config.id_block_size,
        };
        match self.apply(cmd).await? {
            CommandResponse::IdBlock { start, end } if start < end => {
                metrics::id_block_leased();
                tracing::debug!(start, end, "leased job id block");
                Ok(start..end)
            }
            CommandResponse::IdBlock { .. } => Err(RaftError::IdsExhausted),
            other => Err(RaftError::Rejected(format!(
                "unexpected answer to a lease: {other:?}"
            ))),
        }
    }

    /// Stops the member: its Raft, the Raft link's server and its leadership watch (which
    /// reports "not leader" last), then waits until the storage is closed, so the same
    /// directory can be opened again by a new member in this process.
    pub async fn shutdown(&self) -> Result<()> {
        tracing::info!(node_id = self.id.0, "stopping raft member");
        // Raft first: calls still in flight on the server then fail fast with UNAVAILABLE.
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft core ended abnormally");
        }
        self.shutdown.cancel();
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for mut task in tasks {
            if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                tracing::warn!("raft member task did not stop in time, aborting it");
                task.abort();
            }
        }
        let closed = self
            .storage_closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(closed) = closed {
            if tokio::time::timeout(STOP_GRACE, closed).await.is_err() {
                return Err(RaftError::Storage(format!(
                    "raft storage in {} still open {STOP_GRACE:?} after shutdown",
                    self.config.dir.display()
                )));
            }
        }
        tracing::info!(node_id = self.id.0, "raft member stopped");
        Ok(())
    }
}

impl Drop for ClusterMember {
    fn drop(&mut self) {
        // Without `shutdown` the Raft core keeps running; at least stop serving and watching.
        self.shutdown.cancel();
    }
}

fn spawn_server(
    svc: PeerService,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            |conn| {
                // Heartbeats are small messages: without it each waits out a delayed ACK.
                if let Ok(c) = &conn {
                    let _ = c.set_nodelay(true);
                }
                conn
            },
        );
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(svc.into_server())
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "raft rpc server failed");
        }
    })
}

impl Leadership for ClusterMember {
    fn node_id(&self) -> NodeId {
        self.id
    }

    fn watch(&self) -> watch::Receiver<LeaderState> {
        self.leader.subscribe()
    }
}

#[async_trait]
impl LeaderCheck for ClusterMember {
    async fn confirm_leadership(&self) -> Result<()> {
        let wait = self.config.leader_request_timeout;
        match tokio::time::timeout(wait, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RaftError::NoLeader {
                waited: wait,
                last: format!("leadership not confirmed: {e}"),
            }),
            Err(_) => Err(RaftError::NoLeader {
                waited: wait,
                last: "leadership not confirmed: no quorum answered".into(),
            }),
        }
    }
}

#[async_trait]
impl IdAllocator for ClusterMember {
    /// Hands out the next id of this member's block, leasing a new block through the leader
    /// when it is used up. Concurrent callers wait for the one lease in flight.
    async fn next_job_id(&self) -> Result<JobId> {
        let mut block = self.ids.lock().await;
        if block.is_empty() {
            *block = self.lease_block().await?;
        }
        let id = block.start;
        block.start += 1;
        Ok(JobId(id))
    }
}
