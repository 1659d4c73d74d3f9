//! Integer job ids handed out in blocks: a node reserves a block durably, then hands ids out
//! of memory, so a submission costs no metadata write. Ids left in a block when the node stops
//! are skipped, never reused.

use crate::error::Result;
use kindling_events::JobId;
use tokio::sync::Mutex;

const BLOCK: u64 = 100;

pub struct IdBlocks {
    db: sled::Db,
    tree: sled::Tree,
    /// (next id to hand out, end of the reserved block)
    range: Mutex<(u64, u64)>,
}

impl IdBlocks {
    pub fn open(db: sled::Db, floor: JobId) -> Result<Self> {
        let tree = db.open_tree("id_blocks")?;
        let reserved = tree
            .get("reserved_until")?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0)
            .max(floor.0);
        Ok(IdBlocks {
            db,
            tree,
            range: Mutex::new((reserved, reserved)),
        })
    }

    pub async fn next(&self) -> Result<JobId> {
        let mut r = self.range.lock().await;
        if r.0 >= r.1 {
            let until = r.1 + BLOCK;
            self.tree.insert("reserved_until", &until.to_be_bytes())?;
            self.db.flush_async().await?;
            *r = (r.1, until);
        }
        let id = r.0;
        r.0 += 1;
        Ok(JobId(id))
    }
}
