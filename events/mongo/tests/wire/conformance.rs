//! The conformance suite every `ProjectionStore` adapter passes, here on MongoDB.

use crate::{run_id, Nx};
use async_trait::async_trait;
use kindling_store::conformance::{projection_suite, ProjectionHarness};
use kindling_store_mongo::MongoProjections;

/// Each store name is a database of its own, prefixed by the test run.
struct Harness {
    nx: Nx,
    run: String,
}

#[async_trait]
impl ProjectionHarness for Harness {
    type Store = MongoProjections;

    async fn open(&self, name: &str) -> MongoProjections {
        self.nx.open(&format!("{}_{name}", self.run)).await
    }

    async fn close(&self, store: MongoProjections) {
        drop(store)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_projections_pass_the_conformance_suite() {
    let h = Harness {
        nx: Nx::start().await,
        run: run_id(),
    };
    projection_suite(&h).await;
}
