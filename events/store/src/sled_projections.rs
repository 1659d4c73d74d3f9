//! Projections on sled: one tree, keys prefixed by document type, so a whole applied batch
//! (documents and checkpoint) is one atomic `apply_batch`, fsynced before `apply` returns.
//!
//! Keys: `J`+job for jobs, `S`+job+statement for statements, `H`+job+position for a job's
//! history, `C` for the checkpoint.

use crate::error::{Result, StoreError};
use crate::keys::{prefixed, read_u64};
use crate::projections::{JobQuery, Page, ProjectionStore};
use async_trait::async_trait;
use kindling_events::{
    codec, job::Applied, Envelope, Job, JobId, LogPosition, Statement, StatementId,
};
use std::collections::HashMap;
use std::path::Path;

const JOB: u8 = b'J';
const STATEMENT: u8 = b'S';
const HISTORY: u8 = b'H';
const CHECKPOINT: &[u8] = b"C";

pub struct SledProjections {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledProjections {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(None)
            .open()?;
        let tree = db.open_tree("projections")?;
        Ok(SledProjections { db, tree })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.tree.get(key)? {
            Some(v) => codec::decode_value(&v)
                .map(Some)
                .map_err(|e| corrupt(key, e)),
            None => Ok(None),
        }
    }
}

fn corrupt(key: &[u8], e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        at: format!("projection key {key:?}"),
        reason: e.to_string(),
    }
}

#[async_trait]
impl ProjectionStore for SledProjections {
    async fn apply(&self, batch: &[Envelope]) -> Result<()> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let checkpoint = self.checkpoint().await?;
        let mut jobs: HashMap<JobId, Option<Job>> = HashMap::new();
        let mut statements: HashMap<(JobId, StatementId), Option<Statement>> = HashMap::new();
        let mut out = sled::Batch::default();
        for env in batch.iter().filter(|e| e.position >= checkpoint) {
            let Some(id) = env.job() else { continue };
            let job = match jobs.entry(id) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(self.get(&prefixed(JOB, &[id.0]))?)
                }
            };
            let applied = match job {
                None => {
                    *job = Job::created(env);
                    job.is_some()
                }
                Some(j) => j.apply(env) == Applied::Yes,
            };
            if !applied {
                continue;
            }
            out.insert(
                prefixed(HISTORY, &[id.0, env.position.0]),
                codec::encode(env),
            );
            if let Some(sid) = env.event.statement() {
                let key = (id, sid);
                let doc = match statements.entry(key) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(self.get(&prefixed(STATEMENT, &[id.0, sid.0]))?)
                    }
                };
                Statement::apply(doc, env);
            }
        }
        for (id, job) in jobs {
            if let Some(job) = job {
                out.insert(prefixed(JOB, &[id.0]), codec::encode_value(&job));
            }
        }
        for ((job, sid), doc) in statements {
            if let Some(doc) = doc {
                out.insert(
                    prefixed(STATEMENT, &[job.0, sid.0]),
                    codec::encode_value(&doc),
                );
            }
        }
        let next = last.position.next().max(checkpoint);
        out.insert(CHECKPOINT, &next.0.to_be_bytes());
        self.tree.apply_batch(out)?;
        self.db.flush_async().await?;
        Ok(())
    }

    async fn checkpoint(&self) -> Result<LogPosition> {
        Ok(LogPosition(
            self.tree
                .get(CHECKPOINT)?
                .and_then(|v| read_u64(&v))
                .unwrap_or(0),
        ))
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>> {
        self.get(&prefixed(JOB, &[id.0]))
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        let mut items = Vec::new();
        let mut total = 0;
        for item in self.tree.scan_prefix([JOB]) {
            let (k, v) = item?;
            let job: Job = codec::decode_value(&v).map_err(|e| corrupt(&k, e))?;
            if query.matches(&job) {
                if total >= query.offset && items.len() < query.limit {
                    items.push(job);
                }
                total += 1;
            }
        }
        Ok(Page { items, total })
    }

    async fn statement(&self, job: JobId, id: StatementId) -> Result<Option<Statement>> {
        self.get(&prefixed(STATEMENT, &[job.0, id.0]))
    }

    async fn statements(&self, job: JobId, offset: usize, limit: usize) -> Result<Page<Statement>> {
        let mut items = Vec::new();
        let mut total = 0;
        for item in self.tree.scan_prefix(prefixed(STATEMENT, &[job.0])) {
            let (k, v) = item?;
            if total >= offset && items.len() < limit {
                items.push(codec::decode_value(&v).map_err(|e| corrupt(&k, e))?);
            }
            total += 1;
        }
        Ok(Page { items, total })
    }

    async fn history(&self, job: JobId) -> Result<Vec<Envelope>> {
        self.tree
            .scan_prefix(prefixed(HISTORY, &[job.0]))
            .map(|item| {
                let (k, v) = item?;
                codec::decode(&v).map_err(|e| corrupt(&k, e))
            })
            .collect()
    }

    async fn clear(&self) -> Result<()> {
        self.tree.clear()?;
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{projection_suite, ProjectionHarness};

    struct Sled(tempfile::TempDir);

    #[async_trait]
    impl ProjectionHarness for Sled {
        type Store = SledProjections;
        async fn open(&self, name: &str) -> SledProjections {
            SledProjections::open(&self.0.path().join(name)).unwrap()
        }
        async fn close(&self, store: SledProjections) {
            drop(store)
        }
    }

    #[tokio::test]
    async fn sled_projections_pass_the_conformance_suite() {
        projection_suite(&Sled(tempfile::tempdir().unwrap())).await;
    }
}
