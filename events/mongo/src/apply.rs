//! Applying a batch of log events to the MongoDB projections: drop a deposed leader's late
//! writes (the leader fence), load the documents the batch touches, fold the events into them
//! (`fold`), write back what changed as conditional bulk upserts (`writes`), and only then move
//! the checkpoint, with the fence as of it. The order is what makes a crash at any point safe
//! without a transaction: history chunks before the job documents that count them, every
//! document (the registry's too) before the checkpoint that says it is reflected; a crash
//! before the checkpoint moves folds the same events again from the same fence.

use crate::documents::{self as d, backend, JobDoc};
use crate::fold::{fold, touched, Changes};
use crate::store::MongoProjections;
use crate::writes::{upsert_all, Upsert, Written};
use futures::TryStreamExt;
use kindling_events::job::Applied;
use kindling_events::{Aggregate, Envelope, LogPosition, Registry, Tokens};
use kindling_store::{ProjectionStore, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use std::collections::HashMap;

/// Ids per `$in` query when loading the documents a batch touches.
const LOAD_CHUNK: usize = 5_000;

impl MongoProjections {
    /// Folds `batch` into the documents: read the checkpoint and the documents the events
    /// touch, fold, write the changed documents, then move the checkpoint.
    pub(crate) async fn apply_batch(&self, batch: &[Envelope]) -> Result<()> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let (checkpoint, mut fence) = self.checkpoint_and_fence().await?;
        // A deposed leader's late writes take no effect, on any document.
        let events: Vec<&Envelope> = batch
            .iter()
            .filter(|e| e.position >= checkpoint)
            .filter(|e| fence.admit(e))
            .collect();
        let t = touched(events.iter().copied());
        let job_ids = t
            .jobs
            .iter()
            .map(|id| d::job_id(*id))
            .collect::<Result<_>>()?;
        let statement_ids = t
            .statements
            .iter()
            .map(|(j, s)| Bson::String(d::statement_id(*j, *s)))
            .collect();
        let (job_docs, statement_docs) = tokio::try_join!(
            self.load(&self.jobs, job_ids),
            self.load(&self.statements, statement_ids),
        )?;
        let mut jobs = HashMap::with_capacity(job_docs.len());
        for doc in &job_docs {
            let j = JobDoc::decode(doc)?;
            jobs.insert(j.job.id, j);
        }
        let mut statements = HashMap::with_capacity(statement_docs.len());
        for doc in &statement_docs {
            let s = d::decode_statement(doc)?;
            statements.insert((s.job, s.id), s);
        }
        let changes = fold(events.iter().copied(), jobs, statements);
        let (chunks, statements, jobs) = self.write(changes).await?;
        self.apply_singletons(&events).await?;
        let next = last.position.next();
        if next > checkpoint {
            // Conditional too: a racing projector that got further keeps its checkpoint.
            let at = d::to_i64(next.0, "checkpoint")?;
            let newest = d::to_i64(fence.newest().0, "leader fence")?;
            let fields = doc! { d::FORMAT_FIELD: d::FORMAT, d::NEXT: at, d::FENCE: newest };
            let checkpoint = Upsert::if_newer(d::CHECKPOINT_ID, d::NEXT, at, fields, 0);
            upsert_all(&self.db, d::META, vec![checkpoint]).await?;
        }
        tracing::debug!(
            events = batch.len(),
            jobs = jobs.written,
            statements = statements.written,
            chunks = chunks.written,
            stale = jobs.stale + statements.stale,
            next = next.0,
            "projections applied"
        );
        Ok(())
    }

    /// Folds the batch's events of a one-document aggregate (the registry, the tokens) into
    /// its document, `current` as stored, and writes it if they changed it, conditionally on
    /// the stored copy being older (as job documents are).
    async fn apply_singleton<T: serde::Serialize>(
        &self,
        events: &[&Envelope],
        id: &str,
        mut current: T,
        apply: impl Fn(&mut T, &Envelope) -> Applied,
        applied: impl Fn(&T) -> LogPosition,
    ) -> Result<()> {
        let mut changed = false;
        for env in events {
            changed |= apply(&mut current, env) == Applied::Yes;
        }
        if !changed {
            return Ok(());
        }
        let at = applied(&current);
        let fields = d::singleton_fields(&current, at)?;
        let size = fields.get(d::DATA).map_or(0, bson_size);
        let at = d::to_i64(at.0, "applied position")?;
        let upsert = Upsert::if_newer(id, d::APPLIED, at, fields, size);
        upsert_all(&self.db, d::META, vec![upsert]).await?;
        Ok(())
    }

    /// The registry's and the tokens' documents after the batch's events of theirs.
    async fn apply_singletons(&self, events: &[&Envelope]) -> Result<()> {
        let of = |aggregate: Aggregate| -> Vec<&Envelope> {
            let ours = events.iter().filter(|e| e.aggregate == aggregate);
            ours.copied().collect()
        };
        let registry = of(Aggregate::Registry);
        if !registry.is_empty() {
            let current = self.registry().await?;
            self.apply_singleton(&registry, d::REGISTRY_ID, current, Registry::apply, |r| {
                r.applied
            })
            .await?;
        }
        let tokens = of(Aggregate::Tokens);
        if !tokens.is_empty() {
            let current = self.tokens().await?;
            self.apply_singleton(&tokens, d::TOKENS_ID, current, Tokens::apply, |t| t.applied)
                .await?;
        }
        Ok(())
    }

    /// Loads the documents `ids` name, `LOAD_CHUNK` ids per query.
    async fn load(&self, coll: &Collection<Document>, ids: Vec<Bson>) -> Result<Vec<Document>> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(LOAD_CHUNK) {
            let cursor = coll
                .find(doc! { d::ID: { "$in": part } })
                .await
                .map_err(backend("load documents"))?;
            out.extend(
                cursor
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(backend("load documents"))?,
            );
        }
        Ok(out)
    }

    async fn write(&self, changes: Changes) -> Result<(Written, Written, Written)> {
        let mut chunks = Vec::with_capacity(changes.chunks.len());
        for (job, n, positions) in &changes.chunks {
            chunks.push(Upsert::idempotent(
                d::chunk_id(*job, *n),
                d::chunk_fields(*job, *n, positions)?,
                positions.len() * 9,
            ));
        }
        let mut statements = Vec::with_capacity(changes.statements.len());
        for s in &changes.statements {
            let fields = d::statement_fields(s)?;
            let size = fields.get(d::DATA).map_or(0, bson_size);
            statements.push(Upsert::if_newer(
                d::statement_id(s.job, s.id),
                d::APPLIED,
                d::to_i64(s.applied.0, "statement applied position")?,
                fields,
                size,
            ));
        }
        let mut jobs = Vec::with_capacity(changes.jobs.len());
        for j in &changes.jobs {
            let fields = j.fields()?;
            let size = fields.get(d::DATA).map_or(0, bson_size) + j.tail.len() * 9;
            jobs.push(Upsert::if_newer(
                d::job_id(j.job.id)?,
                d::APPLIED,
                d::to_i64(j.job.applied.0, "job applied position")?,
                fields,
                size,
            ));
        }
        // A job document counts its chunks: they must exist before it says so.
        let chunks = upsert_all(&self.db, d::HISTORY, chunks).await?;
        let (statements, jobs) = tokio::try_join!(
            upsert_all(&self.db, d::STATEMENTS, statements),
            upsert_all(&self.db, d::JOBS, jobs),
        )?;
        Ok((chunks, statements, jobs))
    }
}

fn bson_size(b: &Bson) -> usize {
    match b {
        Bson::Binary(b) => b.bytes.len(),
        _ => 0,
    }
}
