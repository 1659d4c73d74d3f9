//! Projections on sled: one tree, keys prefixed by document type, so a whole applied batch
//! (documents and checkpoint) is one atomic `apply_batch`, fsynced before `apply` returns.
//!
//! Keys: `J`+job for jobs, `S`+job+statement for statements, `H`+job+chunk for full chunks
//! of a job's history, `R` for the cluster registry, `C` for the checkpoint, `F` for the
//! leader fence as of the checkpoint, `P` for the layout version.
//!
//! sled manages about 100,000 inserts a second here, so replay speed is set by how many
//! keys a batch writes. A job's history (the log positions of its events) therefore lives
//! in the job's own document until it holds `CHUNK` positions, and only then moves to a
//! chunk of its own: replaying a job costs one write, not one per event.

use crate::error::{Result, StoreError};
use crate::keys::{prefixed, read_u64};
use crate::projections::{JobQuery, Page, ProjectionStore};
use async_trait::async_trait;
use kindling_events::{
    codec, job::Applied, Aggregate, Envelope, Job, JobId, LeaderFence, LogPosition, Registry,
    Statement, StatementId, Term, Tokens,
};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;

const JOB: u8 = b'J';
const STATEMENT: u8 = b'S';
const HISTORY: u8 = b'H';
const CHECKPOINT: &[u8] = b"C";
const FENCE: &[u8] = b"F";
const REGISTRY: &[u8] = b"R";
const TOKENS: &[u8] = b"T";
/// The layout of the documents, as [`LAYOUT_VERSION`] names it (absent before version 2).
const LAYOUT: &[u8] = b"P";
/// Bump on any change of a document's shape or of the bincode encoding of `Job` or
/// `Statement`: 2 added a job's retried attempts, 3 the registry's queues.
const LAYOUT_VERSION: u64 = 3;
/// History positions kept in the job document before they move to a chunk.
const CHUNK: usize = 256;

/// A job document as stored: the job and the newest part of its history.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredJob {
    job: Job,
    /// Positions of the newest events, oldest first.
    tail: Vec<u64>,
    /// How many full chunks precede `tail`.
    chunks: u64,
}

pub struct SledProjections {
    db: sled::Db,
    tree: sled::Tree,
    /// Whether writes are fsynced before they are acknowledged (all but `temporary`).
    durable: bool,
}

impl SledProjections {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(32 * 1024 * 1024)
            .flush_every_ms(None)
            .open()?;
        Self::on(db, true)
    }

    /// Projections that live as long as this value, never fsynced: for simulations (see
    /// `SledEventLog::temporary`).
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()?;
        Self::on(db, false)
    }

    fn on(db: sled::Db, durable: bool) -> Result<Self> {
        let tree = db.open_tree("projections")?;
        let store = SledProjections { db, tree, durable };
        store.rebuild_if_older()?;
        Ok(store)
    }

    /// Projections written in another layout (an older build's `Job`) are dropped, so the
    /// projector rebuilds them from the log, which is the source of truth: an upgrade then
    /// costs one replay instead of documents that no longer decode.
    fn rebuild_if_older(&self) -> Result<()> {
        let stored = match self.tree.get(LAYOUT)? {
            Some(v) => read_u64(&v).unwrap_or(0),
            None if self.tree.is_empty() => LAYOUT_VERSION,
            None => 1,
        };
        if stored != LAYOUT_VERSION {
            tracing::warn!(
                stored,
                current = LAYOUT_VERSION,
                "the projections were written in another layout; rebuilding them from the log"
            );
            self.tree.clear()?;
        }
        self.tree.insert(LAYOUT, &LAYOUT_VERSION.to_be_bytes())?;
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        if self.durable {
            // Not `flush_async`: sled's own thread keeps the database open a moment after
            // that resolves, and a store reopened at once (a test's restart) then finds it
            // still locked (seen once in CI). Here the clone is gone when the await ends.
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|e| StoreError::Backend(format!("flushing projections: {e}")))??;
        }
        Ok(())
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
        let mut fence = self.fence().await?;
        let mut jobs: HashMap<JobId, Option<StoredJob>> = HashMap::new();
        let mut statements: HashMap<(JobId, StatementId), Option<Statement>> = HashMap::new();
        let mut out = sled::Batch::default();
        let mut registry: Option<Registry> = None;
        let mut tokens: Option<Tokens> = None;
        for env in batch.iter().filter(|e| e.position >= checkpoint) {
            if !fence.admit(env) {
                continue;
            }
            if env.aggregate == Aggregate::Registry {
                let r = match &mut registry {
                    Some(r) => r,
                    None => registry.insert(self.registry().await?),
                };
                r.apply(env);
                continue;
            }
            if env.aggregate == Aggregate::Tokens {
                let t = match &mut tokens {
                    Some(t) => t,
                    None => tokens.insert(self.tokens().await?),
                };
                t.apply(env);
                continue;
            }
            let Some(id) = env.job() else { continue };
            let stored = match jobs.entry(id) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(self.get(&prefixed(JOB, &[id.0]))?),
            };
            let applied = match stored {
                None => {
                    *stored = Job::created(env).map(|job| StoredJob {
                        job,
                        tail: vec![],
                        chunks: 0,
                    });
                    stored.is_some()
                }
                Some(s) => s.job.apply(env) == Applied::Yes,
            };
            let Some(s) = stored.as_mut().filter(|_| applied) else {
                continue;
            };
            s.tail.push(env.position.0);
            if s.tail.len() == CHUNK {
                let chunk = std::mem::take(&mut s.tail);
                out.insert(
                    prefixed(HISTORY, &[id.0, s.chunks]),
                    codec::encode_value(&chunk),
                );
                s.chunks += 1;
            }
            if let Some(sid) = env.event.statement() {
                let doc = match statements.entry((id, sid)) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => v.insert(self.get(&prefixed(STATEMENT, &[id.0, sid.0]))?),
                };
                Statement::apply(doc, env);
            }
        }
        for (id, stored) in jobs {
            if let Some(stored) = stored {
                out.insert(prefixed(JOB, &[id.0]), codec::encode_value(&stored));
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
        if let Some(r) = registry {
            out.insert(REGISTRY, codec::encode_value(&r));
        }
        if let Some(t) = tokens {
            out.insert(TOKENS, codec::encode_value(&t));
        }
        let next = last.position.next().max(checkpoint);
        out.insert(CHECKPOINT, &next.0.to_be_bytes());
        out.insert(FENCE, &fence.newest().0.to_be_bytes());
        self.tree.apply_batch(out)?;
        self.flush().await?;
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

    async fn fence(&self) -> Result<LeaderFence> {
        let newest = self
            .tree
            .get(FENCE)?
            .and_then(|v| read_u64(&v))
            .unwrap_or(0);
        Ok(LeaderFence::new(Term(newest)))
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>> {
        Ok(self
            .get::<StoredJob>(&prefixed(JOB, &[id.0]))?
            .map(|s| s.job))
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        let mut items = Vec::new();
        let mut total = 0;
        let scan = self.tree.scan_prefix([JOB]);
        let scan: Box<dyn Iterator<Item = _>> = if query.newest_first {
            Box::new(scan.rev())
        } else {
            Box::new(scan)
        };
        for item in scan {
            let (k, v) = item?;
            let StoredJob { job, .. } = codec::decode_value(&v).map_err(|e| corrupt(&k, e))?;
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

    async fn history(&self, job: JobId) -> Result<Vec<LogPosition>> {
        let Some(stored) = self.get::<StoredJob>(&prefixed(JOB, &[job.0]))? else {
            return Ok(vec![]);
        };
        let mut out = Vec::with_capacity(stored.chunks as usize * CHUNK + stored.tail.len());
        for item in self.tree.scan_prefix(prefixed(HISTORY, &[job.0])) {
            let (k, v) = item?;
            let chunk: Vec<u64> = codec::decode_value(&v).map_err(|e| corrupt(&k, e))?;
            out.extend(chunk.into_iter().map(LogPosition));
        }
        out.extend(stored.tail.into_iter().map(LogPosition));
        Ok(out)
    }

    async fn registry(&self) -> Result<Registry> {
        Ok(self.get(REGISTRY)?.unwrap_or_default())
    }

    async fn tokens(&self) -> Result<Tokens> {
        Ok(self.get(TOKENS)?.unwrap_or_default())
    }

    async fn clear(&self) -> Result<()> {
        self.tree.clear()?;
        self.tree.insert(LAYOUT, &LAYOUT_VERSION.to_be_bytes())?;
        self.flush().await?;
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

    /// Documents of an older layout would not decode: they are dropped at open, and the
    /// checkpoint with them, so the projector replays the log into the current layout.
    #[tokio::test]
    async fn projections_of_an_older_layout_are_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let history = crate::conformance::sample_history();
        let job = history[0].job().unwrap();
        {
            let store = SledProjections::open(dir.path()).unwrap();
            store.apply(&history).await.unwrap();
            assert!(store.job(job).await.unwrap().is_some());
            assert!(store.checkpoint().await.unwrap() > LogPosition(0));
            // What a build before layouts were versioned left behind: no layout key.
            store.tree.remove(LAYOUT).unwrap();
            store.flush().await.unwrap();
        }
        let store = SledProjections::open(dir.path()).unwrap();
        assert_eq!(store.checkpoint().await.unwrap(), LogPosition(0));
        assert_eq!(store.job(job).await.unwrap(), None);
        store.apply(&history).await.unwrap();
        drop(store);
        // The current layout is kept across restarts.
        let store = SledProjections::open(dir.path()).unwrap();
        assert!(store.job(job).await.unwrap().is_some());
    }
}
