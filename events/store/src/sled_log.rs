//! The embedded event log on sled. One writer task owns the tree: it takes every append
//! waiting in its queue, writes them as one batch, fsyncs once (`flush_async`) and only then
//! answers, so concurrent appends share one fsync (group commit) and nothing is
//! acknowledged before it is durable.

use crate::error::{Result, StoreError};
use crate::keys::{read_u64, u64_key};
use crate::log::EventLog;
use async_trait::async_trait;
use kindling_events::{codec, Envelope, LogPosition, NewEvent};
use std::path::Path;
use tokio::sync::{mpsc, oneshot, watch};

/// Most appends committed in one group: bounds the latency a large group adds.
const MAX_GROUP: usize = 4096;

struct AppendRequest {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Envelope>>>,
}

pub struct SledEventLog {
    tree: sled::Tree,
    requests: mpsc::Sender<AppendRequest>,
    end: watch::Receiver<LogPosition>,
    writer: tokio::task::JoinHandle<()>,
}

impl SledEventLog {
    /// Opens (or creates) the log in directory `path`. Needs a tokio runtime: it spawns the
    /// writer task, which ends when the log is closed or dropped.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(None)
            .open()?;
        let tree = db.open_tree("events")?;
        let end = match tree.last()? {
            Some((k, _)) => LogPosition(
                read_u64(&k).ok_or_else(|| StoreError::Corrupt {
                    at: "events last key".into(),
                    reason: "short key".into(),
                })? + 1,
            ),
            None => LogPosition(0),
        };
        let (end_tx, end_rx) = watch::channel(end);
        let (tx, rx) = mpsc::channel(8192);
        let writer = tokio::spawn(writer(db, tree.clone(), rx, end_tx, end));
        Ok(SledEventLog {
            tree,
            requests: tx,
            end: end_rx,
            writer,
        })
    }

    /// Lets pending appends finish, then releases the database (it can be opened again).
    pub async fn close(self) {
        let SledEventLog {
            tree,
            requests,
            writer,
            ..
        } = self;
        drop(requests);
        drop(tree);
        let _ = writer.await;
    }
}

async fn writer(
    db: sled::Db,
    tree: sled::Tree,
    mut rx: mpsc::Receiver<AppendRequest>,
    end_tx: watch::Sender<LogPosition>,
    mut next: LogPosition,
) {
    let mut group = Vec::new();
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let mut batch = sled::Batch::default();
        let mut results = Vec::with_capacity(group.len());
        let mut pos = next;
        for req in &group {
            let mut envs = Vec::with_capacity(req.events.len());
            for e in &req.events {
                let env = Envelope::new(pos, e.clone());
                batch.insert(&u64_key(pos.0), codec::encode(&env));
                envs.push(env);
                pos = pos.next();
            }
            results.push(envs);
        }
        let outcome = match tree.apply_batch(batch) {
            Ok(()) => db.flush_async().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                next = pos;
                end_tx.send_replace(next);
                for (req, envs) in group.drain(..).zip(results) {
                    let _ = req.reply.send(Ok(envs));
                }
            }
            Err(e) => {
                // The batch may or may not be on disk: the log can no longer vouch for its
                // positions, so stop writing. The node restarts and reads what is there.
                tracing::error!(error = %e, "event log write failed; closing the log");
                for req in group.drain(..) {
                    let _ = req.reply.send(Err(StoreError::Backend(e.to_string())));
                }
                return;
            }
        }
    }
}

#[async_trait]
impl EventLog for SledEventLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(AppendRequest { events, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read(&self, from: LogPosition, max: usize) -> Result<Vec<Envelope>> {
        let end = *self.end.borrow();
        let mut out = Vec::with_capacity(max.min(4096));
        for item in self.tree.range(u64_key(from.0)..u64_key(end.0)).take(max) {
            let (k, v) = item?;
            let env = codec::decode(&v).map_err(|e| StoreError::Corrupt {
                at: format!("event {}", read_u64(&k).unwrap_or_default()),
                reason: e.to_string(),
            })?;
            out.push(env);
        }
        Ok(out)
    }

    fn end(&self) -> LogPosition {
        *self.end.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<LogPosition> {
        self.end.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{event_log_suite, LogHarness};

    struct Sled(tempfile::TempDir);

    #[async_trait]
    impl LogHarness for Sled {
        type Log = SledEventLog;
        async fn open(&self, name: &str) -> SledEventLog {
            SledEventLog::open(&self.0.path().join(name)).unwrap()
        }
        async fn close(&self, log: SledEventLog) {
            log.close().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_log_passes_the_conformance_suite() {
        event_log_suite(&Sled(tempfile::tempdir().unwrap())).await;
    }
}
