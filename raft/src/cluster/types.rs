//! The openraft type configuration of Kindling's cluster: who a member is ([`MemberAddrs`]),
//! what the replicated state machine accepts ([`Command`]) and answers ([`CommandResponse`]).
//! These types are persisted in the Raft log and sent between members, so changing their
//! serde shape is a format change (see `codec`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

/// A member's id in openraft; the same number as the domain's `NodeId`.
pub type MemberId = u64;

/// Where a member can be reached. Stored in the Raft membership, so every member knows every
/// other member's addresses (`GET /api/v1/cluster` reads them from there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberAddrs {
    /// `host:port` of the member's Raft gRPC service, as its peers dial it.
    pub raft_addr: String,
    /// `host:port` (or base URL) of the member's HTTP API, as clients reach it.
    pub http_addr: String,
    /// `host:port` of the member's driver gateway (gRPC), as session drivers reach it. Empty
    /// for a member that serves no drivers.
    pub driver_addr: String,
}

impl MemberAddrs {
    pub fn new(raft_addr: impl Into<String>, http_addr: impl Into<String>) -> Self {
        MemberAddrs {
            raft_addr: raft_addr.into(),
            http_addr: http_addr.into(),
            driver_addr: String::new(),
        }
    }

    /// The same addresses with the driver gateway's.
    pub fn with_driver(mut self, driver_addr: impl Into<String>) -> Self {
        self.driver_addr = driver_addr.into();
        self
    }
}

impl fmt::Display for MemberAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} http={}", self.raft_addr, self.http_addr)
    }
}

/// A change to the replicated metadata. Every command is safe to submit twice: a repeated
/// lease burns a block (its ids are skipped, never reused), a repeated floor is a no-op. That is
/// what lets a member retry a request whose answer it lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Reserve `size` consecutive job ids for `node`; answered with [`CommandResponse::IdBlock`].
    LeaseIdBlock { node: MemberId, size: u64 },
    /// No id below this one may be handed out from now on (`next_id = max(next_id, floor)`):
    /// the event log already holds ids up to `floor - 1`, e.g. from before the metadata existed.
    EnsureFloor(u64),
    /// Proposes the cluster's identity; the first proposal wins, later ones change nothing.
    /// Answered with [`CommandResponse::Identity`], the identity in force.
    ProposeIdentity(ClusterIdentity),
}

/// What every member of one cluster shares and nothing else knows: the id that tags what the
/// cluster leaves on shared machines (driver processes, pods), and the key from which session
/// driver secrets derive, so whichever member leads can re-issue a launch with the same
/// secret. Chosen once, by the first member, and replicated.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub cluster_id: String,
    pub key: Vec<u8>,
    /// Added to every Raft term before it fences scheduler events: a data directory that
    /// already holds events fenced by higher terms (written before this Raft log existed)
    /// keeps its newer scheduler events from being ignored as stale.
    pub term_base: u64,
}

impl fmt::Debug for ClusterIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterIdentity")
            .field("cluster_id", &self.cluster_id)
            .field("key", &"<redacted>")
            .field("term_base", &self.term_base)
            .finish()
    }
}

/// What applying one log entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// Blank and membership entries change no metadata.
    Nothing,
    /// The ids `[start, end)`, handed to no one else, ever. Empty only when the id space is
    /// exhausted.
    IdBlock { start: u64, end: u64 },
    /// The floor after an `EnsureFloor`: the next id the state machine will lease.
    NextId(u64),
    /// The identity in force after a `ProposeIdentity`.
    Identity(ClusterIdentity),
}

openraft::declare_raft_types!(
    /// Kindling's openraft types: u64 member ids, members known by their addresses, snapshots
    /// held in memory (the metadata is a few bytes).
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = MemberId,
        Node = MemberAddrs,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle of a member.
pub type KindlingRaft = openraft::Raft<TypeConfig>;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<MemberId>;
pub(crate) type StorageError = openraft::StorageError<MemberId>;
pub(crate) type StoredMembership = openraft::StoredMembership<MemberId, MemberAddrs>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<MemberId, MemberAddrs>;
pub(crate) type Snapshot = openraft::storage::Snapshot<TypeConfig>;
pub(crate) type Vote = openraft::Vote<MemberId>;
pub(crate) type RaftMetrics = openraft::RaftMetrics<MemberId, MemberAddrs>;
