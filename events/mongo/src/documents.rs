//! How projections look in MongoDB: one document layout per collection, and the conversions
//! between domain values and BSON. Nothing here talks to the server.
//!
//! A job or statement is stored as its bincode encoding (`kindling_events::codec`, the same
//! bytes the sled adapter stores) in the binary field `data`, next to plain BSON fields that
//! exist for the server's sake: `applied` for compare-and-set writes, and the fields the API
//! filters on. bincode rather than BSON-via-serde because BSON has no unsigned 64-bit integer:
//! the domain holds `u64`s that users and drivers choose (`DurationSpec::millis`,
//! `StatementOutput::execution_count`), and one value above `i64::MAX` would make a document
//! unwritable and wedge the projector on that event forever. It also keeps Spark `conf` keys
//! (which may hold `.` and `$`) out of BSON field names. The price is opaque documents in a
//! shell; the filter fields are there for inspection as well as for queries.
//!
//! Positions and ids are written as `Int64`; converting a value above `i64::MAX` is an error
//! (a log that long does not exist). Reads accept `Int32` too: servers may narrow small numbers.
//!
//! Every document carries `format`; a document of another format is reported corrupt, and the
//! cure is the one for any projection: `clear` and replay the log, which opening the store
//! does by itself when its checkpoint is of another format (an upgrade).

use kindling_events::{codec, Job, JobId, LeaderFence, LogPosition, Statement, StatementId, Term};
use kindling_store::{Result, StoreError};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};

/// The layout written by this build. Bump it on any change of a document's shape or of the
/// bincode encoding of `Job`, `Statement` or the registry: 2 added a job's retried attempts,
/// 3 the registry's queues.
pub const FORMAT: i32 = 3;
/// History positions kept in the job document before they move to a chunk of their own (as
/// in the sled adapter: replaying a job writes one document, not one per event).
pub const CHUNK: usize = 256;

pub const JOBS: &str = "jobs";
pub const STATEMENTS: &str = "statements";
pub const HISTORY: &str = "history";
pub const META: &str = "meta";
/// The `_id` of the checkpoint document in `meta`.
pub const CHECKPOINT_ID: &str = "checkpoint";
/// The `_id` of the cluster registry document in `meta`: one small document holding every
/// registered cluster, `data` its bincode encoding, `applied` the compare-and-set key.
pub const REGISTRY_ID: &str = "registry";
/// The `_id` of the API tokens document in `meta`, stored like the registry's.
pub const TOKENS_ID: &str = "tokens";

pub const ID: &str = "_id";
/// A job's id again, as a number to sort by: nx-27017 orders `_id` as text (1, 10, 2).
pub const NUMBER: &str = "id";
pub const FORMAT_FIELD: &str = "format";
/// The last log position a job or statement document reflects (the compare-and-set key).
pub const APPLIED: &str = "applied";
pub const STATE: &str = "state";
pub const KIND: &str = "kind";
pub const OWNER: &str = "owner";
/// The user a job runs as; absent in documents written before listings were limited by user.
pub const PROXY_USER: &str = "proxy_user";
pub const DELETED: &str = "deleted";
pub const DATA: &str = "data";
pub const TAIL: &str = "history_tail";
pub const CHUNKS: &str = "history_chunks";
pub const JOB: &str = "job";
pub const STATEMENT: &str = "statement";
pub const CHUNK_NO: &str = "chunk";
pub const POSITIONS: &str = "positions";
pub const NEXT: &str = "next";
/// The leader fence as of the checkpoint (the newest leader term reflected), in the checkpoint
/// document. Absent in checkpoints written before the fence was kept: read as term 0.
pub const FENCE: &str = "fence";

/// A job document: the job and the newest part of its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDoc {
    pub job: Job,
    /// Positions of the newest events, oldest first (fewer than `CHUNK`).
    pub tail: Vec<u64>,
    /// How many full chunks precede `tail`.
    pub chunks: u64,
}

impl JobDoc {
    /// The fields a write sets (everything but `_id`).
    pub fn fields(&self) -> Result<Document> {
        let job = &self.job;
        Ok(doc! {
            FORMAT_FIELD: FORMAT,
            NUMBER: to_i64(job.id.0, "job id")?,
            APPLIED: to_i64(job.applied.0, "job applied position")?,
            STATE: job.state.as_str(),
            KIND: job.spec.kind_name(),
            OWNER: job.spec.owner.clone(),
            PROXY_USER: job.spec.proxy_user.clone(),
            DELETED: job.deleted,
            TAIL: i64_array(&self.tail, "history position")?,
            CHUNKS: to_i64(self.chunks, "history chunk count")?,
            DATA: binary(codec::encode_value(job)),
        })
    }

    pub fn decode(d: &Document) -> Result<JobDoc> {
        let at = || format!("{JOBS} {:?}", d.get(ID));
        check_format(d, &at)?;
        let job: Job = codec::decode_value(bytes(d, DATA, &at)?).map_err(|e| corrupt(at(), e))?;
        Ok(JobDoc {
            job,
            tail: u64_array(d, TAIL, &at)?,
            chunks: u64_field(d, CHUNKS, &at)?,
        })
    }
}

pub fn job_id(id: JobId) -> Result<Bson> {
    Ok(Bson::Int64(to_i64(id.0, "job id")?))
}

/// Statement ids restart at 0 in every session, so a statement's `_id` names both.
pub fn statement_id(job: JobId, id: StatementId) -> String {
    format!("{}:{}", job.0, id.0)
}

pub fn statement_fields(s: &Statement) -> Result<Document> {
    Ok(doc! {
        FORMAT_FIELD: FORMAT,
        JOB: to_i64(s.job.0, "job id")?,
        STATEMENT: to_i64(s.id.0, "statement id")?,
        APPLIED: to_i64(s.applied.0, "statement applied position")?,
        STATE: s.state.as_str(),
        DATA: binary(codec::encode_value(s)),
    })
}

pub fn decode_statement(d: &Document) -> Result<Statement> {
    let at = || format!("{STATEMENTS} {:?}", d.get(ID));
    check_format(d, &at)?;
    codec::decode_value(bytes(d, DATA, &at)?).map_err(|e| corrupt(at(), e))
}

pub fn chunk_id(job: JobId, chunk: u64) -> String {
    format!("{}:{}", job.0, chunk)
}

/// A full chunk of a job's history. Its content is fixed by the log (the job's events
/// `chunk * CHUNK ..`), so writing it twice, by a retry or by a racing projector, is harmless.
pub fn chunk_fields(job: JobId, chunk: u64, positions: &[u64]) -> Result<Document> {
    Ok(doc! {
        FORMAT_FIELD: FORMAT,
        JOB: to_i64(job.0, "job id")?,
        CHUNK_NO: to_i64(chunk, "history chunk")?,
        POSITIONS: i64_array(positions, "history position")?,
    })
}

pub fn decode_chunk(d: &Document) -> Result<Vec<LogPosition>> {
    let at = || format!("{HISTORY} {:?}", d.get(ID));
    check_format(d, &at)?;
    Ok(u64_array(d, POSITIONS, &at)?
        .into_iter()
        .map(LogPosition)
        .collect())
}

/// The fields of a one-document aggregate (the registry, the tokens) that reflects the log
/// up to `applied`.
pub fn singleton_fields<T: serde::Serialize>(value: &T, applied: LogPosition) -> Result<Document> {
    Ok(doc! {
        FORMAT_FIELD: FORMAT,
        APPLIED: to_i64(applied.0, "applied position")?,
        DATA: binary(codec::encode_value(value)),
    })
}

/// A one-document aggregate stored under `id` in `meta`.
pub fn decode_singleton<T: serde::de::DeserializeOwned>(d: &Document, id: &str) -> Result<T> {
    let at = || format!("{META} {id}");
    check_format(d, &at)?;
    codec::decode_value(bytes(d, DATA, &at)?).map_err(|e| corrupt(at(), e))
}

/// The checkpoint and the leader fence as of it.
pub fn decode_checkpoint(d: &Document) -> Result<(LogPosition, LeaderFence)> {
    let at = || format!("{META} {CHECKPOINT_ID}");
    check_format(d, &at)?;
    let next = u64_field(d, NEXT, &at).map(LogPosition)?;
    let fence = match d.get(FENCE) {
        None => 0,
        Some(_) => u64_field(d, FENCE, &at)?,
    };
    Ok((next, LeaderFence::new(Term(fence))))
}

pub fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| StoreError::Backend(format!("{what} {v} is beyond MongoDB's Int64")))
}

fn i64_array(values: &[u64], what: &str) -> Result<Vec<i64>> {
    values.iter().map(|v| to_i64(*v, what)).collect()
}

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

fn check_format(d: &Document, at: &impl Fn() -> String) -> Result<()> {
    match d.get(FORMAT_FIELD).and_then(as_u64) {
        Some(f) if f == FORMAT as u64 => Ok(()),
        other => Err(corrupt(
            at(),
            format!("document format {other:?}, this build reads {FORMAT}: clear the projections and replay the log"),
        )),
    }
}

fn bytes<'a>(d: &'a Document, key: &str, at: &impl Fn() -> String) -> Result<&'a [u8]> {
    match d.get(key) {
        Some(Bson::Binary(b)) => Ok(&b.bytes),
        other => Err(corrupt(at(), format!("{key} is {other:?}, not binary"))),
    }
}

fn u64_field(d: &Document, key: &str, at: &impl Fn() -> String) -> Result<u64> {
    d.get(key)
        .and_then(as_u64)
        .ok_or_else(|| corrupt(at(), format!("{key} is {:?}, not a count", d.get(key))))
}

fn u64_array(d: &Document, key: &str, at: &impl Fn() -> String) -> Result<Vec<u64>> {
    let Some(Bson::Array(values)) = d.get(key) else {
        return Err(corrupt(
            at(),
            format!("{key} is {:?}, not an array", d.get(key)),
        ));
    };
    values
        .iter()
        .map(|v| as_u64(v).ok_or_else(|| corrupt(at(), format!("{key} holds {v:?}"))))
        .collect()
}

pub(crate) fn as_u64(v: &Bson) -> Option<u64> {
    match v {
        Bson::Int64(i) => u64::try_from(*i).ok(),
        Bson::Int32(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

pub fn corrupt(at: String, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        at,
        reason: reason.to_string(),
    }
}

/// A driver error: the operation may or may not have happened on the server.
pub fn backend(what: &str) -> impl FnOnce(mongodb::error::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("mongodb {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_store::conformance::sample_history;

    fn sample_job() -> Job {
        let history = sample_history();
        let mut job = Job::created(&history[1]).expect("a submission");
        for env in &history[2..] {
            if env.job() == Some(job.id) {
                job.apply(env);
            }
        }
        job
    }

    #[test]
    fn job_documents_round_trip_and_expose_filter_fields() {
        let stored = JobDoc {
            job: sample_job(),
            tail: vec![1, 3, 5],
            chunks: 2,
        };
        let mut d = stored.fields().unwrap();
        assert_eq!(d.get_str(STATE).unwrap(), "busy");
        assert_eq!(d.get_str(KIND).unwrap(), "session");
        assert_eq!(d.get_str(OWNER).unwrap(), "bob");
        assert_eq!(d.get_i64(APPLIED).unwrap(), 10);
        d.insert(ID, job_id(stored.job.id).unwrap());
        assert_eq!(JobDoc::decode(&d).unwrap(), stored);
        // Servers may hand small numbers back as Int32.
        d.insert(CHUNKS, 2i32);
        d.insert(TAIL, vec![1i32, 3, 5]);
        assert_eq!(JobDoc::decode(&d).unwrap(), stored);
    }

    #[test]
    fn u64_values_beyond_int64_are_refused_not_wrapped() {
        let mut job = sample_job();
        job.applied = LogPosition(u64::MAX);
        let stored = JobDoc {
            job,
            tail: vec![],
            chunks: 0,
        };
        assert!(matches!(stored.fields(), Err(StoreError::Backend(_))));
    }

    #[test]
    fn documents_of_another_format_or_shape_are_corrupt() {
        let stored = JobDoc {
            job: sample_job(),
            tail: vec![],
            chunks: 0,
        };
        let mut d = stored.fields().unwrap();
        d.insert(FORMAT_FIELD, FORMAT + 1);
        assert!(matches!(
            JobDoc::decode(&d),
            Err(StoreError::Corrupt { .. })
        ));
        let mut d = stored.fields().unwrap();
        d.insert(DATA, "not bytes");
        assert!(matches!(
            JobDoc::decode(&d),
            Err(StoreError::Corrupt { .. })
        ));
        let mut d = stored.fields().unwrap();
        d.insert(TAIL, vec![-1i64]);
        assert!(matches!(
            JobDoc::decode(&d),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
