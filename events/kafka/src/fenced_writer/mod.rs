//! [`KafkaFencedWriter`]: appends through a transactional producer whose `transactional.id`
//! is the writer's id, so that the broker, not this process, decides who may still write.
//!
//! Opening one calls `init_transactions`: the transaction coordinator aborts whatever
//! transaction an older producer with that id left open and bumps the id's epoch, after which
//! every request of the older producer is refused (`PRODUCER_FENCED`), in any process. A
//! writer task owns the producer and, like the plain writer, takes every append waiting in
//! its queue as one group: begin a transaction, produce the group's records, commit, and only
//! then answer each append with the positions from its records' delivery reports. Readers
//! read committed only, so a group becomes visible whole, at commit, or never.
//!
//! How a failure is answered:
//! - fenced, or any fatal producer error: `Fenced`, to this append and every later one; the
//!   producer is finished. Nothing of the group becomes visible after the newer writer
//!   opened, since its `init_transactions` aborted or completed the transaction first.
//! - an abortable error (a record failed, a timeout before the commit was sent): the
//!   transaction is aborted and the group fails with `Backend`, certainly not written.
//! - anything else (the commit's outcome is unknown, an abort failed): `Backend`, "may have
//!   been written", and the writer refuses further appends: open a new writer, which settles
//!   the old transaction, and rebuild from the log.
//!
//! It must not touch the plain writer's producer or the readers; it shares only the log's
//! `end`, which it moves past each committed group.
//!
//! tansu 0.6, the development broker, breaks two of these promises for the appends under way
//! when a writer is deposed (tests/broker_transactions.rs shows both): its fetch responses
//! never list aborted transactions, so their records reach `read_committed` readers; and it
//! drops the connection instead of answering a fenced producer's EndTxn, so such an append
//! fails as "may have been written" after the commit timeout instead of `Fenced`. Appends
//! begun after the newer writer opened are refused as `Fenced` there too.

use crate::config::KafkaConfig;
use crate::writer::AppendRequest;
use async_trait::async_trait;
use kindling_events::{Envelope, LogPosition, NewEvent};
use kindling_store::{FencedWriter, Result, StoreError};
use rdkafka::producer::{FutureProducer, Producer};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

mod task;

use task::{blocking, close_producer, run, Task};

/// Most events taken into one transaction: bounds the latency a large group adds.
pub(super) const MAX_GROUP_EVENTS: usize = 4096;
/// Appends waiting for the writer task; beyond this, `append` waits (backpressure).
const QUEUED_APPENDS: usize = 8192;

/// A fenced writer of a [`KafkaEventLog`](crate::KafkaEventLog). Dropping it (every clone of
/// the `Arc`) ends its task and closes its producer; so does closing the log.
pub struct KafkaFencedWriter {
    writer_id: Arc<str>,
    requests: mpsc::Sender<AppendRequest>,
}

/// What the log needs to open fenced writers.
pub(crate) struct Context {
    pub config: KafkaConfig,
    pub topic: Arc<str>,
    pub end: Arc<watch::Sender<LogPosition>>,
    /// Becomes true when the log closes: writer tasks stop taking appends.
    pub closing: watch::Receiver<bool>,
}

/// Opens the producer, fences older writers with the same id, and starts the writer task.
pub(crate) async fn open(
    cx: &Context,
    writer_id: &str,
) -> Result<(KafkaFencedWriter, JoinHandle<()>)> {
    let producer: FutureProducer = cx
        .config
        .transactional_producer(writer_id)
        .create()
        .map_err(|e| StoreError::Backend(format!("kafka transactional producer: {e}")))?;
    let timeout = cx.config.request_timeout;
    let topic = cx.topic.clone();
    let (producer, init) = blocking(producer, move |p| {
        // Connected first: librdkafka looks the transaction coordinator up at once only when a
        // broker it learned from metadata (not the bootstrap address) is connected, and
        // otherwise retries on a fixed 500 ms timer, which was most of a new leader's takeover.
        // Metadata alone comes over the bootstrap connection; the watermark query goes to the
        // partition's leader, so it leaves a learned broker connected.
        let _ = p.client().fetch_watermarks(&topic, 0, timeout);
        p.init_transactions(timeout)
    })
    .await?;
    if let Err(e) = init {
        close_producer(producer).await;
        return Err(StoreError::Backend(format!(
            "opening fenced writer {writer_id}: {e}; older writers with this id may or may \
             not be fenced"
        )));
    }
    let writer_id: Arc<str> = writer_id.into();
    tracing::info!(writer = %writer_id, topic = %cx.topic, "fenced writer opened");
    let (requests, rx) = mpsc::channel(QUEUED_APPENDS);
    let task = tokio::spawn(run(
        Task {
            producer,
            topic: cx.topic.clone(),
            writer_id: writer_id.clone(),
            max_record_bytes: cx.config.max_record_bytes,
            commit_timeout: cx
                .config
                .delivery_timeout
                .min(cx.config.transaction_timeout),
            abort_timeout: cx.config.request_timeout,
            end: cx.end.clone(),
        },
        rx,
        cx.closing.clone(),
    ));
    Ok((
        KafkaFencedWriter {
            writer_id,
            requests,
        },
        task,
    ))
}

#[async_trait]
impl FencedWriter for KafkaFencedWriter {
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
}

impl std::fmt::Debug for KafkaFencedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaFencedWriter")
            .field("writer_id", &self.writer_id)
            .finish()
    }
}
