//! Leadership and the small metadata replicated with it. The rest of the node asks two
//! questions through ports defined here: who schedules now, and in which term
//! ([`Leadership`]); and which integer job ids may this node hand out ([`IdAllocator`]).
//!
//! Today the cluster has one member: [`SingleNode`] is always the leader, in a term that grows
//! by one on every start so that scheduler events of a previous run are fenced. The openraft
//! implementation of the HA cluster provides the same ports.

mod error;
mod ids;
mod leadership;

pub use error::{RaftError, Result};
pub use ids::IdBlocks;
pub use leadership::{IdAllocator, LeaderState, Leadership, SingleNode};
