//! The single-member implementation of the ports: always the leader, no peers, no openraft.
//! What `kindling serve` runs until it is configured with peers.

use crate::error::Result;
use crate::ids::IdBlocks;
use crate::leadership::{IdAllocator, LeaderState, Leadership};
use async_trait::async_trait;
use kindling_events::{JobId, NodeId, Term};
use std::path::Path;
use tokio::sync::watch;

/// A one-member cluster: always the leader. The term is persisted and grows by one per start.
pub struct SingleNode {
    id: NodeId,
    state: watch::Sender<LeaderState>,
    ids: IdBlocks,
}

impl SingleNode {
    /// Opens the metadata store at `path`; `min_job_id` is a floor for new ids (one past the
    /// highest id the log holds), so losing the metadata never reuses an id.
    pub fn open(path: &Path, id: NodeId, min_job_id: JobId) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(1024 * 1024)
            .open()?;
        let meta = db.open_tree("meta")?;
        let term = meta
            .get("term")?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0)
            + 1;
        meta.insert("term", &term.to_be_bytes())?;
        db.flush()?;
        let (state, _) = watch::channel(LeaderState {
            term: Term(term),
            leader: Some(id),
            is_leader: true,
        });
        let ids = IdBlocks::open(db, min_job_id)?;
        Ok(SingleNode { id, state, ids })
    }
}

impl Leadership for SingleNode {
    fn node_id(&self) -> NodeId {
        self.id
    }

    fn watch(&self) -> watch::Receiver<LeaderState> {
        self.state.subscribe()
    }
}

#[async_trait]
impl IdAllocator for SingleNode {
    async fn next_job_id(&self) -> Result<JobId> {
        self.ids.next().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn term_grows_on_every_start_and_ids_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let mut last_term = Term(0);
        for _ in 0..3 {
            let node = SingleNode::open(dir.path(), NodeId(1), JobId(0)).unwrap();
            let st = *node.watch().borrow();
            assert!(st.is_leader);
            assert!(st.term > last_term);
            last_term = st.term;
            for _ in 0..150 {
                let id = node.next_job_id().await.unwrap();
                assert!(seen.insert(id), "id {id} handed out twice");
            }
        }
        let node = SingleNode::open(dir.path(), NodeId(1), JobId(5000)).unwrap();
        assert!(
            node.next_job_id().await.unwrap() >= JobId(5000),
            "floor respected"
        );
    }
}
