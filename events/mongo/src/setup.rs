//! What opening a store sets up in its database: the indexes the queries need, and
//! projections of the current layout (older ones are dropped for a replay).

use crate::documents::{self as d, backend};
use crate::store::MongoProjections;
use kindling_store::{ProjectionStore, Result};
use mongodb::bson::{doc, Document};
use mongodb::IndexModel;

impl MongoProjections {
    /// One index per API filter on jobs, each followed by the id the matches are sorted by
    /// (so a page is read in order, not sorted in memory); statements and history chunks by
    /// job. Indexes are named by the driver from their keys, so creating them again is a
    /// no-op; nothing here depends on their names.
    pub(crate) async fn create_indexes(&self) -> Result<()> {
        let by = |keys: Document| IndexModel::builder().keys(keys).build();
        self.jobs
            .create_indexes([
                by(doc! { d::NUMBER: 1 }),
                by(doc! { d::STATE: 1, d::NUMBER: 1 }),
                by(doc! { d::KIND: 1, d::NUMBER: 1 }),
                by(doc! { d::OWNER: 1, d::NUMBER: 1 }),
            ])
            .await
            .map_err(backend("create job indexes"))?;
        self.statements
            .create_index(by(doc! { d::JOB: 1, d::STATEMENT: 1 }))
            .await
            .map_err(backend("create statement index"))?;
        self.history
            .create_index(by(doc! { d::JOB: 1, d::CHUNK_NO: 1 }))
            .await
            .map_err(backend("create history index"))?;
        Ok(())
    }

    /// Projections written in another layout (an older build's `Job`) are dropped, so the
    /// projector rebuilds them from the log: an upgrade costs one replay, not documents that
    /// no longer decode. Each member has its own database, so no other writer is affected.
    pub(crate) async fn rebuild_if_older(&self) -> Result<()> {
        let checkpoint = self
            .meta
            .find_one(doc! { d::ID: d::CHECKPOINT_ID })
            .await
            .map_err(backend("read checkpoint"))?;
        let Some(checkpoint) = checkpoint else {
            return Ok(());
        };
        let stored = checkpoint.get(d::FORMAT_FIELD).cloned();
        if stored.as_ref().and_then(d::as_u64) != Some(d::FORMAT as u64) {
            tracing::warn!(
                stored = ?stored,
                current = d::FORMAT,
                "the projections were written in another layout; rebuilding them from the log"
            );
            self.clear().await?;
        }
        Ok(())
    }
}
