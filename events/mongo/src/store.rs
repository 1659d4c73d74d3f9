//! `MongoProjections`: the `ProjectionStore` port on a MongoDB database, shared by every node
//! of an HA cluster. It owns four collections (`jobs`, `statements`, `history`, `meta`, which
//! also holds the cluster registry; see `documents`) and their indexes, and nothing else in
//! the database.
//!
//! No multi-document transaction: every job and statement document records the log position
//! it reflects, an `apply` writes documents before it moves the checkpoint, and each write is
//! conditional on the stored document being older (`writes`). A crash between the documents
//! and the checkpoint only makes the next `apply` fold events that the documents then skip,
//! and two projectors applying the same events race to identical documents. Every write is
//! acknowledged by a majority with journaling, and reads use read concern `majority`, so a
//! projector never builds on a write that a failover could roll back.

use crate::documents::{self as d, backend, JobDoc};
use async_trait::async_trait;
use futures::TryStreamExt;
use kindling_events::{
    Envelope, Job, JobId, LeaderFence, LogPosition, Registry, Statement, StatementId, Tokens,
};
use kindling_store::{JobQuery, KindFilter, Page, ProjectionStore, Result};
use mongodb::bson::{doc, Document};
use mongodb::options::{Acknowledgment, ClientOptions, DatabaseOptions, ReadConcern, WriteConcern};
use mongodb::{Client, Collection, Database};

/// Where the projections live.
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct MongoConfig {
    /// A MongoDB connection string (`mongodb://` or `mongodb+srv://`); driver options such as
    /// `replicaSet` or `serverSelectionTimeoutMS` go in its query.
    pub uri: String,
    /// The database holding the projection collections, owned by Kindling alone.
    pub database: String,
    /// The password of the user `uri` names (kept out of the URI, which shows in process
    /// tables and logs). Never serialized or shown.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

impl std::fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoConfig")
            .field("uri", &self.uri)
            .field("database", &self.database)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub struct MongoProjections {
    pub(crate) db: Database,
    pub(crate) jobs: Collection<Document>,
    pub(crate) statements: Collection<Document>,
    pub(crate) history: Collection<Document>,
    pub(crate) meta: Collection<Document>,
}

impl MongoProjections {
    /// A one-document aggregate of `meta` (the registry, the tokens); empty before its first
    /// event.
    async fn singleton<T: serde::de::DeserializeOwned + Default>(&self, id: &str) -> Result<T> {
        match self
            .meta
            .find_one(doc! { d::ID: id })
            .await
            .map_err(backend("read a meta document"))?
        {
            Some(doc) => d::decode_singleton(&doc, id),
            None => Ok(T::default()),
        }
    }

    /// Connects and creates the indexes the queries need (an existing index is left as is).
    pub async fn open(config: &MongoConfig) -> Result<Self> {
        let mut client_options = ClientOptions::parse(&config.uri)
            .await
            .map_err(backend("connection string"))?;
        if let Some(password) = &config.password {
            let credential = client_options
                .credential
                .get_or_insert_with(Default::default);
            if credential.username.is_none() {
                return Err(kindling_store::StoreError::Backend(
                    "a MongoDB password needs the user's name in the connection string \
                     (mongodb://user@host/...)"
                        .into(),
                ));
            }
            credential.password = Some(password.clone());
        }
        let client = Client::with_options(client_options).map_err(backend("client options"))?;
        let options = DatabaseOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(
                WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build(),
            )
            .build();
        let db = client.database_with_options(&config.database, options);
        let store = MongoProjections {
            jobs: db.collection(d::JOBS),
            statements: db.collection(d::STATEMENTS),
            history: db.collection(d::HISTORY),
            meta: db.collection(d::META),
            db,
        };
        store.create_indexes().await?;
        store.rebuild_if_older().await?;
        Ok(store)
    }
}

/// `usize` to the `i64`/`u64` the driver wants for skip and limit, saturating: no query can
/// skip past `i64::MAX` documents anyway.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn total(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl MongoProjections {
    /// The checkpoint and the leader fence as of it, read together: one document holds both.
    pub(crate) async fn checkpoint_and_fence(&self) -> Result<(LogPosition, LeaderFence)> {
        match self
            .meta
            .find_one(doc! { d::ID: d::CHECKPOINT_ID })
            .await
            .map_err(backend("read checkpoint"))?
        {
            Some(doc) => d::decode_checkpoint(&doc),
            None => Ok((LogPosition(0), LeaderFence::default())),
        }
    }

    /// The page of `query` over the jobs `filter` selects, matched and paged here.
    async fn jobs_filtered_here(&self, filter: Document, query: &JobQuery) -> Result<Page<Job>> {
        let mut cursor = self
            .jobs
            .find(filter)
            .sort(doc! { d::NUMBER: if query.newest_first { -1 } else { 1 } })
            .await
            .map_err(backend("query jobs"))?;
        let (mut items, mut total) = (Vec::new(), 0);
        while let Some(doc) = cursor.try_next().await.map_err(backend("query jobs"))? {
            let job = JobDoc::decode(&doc)?.job;
            if query.matches(&job) {
                if total >= query.offset && items.len() < query.limit {
                    items.push(job);
                }
                total += 1;
            }
        }
        Ok(Page { items, total })
    }
}

#[async_trait]
impl ProjectionStore for MongoProjections {
    async fn apply(&self, batch: &[Envelope]) -> Result<()> {
        self.apply_batch(batch).await
    }

    async fn checkpoint(&self) -> Result<LogPosition> {
        Ok(self.checkpoint_and_fence().await?.0)
    }

    async fn fence(&self) -> Result<LeaderFence> {
        Ok(self.checkpoint_and_fence().await?.1)
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>> {
        self.jobs
            .find_one(doc! { d::ID: d::job_id(id)? })
            .await
            .map_err(backend("read job"))?
            .map(|doc| JobDoc::decode(&doc).map(|j| j.job))
            .transpose()
    }

    async fn jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        let mut filter = Document::new();
        if !query.include_deleted {
            filter.insert(d::DELETED, false);
        }
        if let Some(kind) = query.kind {
            let kind = match kind {
                KindFilter::Batch => "batch",
                KindFilter::Session => "session",
            };
            filter.insert(d::KIND, kind);
        }
        if let Some(state) = query.state {
            filter.insert(d::STATE, state.as_str());
        }
        if let Some(owner) = &query.owner {
            filter.insert(d::OWNER, owner.as_str());
        }
        if let Some(user) = &query.visible_to {
            filter.insert(
                "$or",
                vec![
                    doc! { d::OWNER: user.as_str() },
                    doc! { d::PROXY_USER: user.as_str() },
                ],
            );
        }
        if query.name.is_some() || query.cluster.is_some() {
            // Name and cluster live inside the encoded job, not in fields the server can
            // match: those are read whole and filtered here (issue 18 indexes them).
            return self.jobs_filtered_here(filter, query).await;
        }
        let find = async {
            // A limit of 0 means "no limit" to MongoDB.
            if query.limit == 0 {
                return Ok(vec![]);
            }
            self.jobs
                .find(filter.clone())
                .sort(doc! { d::NUMBER: if query.newest_first { -1 } else { 1 } })
                .skip(count(query.offset) as u64)
                .limit(count(query.limit))
                .await
                .map_err(backend("query jobs"))?
                .try_collect::<Vec<_>>()
                .await
                .map_err(backend("query jobs"))
        };
        let matching = async {
            self.jobs
                .count_documents(filter.clone())
                .await
                .map_err(backend("count jobs"))
        };
        let (docs, matching) = tokio::try_join!(find, matching)?;
        let items = docs
            .iter()
            .map(|doc| JobDoc::decode(doc).map(|j| j.job))
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            total: total(matching),
        })
    }

    async fn statement(&self, job: JobId, id: StatementId) -> Result<Option<Statement>> {
        self.statements
            .find_one(doc! { d::ID: d::statement_id(job, id) })
            .await
            .map_err(backend("read statement"))?
            .map(|doc| d::decode_statement(&doc))
            .transpose()
    }

    async fn statements(&self, job: JobId, offset: usize, limit: usize) -> Result<Page<Statement>> {
        let filter = doc! { d::JOB: d::job_id(job)? };
        let find = async {
            if limit == 0 {
                return Ok(vec![]);
            }
            self.statements
                .find(filter.clone())
                .sort(doc! { d::STATEMENT: 1 })
                .skip(count(offset) as u64)
                .limit(count(limit))
                .await
                .map_err(backend("query statements"))?
                .try_collect::<Vec<_>>()
                .await
                .map_err(backend("query statements"))
        };
        let matching = async {
            self.statements
                .count_documents(filter.clone())
                .await
                .map_err(backend("count statements"))
        };
        let (docs, matching) = tokio::try_join!(find, matching)?;
        let items = docs
            .iter()
            .map(d::decode_statement)
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            total: total(matching),
        })
    }

    async fn history(&self, job: JobId) -> Result<Vec<LogPosition>> {
        let Some(doc) = self
            .jobs
            .find_one(doc! { d::ID: d::job_id(job)? })
            .await
            .map_err(backend("read job"))?
        else {
            return Ok(vec![]);
        };
        let stored = JobDoc::decode(&doc)?;
        let mut out = Vec::with_capacity(stored.chunks as usize * d::CHUNK + stored.tail.len());
        if stored.chunks > 0 {
            // Only the chunks the job document counts: a chunk written by an `apply` that
            // failed before its job document is not history yet.
            let chunks: Vec<Document> = self
                .history
                .find(doc! {
                    d::JOB: d::job_id(job)?,
                    d::CHUNK_NO: { "$lt": d::to_i64(stored.chunks, "history chunk count")? },
                })
                .sort(doc! { d::CHUNK_NO: 1 })
                .await
                .map_err(backend("read history"))?
                .try_collect()
                .await
                .map_err(backend("read history"))?;
            if chunks.len() as u64 != stored.chunks {
                return Err(d::corrupt(
                    format!("{} of job {job}", d::HISTORY),
                    format!(
                        "{} chunks found, the job counts {}",
                        chunks.len(),
                        stored.chunks
                    ),
                ));
            }
            for c in &chunks {
                out.extend(d::decode_chunk(c)?);
            }
        }
        out.extend(stored.tail.into_iter().map(LogPosition));
        Ok(out)
    }

    async fn registry(&self) -> Result<Registry> {
        self.singleton(d::REGISTRY_ID).await
    }

    async fn tokens(&self) -> Result<Tokens> {
        self.singleton(d::TOKENS_ID).await
    }

    async fn clear(&self) -> Result<()> {
        // The checkpoint goes first: documents without it are only redone, never missed.
        for coll in [&self.meta, &self.jobs, &self.statements, &self.history] {
            coll.drop().await.map_err(backend("drop collection"))?;
        }
        self.create_indexes().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_needs_a_user_and_is_never_shown() {
        let config = MongoConfig {
            uri: "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100".into(),
            database: "kindling".into(),
            password: Some("hunter2-secret".into()),
        };
        let Err(e) = MongoProjections::open(&config).await else {
            panic!("opened without a user for the password");
        };
        assert!(e.to_string().contains("user's name"), "{e}");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!serde_json::to_string(&config).unwrap().contains("hunter2"));
    }
}
