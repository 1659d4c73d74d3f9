//! The sled log store and state machine against openraft's own storage test suite.

use kindling_raft::{open_storage, SledLogStore, SledStateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

struct SledBuilder;

impl StoreBuilder<TypeConfig, SledLogStore, SledStateMachine, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, SledLogStore, SledStateMachine), StorageError<u64>> {
        let dir = TempDir::new().expect("temp dir");
        let (log, sm) = open_storage(dir.path()).expect("open raft storage");
        Ok((dir, log, sm))
    }
}

#[test]
fn sled_storage_passes_openraft_suite() {
    if let Err(e) = Suite::test_all(SledBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
