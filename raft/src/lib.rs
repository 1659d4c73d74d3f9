//! Leadership and the small metadata replicated with it. The rest of the node asks two
//! questions through ports defined here: who schedules now, and in which term
//! ([`Leadership`]); and which integer job ids may this node hand out ([`IdAllocator`]).
//!
//! [`ClusterMember`] provides them: a member of the cluster, where openraft elects the leader,
//! the Raft log (sled) replicates membership, job-id blocks and the cluster's identity, and
//! members talk over tonic. The embedded single node is a cluster of one member on the same
//! code: it elects itself on every start, in a term higher than the last.

mod cluster;
mod error;
mod leadership;
pub mod metrics;

pub use cluster::{
    open_storage, ClusterConfig, ClusterIdentity, ClusterMember, ClusterSecret, ClusterView,
    Command, CommandResponse, KindlingRaft, MemberAddrs, MemberId, MemberView, PeerNetwork,
    PeerService, SecretError, SledLogStore, SledStateMachine, TypeConfig,
};
pub use error::{RaftError, Result};
pub use leadership::{IdAllocator, LeaderCheck, LeaderState, Leadership};
