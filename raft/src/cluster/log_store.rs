//! The Raft log and the votes, in sled: openraft's `RaftLogStorage`. Owns the `raft_log` and
//! `raft_meta` trees; never touches the state machine's tree.
//!
//! Durability follows what openraft relies on: appended entries, votes, truncations and the
//! purge marker are flushed before openraft is told they happened; `committed` is not (it is
//! a hint that lets a restarted member re-apply sooner; losing it loses nothing).

// openraft's storage traits fix the error type (`StorageError`, ~200 bytes); the helpers
// here return the same type so `?` needs no conversions.
#![allow(clippy::result_large_err)]

use crate::cluster::codec::{from_record, to_record};
use crate::cluster::db::{index_key, key_index, RaftDb};
use crate::cluster::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// A member's Raft log. Cheap to clone: openraft hands clones to its replication tasks.
#[derive(Clone)]
pub struct SledLogStore {
    db: Arc<RaftDb>,
}

fn io(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

impl SledLogStore {
    pub(crate) fn new(db: Arc<RaftDb>) -> Self {
        SledLogStore { db }
    }

    fn get_meta<T: DeserializeOwned>(
        &self,
        key: &str,
        subject: ErrorSubject<u64>,
    ) -> Result<Option<T>, StorageError> {
        let raw = self
            .db
            .meta
            .get(key)
            .map_err(|e| io(subject.clone(), ErrorVerb::Read, e))?;
        raw.map(|v| from_record(&v).map_err(|e| io(subject, ErrorVerb::Read, e)))
            .transpose()
    }

    fn put_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        subject: ErrorSubject<u64>,
    ) -> Result<(), StorageError> {
        let rec = to_record(value).map_err(|e| io(subject.clone(), ErrorVerb::Write, e))?;
        self.db
            .meta
            .insert(key, rec)
            .map_err(|e| io(subject, ErrorVerb::Write, e))?;
        Ok(())
    }

    async fn flush(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        self.db
            .db
            .flush_async()
            .await
            .map_err(|e| io(subject, ErrorVerb::Write, e))?;
        Ok(())
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let Some((_, v)) = self
            .db
            .log
            .last()
            .map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        let entry: Entry =
            from_record(&v).map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        Ok(Some(entry.log_id))
    }

    /// Removes the keys in `[from, to)` in one atomic batch.
    fn remove_range(&self, from: u64, to: Option<u64>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        let range = match to {
            Some(to) => self.db.log.range(index_key(from)..index_key(to)),
            None => self.db.log.range(index_key(from)..),
        };
        for item in range {
            let (k, _) = item.map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
            batch.remove(k);
        }
        self.db
            .log
            .apply_batch(batch)
            .map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&x) => x,
            Bound::Excluded(&x) => match x.checked_add(1) {
                Some(x) => x,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for item in self.db.log.range(index_key(start)..) {
            let (k, v) = item.map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let index = key_index(&k).ok_or_else(|| {
                io(
                    ErrorSubject::Logs,
                    ErrorVerb::Read,
                    std::io::Error::other(format!("malformed log key {k:?}")),
                )
            })?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = from_record(&v)
                .map_err(|e| io(ErrorSubject::LogIndex(index), ErrorVerb::Read, e))?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED, ErrorSubject::Store)?;
        // After a purge of everything, the log is empty and its last id is the purged one.
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta(VOTE, vote, ErrorSubject::Vote)?;
        // A vote forgotten in a crash could be cast twice in one term.
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta(COMMITTED, &committed, ErrorSubject::Store)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .get_meta::<Option<LogId>>(COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let rec = to_record(&entry)
                .map_err(|e| io(ErrorSubject::Log(entry.log_id), ErrorVerb::Write, e))?;
            batch.insert(&index_key(entry.log_id.index), rec);
        }
        self.db
            .log
            .apply_batch(batch)
            .map_err(|e| io(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        // openraft counts an entry towards a quorum once the callback says it is durable.
        match self.db.db.flush_async().await {
            Ok(_) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(from = log_id.index, "truncating raft log");
        self.remove_range(log_id.index, None)?;
        self.flush(ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(upto = log_id.index, "purging raft log");
        // The marker goes first and durably: entries at or below it are ignored by openraft,
        // so a crash between the two steps leaves only garbage, never a hole.
        self.put_meta(LAST_PURGED, &log_id, ErrorSubject::Store)?;
        self.flush(ErrorSubject::Store).await?;
        self.remove_range(0, log_id.index.checked_add(1))?;
        Ok(())
    }
}
