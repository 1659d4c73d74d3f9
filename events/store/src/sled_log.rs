//! The embedded event log on sled. One writer task owns the tree: it takes every append
//! waiting in its queue, writes them as one batch, fsyncs once (`flush_async`) and only then
//! answers, so concurrent appends share one fsync (group commit) and nothing is
//! acknowledged before it is durable.
//!
//! Fenced writers: the writer task also keeps one epoch per writer id, in memory (one process
//! owns a sled log). Opening a writer is a request in the same queue as the appends: it bumps
//! the epoch only after every append queued before it is answered, and an append carries its
//! writer's epoch, checked when its group is taken. So once `fenced_writer` returns, the
//! older writer's appends fail with `Fenced` and none of them is written afterwards.

use crate::error::{Result, StoreError};
use crate::keys::{read_u64, u64_key};
use crate::log::{EventLog, FencedWriter};
use async_trait::async_trait;
use kindling_events::{codec, Envelope, LogPosition, NewEvent};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Most appends committed in one group: bounds the latency a large group adds.
const MAX_GROUP: usize = 4096;

enum Request {
    Append(AppendRequest),
    /// Raises `writer_id`'s epoch and answers with the new one.
    Fence {
        writer_id: Arc<str>,
        reply: oneshot::Sender<u64>,
    },
}

struct AppendRequest {
    events: Vec<NewEvent>,
    /// The fenced writer that appends, if any: written only while its epoch is current.
    writer: Option<WriterEpoch>,
    reply: oneshot::Sender<Result<Vec<Envelope>>>,
}

#[derive(Clone)]
struct WriterEpoch {
    id: Arc<str>,
    epoch: u64,
}

pub struct SledEventLog {
    tree: sled::Tree,
    requests: mpsc::Sender<Request>,
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
        Self::start(db, true)
    }

    /// A log that lives as long as this value, in a temporary file never fsynced: for
    /// simulations, where an append must not wait on a disk (a paused tokio clock would
    /// jump while it did). Appends are ordered, fenced and answered exactly as `open`'s.
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()?;
        Self::start(db, false)
    }

    fn start(db: sled::Db, durable: bool) -> Result<Self> {
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
        let writer = tokio::spawn(writer(db, durable, tree.clone(), rx, end_tx, end));
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
    durable: bool,
    tree: sled::Tree,
    mut rx: mpsc::Receiver<Request>,
    end_tx: watch::Sender<LogPosition>,
    mut next: LogPosition,
) {
    let mut epochs: HashMap<Arc<str>, u64> = HashMap::new();
    let mut group = Vec::new();
    // A fence that ended the previous group: served before anything queued after it.
    let mut fence = None;
    loop {
        let first = match fence.take() {
            Some(f) => f,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        match first {
            Request::Fence { writer_id, reply } => {
                let epoch = epochs.entry(writer_id).or_insert(0);
                *epoch += 1;
                let _ = reply.send(*epoch);
                continue;
            }
            Request::Append(a) => group.push(a),
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Request::Append(a)) => group.push(a),
                Ok(f) => {
                    fence = Some(f);
                    break;
                }
                Err(_) => break,
            }
        }
        let (current, stale): (Vec<_>, Vec<_>) =
            std::mem::take(&mut group).into_iter().partition(|req| {
                req.writer
                    .as_ref()
                    .is_none_or(|w| epochs.get(&w.id) == Some(&w.epoch))
            });
        group = current;
        for req in stale {
            let writer = req.writer.as_ref().map(|w| (&*w.id, w.epoch));
            let _ = req.reply.send(Err(StoreError::Fenced(format!(
                "writer {writer:?} was replaced by a newer one; nothing was written"
            ))));
        }
        if group.is_empty() {
            continue;
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
            Ok(()) if durable => db.flush_async().await.map(|_| ()),
            Ok(()) => Ok(()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                crate::metrics::committed((pos.0 - next.0) as usize);
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
                crate::metrics::append_failed(group.len());
                for req in group.drain(..) {
                    let _ = req.reply.send(Err(StoreError::Backend(e.to_string())));
                }
                return;
            }
        }
    }
}

/// Sends one append to the writer task and waits for its answer.
async fn append(
    requests: &mpsc::Sender<Request>,
    events: Vec<NewEvent>,
    writer: Option<WriterEpoch>,
) -> Result<Vec<Envelope>> {
    let (reply, rx) = oneshot::channel();
    requests
        .send(Request::Append(AppendRequest {
            events,
            writer,
            reply,
        }))
        .await
        .map_err(|_| StoreError::Closed)?;
    rx.await.map_err(|_| StoreError::Closed)?
}

/// A fenced writer of a [`SledEventLog`]. It does not keep the log open: once the log is
/// closed, its appends fail with `Closed`.
pub struct SledFencedWriter {
    requests: mpsc::WeakSender<Request>,
    writer: WriterEpoch,
}

#[async_trait]
impl FencedWriter for SledFencedWriter {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let requests = self.requests.upgrade().ok_or(StoreError::Closed)?;
        append(&requests, events, Some(self.writer.clone())).await
    }
}

#[async_trait]
impl EventLog for SledEventLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Envelope>> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        append(&self.requests, events, None).await
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

    async fn fenced_writer(&self, writer_id: &str) -> Result<Arc<dyn FencedWriter>> {
        let (reply, rx) = oneshot::channel();
        let writer_id: Arc<str> = writer_id.into();
        self.requests
            .send(Request::Fence {
                writer_id: writer_id.clone(),
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        let epoch = rx.await.map_err(|_| StoreError::Closed)?;
        tracing::info!(writer = %writer_id, epoch, "fenced writer opened");
        Ok(Arc::new(SledFencedWriter {
            requests: self.requests.downgrade(),
            writer: WriterEpoch {
                id: writer_id,
                epoch,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{event_log_suite, fenced_writer_suite, LogHarness};

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_log_passes_the_fenced_writer_suite() {
        fenced_writer_suite(&Sled(tempfile::tempdir().unwrap())).await;
    }

    /// A temporary log answers as a durable one: positions in order, the end moved, older
    /// fenced writers refused.
    #[tokio::test]
    async fn a_temporary_log_orders_and_fences_as_a_durable_one() {
        use crate::conformance::{batch_spec, new_event};
        use kindling_events::{Event, Origin};
        let log = SledEventLog::temporary().unwrap();
        let submitted = |job| {
            let spec = batch_spec(None);
            new_event(job, 1, Origin::Api, Event::JobSubmitted { spec })
        };
        let first = log.append(vec![submitted(1), submitted(2)]).await.unwrap();
        assert_eq!(first[1].position, LogPosition(1));
        let old = log.fenced_writer("leader").await.unwrap();
        let new = log.fenced_writer("leader").await.unwrap();
        assert!(matches!(
            old.append(vec![submitted(3)]).await,
            Err(StoreError::Fenced(_))
        ));
        let written = new.append(vec![submitted(4)]).await.unwrap();
        assert_eq!(written[0].position, LogPosition(2));
        assert_eq!(log.end(), LogPosition(3));
        let read = log.read(LogPosition(0), 10).await.unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[2].job(), Some(kindling_events::JobId(4)));
    }
}
