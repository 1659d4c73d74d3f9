//! Leadership and the small metadata replicated with it. The rest of the node asks two
//! questions through ports defined here: who schedules now, and in which term
//! ([`Leadership`]); and which integer job ids may this node hand out ([`IdAllocator`]).
//!
//! Two implementations provide them. [`SingleNode`] is a cluster of one: always the leader, in
//! a term that grows by one on every start so that scheduler events of a previous run are
//! fenced. [`ClusterMember`] is a member of the HA cluster: openraft elects the leader, the
//! Raft log (sled) replicates membership and job-id blocks, members talk over tonic.

mod cluster;
mod error;
mod ids;
mod leadership;
mod metrics;
mod single_node;

pub use cluster::{
    open_storage, ClusterConfig, ClusterMember, ClusterView, Command, CommandResponse,
    KindlingRaft, MemberAddrs, MemberId, MemberView, PeerNetwork, PeerService, SledLogStore,
    SledStateMachine, TypeConfig,
};
pub use error::{RaftError, Result};
pub use ids::IdBlocks;
pub use leadership::{IdAllocator, LeaderState, Leadership};
pub use single_node::SingleNode;
