//! Conditional upserts in bulk: many documents of one collection written by one `update`
//! command, each only if the stored copy is older. This is how the adapter stays correct with
//! no multi-document transaction and several projectors racing.
//!
//! Each statement is `{q: {_id, applied: {$lt: new}}, u: {$set: fields, $setOnInsert: {_id}},
//! upsert: true}`. Where the stored document is older, it is replaced field by field; where
//! there is none, it is inserted; where it already reflects `new` or later, the filter matches
//! nothing, the upsert's insert collides with the existing `_id`, and the server answers a
//! duplicate-key write error (11000). That error alone does not mean "already newer": two
//! projectors inserting the same new document race, and the loser's copy may be the newer
//! one. So every duplicate-key statement is retried once as a plain conditional update (no
//! upsert): the document exists by then, and `applied: {$lt}` alone decides. (MongoDB
//! retries such an upsert by itself only when the filter is equality on a unique index, which
//! `applied: {$lt}` is not.) `_id` is also set on insert, explicitly, because some
//! wire-compatible servers do not copy it from the filter.
//!
//! The plain `update` command (through `run_command`) rather than the client-level
//! `bulkWrite` of the driver: that one needs MongoDB 8.0, this one works on every server
//! version in support. It is unordered: statements touch distinct documents, and one stale
//! document must not stop the others. `run_command` applies neither the database's write
//! concern nor the driver's batch splitting, so both are done here.

use crate::documents::{backend, ID};
use kindling_store::{Result, StoreError};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;
/// A command document may not exceed 16 MiB; stay well below it, overhead included.
const MAX_COMMAND_BYTES: usize = 8 << 20;
/// Below the server's `maxWriteBatchSize` (100,000), and small enough that one command's
/// work is bounded.
const MAX_STATEMENTS: usize = 10_000;

/// One conditional upsert.
pub struct Upsert {
    statement: Document,
    /// An estimate of the statement's encoded size, for splitting commands.
    size: usize,
}

impl Upsert {
    /// Writes `fields` to the document `id` unless its `key` already holds `value` or more
    /// (`fields` sets `key` to `value`).
    pub fn if_newer(
        id: impl Into<Bson>,
        key: &str,
        value: i64,
        fields: Document,
        size: usize,
    ) -> Upsert {
        let id = id.into();
        Upsert::new(
            doc! { ID: id.clone(), key: { "$lt": value } },
            id,
            fields,
            size,
        )
    }

    /// Writes `fields` to the document `id` whatever it holds: for documents whose content
    /// the log fixes (history chunks), so any writer writes the same.
    pub fn idempotent(id: impl Into<Bson>, fields: Document, size: usize) -> Upsert {
        let id = id.into();
        Upsert::new(doc! { ID: id.clone() }, id, fields, size)
    }

    fn new(filter: Document, id: Bson, fields: Document, size: usize) -> Upsert {
        Upsert {
            statement: doc! {
                "q": filter,
                "u": { "$set": fields, "$setOnInsert": { ID: id } },
                "upsert": true,
            },
            size: size + 128,
        }
    }
}

/// What a bulk write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Documents inserted or updated.
    pub written: usize,
    /// Documents left alone because they already reflect a later position.
    pub stale: usize,
}

/// Runs `upserts` against `collection` in as few `update` commands as the size limits allow,
/// each acknowledged by a majority with journaling. Fails on any write error but a stale
/// document; on failure, some documents may have been written (each one whole).
pub async fn upsert_all(db: &Database, collection: &str, upserts: Vec<Upsert>) -> Result<Written> {
    let mut total = Written::default();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for u in upserts {
        if !batch.is_empty()
            && (batch.len() == MAX_STATEMENTS || bytes + u.size > MAX_COMMAND_BYTES)
        {
            let w = run(db, collection, std::mem::take(&mut batch)).await?;
            total.written += w.written;
            total.stale += w.stale;
            bytes = 0;
        }
        bytes += u.size;
        batch.push(u.statement);
    }
    if !batch.is_empty() {
        let w = run(db, collection, batch).await?;
        total.written += w.written;
        total.stale += w.stale;
    }
    Ok(total)
}

async fn run(db: &Database, collection: &str, updates: Vec<Document>) -> Result<Written> {
    let count = updates.len();
    let reply = command(
        db,
        collection,
        updates.iter().cloned().map(Bson::Document).collect(),
    )
    .await?;
    let duplicates = duplicate_keys(collection, &reply)?;
    let mut w = Written {
        written: count - duplicates.len(),
        stale: 0,
    };
    if duplicates.is_empty() {
        return Ok(w);
    }
    // Lost an insert race: retry as a conditional update of the document that now exists.
    let retry: Vec<Bson> = duplicates
        .iter()
        .filter_map(|&i| updates.get(i))
        .map(|u| {
            let mut u = u.clone();
            u.insert("upsert", false);
            Bson::Document(u)
        })
        .collect();
    let tried = retry.len();
    let reply = command(db, collection, retry).await?;
    if !duplicate_keys(collection, &reply)?.is_empty() {
        return Err(StoreError::Backend(format!(
            "mongodb bulk update of {collection}: duplicate key without an upsert"
        )));
    }
    let matched = match reply.get("n") {
        Some(Bson::Int32(n)) => *n as usize,
        Some(Bson::Int64(n)) => *n as usize,
        _ => 0,
    }
    .min(tried);
    w.written += matched;
    w.stale += tried - matched;
    Ok(w)
}

async fn command(db: &Database, collection: &str, updates: Vec<Bson>) -> Result<Document> {
    db.run_command(doc! {
        "update": collection,
        "updates": updates,
        "ordered": false,
        "writeConcern": { "w": "majority", "j": true },
    })
    .await
    .map_err(backend("bulk update"))
}

/// Reads an `update` command's reply: the indexes of the statements that hit a duplicate key;
/// any other write error fails the write, and so does a write concern error (the writes
/// happened but may not be durable).
fn duplicate_keys(collection: &str, reply: &Document) -> Result<Vec<usize>> {
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(StoreError::Backend(format!(
            "mongodb bulk update of {collection}: write concern not satisfied: {wce}"
        )));
    }
    let mut out = Vec::new();
    if let Ok(errors) = reply.get_array("writeErrors") {
        for e in errors {
            let Bson::Document(d) = e else {
                return Err(StoreError::Backend(format!(
                    "mongodb bulk update of {collection}: {e}"
                )));
            };
            let int = |key: &str| match d.get(key) {
                Some(Bson::Int32(c)) => Some(i64::from(*c)),
                Some(Bson::Int64(c)) => Some(*c),
                _ => None,
            };
            match (int("code"), int("index")) {
                (Some(c), Some(i)) if c == i64::from(DUPLICATE_KEY) && i >= 0 => {
                    out.push(i as usize)
                }
                _ => {
                    return Err(StoreError::Backend(format!(
                        "mongodb bulk update of {collection}: {e}"
                    )))
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_retried_and_other_errors_fail() {
        let reply = doc! {
            "ok": 1, "n": 2,
            "writeErrors": [{ "index": 1, "code": 11000, "errmsg": "E11000 duplicate key" }],
        };
        assert_eq!(duplicate_keys("jobs", &reply).unwrap(), [1]);
        let reply = doc! {
            "ok": 1, "n": 0,
            "writeErrors": [{ "index": 0, "code": 2, "errmsg": "bad value" }],
        };
        assert!(duplicate_keys("jobs", &reply).is_err());
        let reply = doc! { "ok": 1, "n": 1, "writeConcernError": { "code": 64, "errmsg": "waiting for replication timed out" } };
        assert!(duplicate_keys("jobs", &reply).is_err());
    }

    #[test]
    fn a_stale_upsert_is_conditional_on_applied() {
        let u = Upsert::if_newer(7i64, "applied", 12, doc! { "applied": 12i64 }, 10);
        assert_eq!(
            u.statement,
            doc! {
                "q": { "_id": 7i64, "applied": { "$lt": 12i64 } },
                "u": { "$set": { "applied": 12i64 }, "$setOnInsert": { "_id": 7i64 } },
                "upsert": true,
            }
        );
    }
}
