//! The sled database that holds one member's Raft state, and its layout. Owns opening and
//! closing it; the log store and the state machine only read and write their trees.
//!
//! Layout (every value is a `codec` record: a format byte, then bincode):
//! - tree `raft_log`: big-endian log index -> `Entry` (big-endian so sled's key order is log
//!   order and ranges are scans);
//! - tree `raft_meta`: `vote`, `committed`, `last_purged` -> openraft's values;
//! - tree `raft_sm`: `applied` -> the state machine (last applied log id, membership, metadata),
//!   `snapshot` -> the last snapshot (its meta and its bytes).

use crate::error::Result;
use std::path::Path;
use tokio::sync::oneshot;

pub(crate) struct Trees {
    pub db: sled::Db,
    pub log: sled::Tree,
    pub meta: sled::Tree,
    pub sm: sled::Tree,
}

/// Shared by the log store, the state machine and openraft's tasks holding clones of them.
/// sled locks its directory until the last handle is gone, so a member restarting in the same
/// process must know when that is: dropping the last `RaftDb` flushes, closes and then says so.
pub(crate) struct RaftDb {
    trees: Option<Trees>,
    closed: Option<oneshot::Sender<()>>,
}

impl RaftDb {
    /// Opens (or creates) the database in `dir`. The receiver fires once it is closed again.
    pub fn open(dir: &Path) -> Result<(RaftDb, oneshot::Receiver<()>)> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(4 * 1024 * 1024)
            .open()?;
        let trees = Trees {
            log: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
            sm: db.open_tree("raft_sm")?,
            db,
        };
        let (tx, rx) = oneshot::channel();
        Ok((
            RaftDb {
                trees: Some(trees),
                closed: Some(tx),
            },
            rx,
        ))
    }
}

impl std::ops::Deref for RaftDb {
    type Target = Trees;

    fn deref(&self) -> &Trees {
        self.trees.as_ref().expect("trees live until drop")
    }
}

impl Drop for RaftDb {
    fn drop(&mut self) {
        if let Some(trees) = self.trees.take() {
            if let Err(e) = trees.db.flush() {
                tracing::warn!(error = %e, "raft storage flush on close failed");
            }
            drop(trees);
        }
        if let Some(tx) = self.closed.take() {
            let _ = tx.send(());
        }
    }
}

pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn key_index(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}
