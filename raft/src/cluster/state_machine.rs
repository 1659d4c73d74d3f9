//! The replicated state machine in sled: openraft's `RaftStateMachine` over [`Metadata`] and
//! openraft's membership. Owns the `raft_sm` tree; never touches the log.
//!
//! The whole state is one small record (`applied`) rewritten after every applied batch, so the
//! data and the id of the last entry it reflects can never disagree. It is not flushed there:
//! a crash may lose the newest applications, and openraft re-applies them from the log (whose
//! appends are flushed). A snapshot is the same state encoded once more: its meta (last log
//! id, membership) plus the [`Metadata`] record as its bytes; it is flushed before openraft
//! may purge the log it replaces.

// openraft's storage traits fix the error type (`StorageError`, ~200 bytes); the helpers
// here return the same type so `?` needs no conversions.
#![allow(clippy::result_large_err)]

use crate::cluster::codec::{from_record, to_record};
use crate::cluster::db::RaftDb;
use crate::cluster::metadata::Metadata;
use crate::cluster::types::{
    CommandResponse, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};
use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::Arc;

const APPLIED: &str = "applied";
const SNAPSHOT: &str = "snapshot";

fn io(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

/// Everything the state machine holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    metadata: Metadata,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StoredSnapshot {
    fn into_snapshot(self) -> Snapshot {
        Snapshot {
            meta: self.meta,
            snapshot: Box::new(Cursor::new(self.data)),
        }
    }
}

pub struct SledStateMachine {
    db: Arc<RaftDb>,
    state: AppliedState,
}

impl SledStateMachine {
    pub(crate) fn open(db: Arc<RaftDb>) -> Result<Self, StorageError> {
        let mut state: AppliedState = match db
            .sm
            .get(APPLIED)
            .map_err(|e| io(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
        {
            Some(v) => {
                from_record(&v).map_err(|e| io(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
            }
            None => AppliedState::default(),
        };
        // The unflushed state may be older than the (flushed) snapshot whose log is purged
        // already: then the snapshot is the newest state this member can rebuild from.
        if let Some(snap) = read_snapshot(&db)? {
            if snap.meta.last_log_id > state.last_applied {
                state = state_from_snapshot(&snap.meta, &snap.data)?;
            }
        }
        Ok(SledStateMachine { db, state })
    }

    fn persist(&self) -> Result<(), StorageError> {
        let rec = to_record(&self.state)
            .map_err(|e| io(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        self.db
            .sm
            .insert(APPLIED, rec)
            .map_err(|e| io(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        Ok(())
    }
}

fn read_snapshot(db: &RaftDb) -> Result<Option<StoredSnapshot>, StorageError> {
    let Some(v) = db
        .sm
        .get(SNAPSHOT)
        .map_err(|e| io(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?
    else {
        return Ok(None);
    };
    let snap = from_record(&v).map_err(|e| io(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
    Ok(Some(snap))
}

fn state_from_snapshot(meta: &SnapshotMeta, data: &[u8]) -> Result<AppliedState, StorageError> {
    let metadata: Metadata = from_record(data).map_err(|e| {
        io(
            ErrorSubject::Snapshot(Some(meta.signature())),
            ErrorVerb::Read,
            e,
        )
    })?;
    Ok(AppliedState {
        last_applied: meta.last_log_id,
        membership: meta.last_membership.clone(),
        metadata,
    })
}

/// Stores `snap` unless a newer snapshot is stored already: a snapshot built from an older
/// state can finish after a newer one was installed from the leader.
async fn store_snapshot(db: &RaftDb, snap: &StoredSnapshot) -> Result<(), StorageError> {
    let subject = || ErrorSubject::Snapshot(Some(snap.meta.signature()));
    let rec = to_record(snap).map_err(|e| io(subject(), ErrorVerb::Write, e))?;
    let mut current = db
        .sm
        .get(SNAPSHOT)
        .map_err(|e| io(subject(), ErrorVerb::Read, e))?;
    loop {
        if let Some(cur) = &current {
            let cur: StoredSnapshot =
                from_record(cur).map_err(|e| io(subject(), ErrorVerb::Read, e))?;
            if cur.meta.last_log_id > snap.meta.last_log_id {
                return Ok(());
            }
        }
        match db
            .sm
            .compare_and_swap(SNAPSHOT, current, Some(rec.as_slice()))
            .map_err(|e| io(subject(), ErrorVerb::Write, e))?
        {
            Ok(()) => break,
            Err(conflict) => current = conflict.current,
        }
    }
    db.db
        .flush_async()
        .await
        .map_err(|e| io(subject(), ErrorVerb::Write, e))?;
    Ok(())
}

impl RaftStateMachine<TypeConfig> for SledStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries = entries.into_iter();
        let mut replies = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            self.state.last_applied = Some(entry.log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => CommandResponse::Nothing,
                EntryPayload::Normal(cmd) => {
                    let reply = self.state.metadata.apply(&cmd);
                    tracing::debug!(index = entry.log_id.index, ?cmd, ?reply, "applied command");
                    reply
                }
                EntryPayload::Membership(m) => {
                    self.state.membership = StoredMembership::new(Some(entry.log_id), m);
                    CommandResponse::Nothing
                }
            };
            replies.push(reply);
        }
        self.persist()?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            state: self.state.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let state = state_from_snapshot(meta, &data)?;
        tracing::info!(
            last_log_id = ?meta.last_log_id,
            next_id = state.metadata.next_id(),
            "installing raft snapshot"
        );
        self.state = state;
        self.persist()?;
        store_snapshot(
            &self.db,
            &StoredSnapshot {
                meta: meta.clone(),
                data,
            },
        )
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(read_snapshot(&self.db)?.map(StoredSnapshot::into_snapshot))
    }
}

/// The state as it was when openraft asked for a snapshot; encodes it while the state machine
/// goes on applying.
pub struct SnapshotBuilder {
    db: Arc<RaftDb>,
    state: AppliedState,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data = to_record(&self.state.metadata)
            .map_err(|e| io(ErrorSubject::StateMachine, ErrorVerb::Read, e))?;
        // Unique across restarts: sled's id generator never hands out a number twice.
        let seq = self
            .db
            .db
            .generate_id()
            .map_err(|e| io(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        let snapshot_id = match self.state.last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("none-{seq}"),
        };
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.state.last_applied,
                last_membership: self.state.membership.clone(),
                snapshot_id,
            },
            data,
        };
        store_snapshot(&self.db, &stored).await?;
        tracing::info!(
            snapshot_id = %stored.meta.snapshot_id,
            next_id = self.state.metadata.next_id(),
            "built raft snapshot"
        );
        Ok(stored.into_snapshot())
    }
}
