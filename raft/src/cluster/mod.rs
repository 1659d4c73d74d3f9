//! The HA cluster: Kindling's openraft type configuration, its sled storage, the tonic Raft
//! link and [`ClusterMember`], which provides the crate's ports on top of them. The replicated
//! state is small metadata only: openraft's membership and the job-id space.

mod codec;
mod config;
mod db;
mod leader_request;
mod leader_watch;
mod log_store;
mod member;
mod metadata;
mod network;
mod routing;
mod secret;
mod service;
mod state_machine;
pub(crate) mod types;
mod view;

pub use config::ClusterConfig;
pub use log_store::SledLogStore;
pub use member::ClusterMember;
pub use network::PeerNetwork;
pub use secret::{ClusterSecret, SecretError};
pub use service::PeerService;
pub use state_machine::SledStateMachine;
pub use types::{
    ClusterIdentity, Command, CommandResponse, KindlingRaft, MemberAddrs, MemberId, TypeConfig,
};
pub use view::{ClusterView, MemberView};

use crate::error::Result;
use std::path::Path;
use std::sync::Arc;

/// Opens the Raft storage in `dir` on its own, without a member: what openraft's storage
/// suite and offline tools need. A member opens it itself in [`ClusterMember::start`].
pub fn open_storage(dir: &Path) -> Result<(SledLogStore, SledStateMachine)> {
    let (db, _closed) = db::RaftDb::open(dir)?;
    let db = Arc::new(db);
    Ok((SledLogStore::new(db.clone()), SledStateMachine::open(db)?))
}
