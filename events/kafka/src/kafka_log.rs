//! [`KafkaEventLog`]: the `EventLog` port on one single-partition Kafka topic. It wires the
//! writer (appends), the reader pool (`read`), the tail follower (`end`, `subscribe`) and
//! the fenced writers it opens; each is described in its own module.

use crate::config::{KafkaConfig, LogConsumer, LogContext};
use crate::fenced_writer;
use crate::reader::Readers;
use crate::writer::{self, AppendRequest};
use crate::{tail, topic};
use async_trait::async_trait;
use kindling_events::{Envelope, LogPosition, NewEvent};
use kindling_store::{EventLog, FencedWriter, Result, StoreError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Appends waiting for the writer; beyond this, `append` waits (backpressure).
const QUEUED_APPENDS: usize = 8192;

/// How long `current_end` may take (asking the broker, then the tail catching up) before it
/// fails: a read barrier on a node cut off from the broker should fail soon, not hang.
const CURRENT_END_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The event log on Kafka. Needs a tokio runtime. Its background tasks end when it is closed
/// ([`close`](Self::close): pending appends finish, then the clients disconnect) or dropped
/// (the tasks finish what was queued and end on their own; the clients' destructors then run
/// on a runtime worker).
pub struct KafkaEventLog {
    topic: Arc<str>,
    requests: mpsc::Sender<AppendRequest>,
    end: watch::Receiver<LogPosition>,
    readers: Readers,
    writer: JoinHandle<FutureProducer>,
    acknowledger: JoinHandle<()>,
    tail: JoinHandle<LogConsumer>,
    stop_tail: oneshot::Sender<()>,
    /// How far the tail has consumed, markers included (see `tail::follow`).
    passed: watch::Receiver<LogPosition>,
    /// Asks the broker for the partition's high watermark (`current_end`).
    watermarks: Arc<BaseConsumer<LogContext>>,
    fenced: fenced_writer::Context,
    /// Tells the fenced writers' tasks that the log closes.
    closing: watch::Sender<bool>,
    fenced_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl KafkaEventLog {
    /// Connects, creates the topic if it is missing (one partition), and finds the end.
    /// Fails with `Backend` if the brokers cannot be reached within `request_timeout` or the
    /// topic has more than one partition.
    pub async fn open(config: KafkaConfig) -> Result<Self> {
        let topic: Arc<str> = config.topic.as_str().into();
        // Created first: the idempotent producer fetches its producer id in the background
        // (half a second on a fresh client), which then overlaps the rest of opening.
        let producer: FutureProducer = config
            .producer()
            .create()
            .map_err(|e| StoreError::Backend(format!("kafka producer: {e}")))?;
        topic::ensure(&config).await?;

        let (follower, end) = tail::start(&config, &topic).await?;

        let (end_tx, end_rx) = watch::channel(end);
        let end_tx = Arc::new(end_tx);
        let (requests, requests_rx) = mpsc::channel(QUEUED_APPENDS);
        let writer = writer::spawn(
            producer,
            config.producer(),
            topic.clone(),
            config.max_record_bytes,
            requests_rx,
            end_tx.clone(),
        );
        let (stop_tail, stop_rx) = oneshot::channel();
        let (passed_tx, passed) = watch::channel(end);
        let tail = tokio::spawn(tail::follow(
            follower,
            topic.clone(),
            end_tx.clone(),
            passed_tx,
            stop_rx,
        ));
        let watermarks = config
            .consumer("log-watermarks", config.tail_fetch_wait)
            .create_with_context(LogContext)
            .map_err(|e| StoreError::Backend(format!("kafka consumer: {e}")))?;
        tracing::info!(%topic, brokers = %config.brokers, end = end.0, "kafka event log open");
        let (closing, closing_rx) = watch::channel(false);
        Ok(KafkaEventLog {
            readers: Readers::new(&config, topic.clone()),
            fenced: fenced_writer::Context {
                config,
                topic: topic.clone(),
                end: end_tx,
                closing: closing_rx,
            },
            topic,
            requests,
            end: end_rx,
            writer: writer.writer,
            acknowledger: writer.acknowledger,
            tail,
            stop_tail,
            passed,
            watermarks: Arc::new(watermarks),
            closing,
            fenced_tasks: Mutex::new(Vec::new()),
        })
    }

    /// Lets pending appends finish, stops the background tasks and disconnects. Fenced writers
    /// opened on this log finish the transaction under way and then refuse appends (`Closed`).
    pub async fn close(self) {
        let KafkaEventLog {
            topic,
            requests,
            readers,
            writer,
            acknowledger,
            tail,
            stop_tail,
            closing,
            fenced_tasks,
            watermarks,
            ..
        } = self;
        closing.send_replace(true);
        let fenced_tasks = fenced_tasks.into_inner().unwrap_or_else(|e| e.into_inner());
        for task in fenced_tasks {
            let _ = task.await;
        }
        drop(requests);
        let producer = writer.await.ok();
        let _ = acknowledger.await;
        let _ = stop_tail.send(());
        let follower = tail.await.ok();
        let idle = readers.drain();
        // librdkafka's destructors block (the producer flushes, client threads are joined).
        let _ = tokio::task::spawn_blocking(move || {
            drop((producer, follower, idle, readers, watermarks))
        })
        .await;
        tracing::info!(%topic, "kafka event log closed");
    }
}

#[async_trait]
impl EventLog for KafkaEventLog {
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
        if max == 0 || from >= end {
            return Ok(vec![]);
        }
        self.readers.read(from, end, max).await
    }

    fn end(&self) -> LogPosition {
        *self.end.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<LogPosition> {
        self.end.clone()
    }

    /// Asks the broker for the high watermark (everything acknowledged with `acks=all` is
    /// below it), then waits until the tail has consumed up to it; `end` then covers every
    /// event below it. On tansu 0.6 the watermark is the last batch's base offset + 1, so
    /// the later records of a last batch of several may be missed; Kafka answers the true end.
    async fn current_end(&self) -> Result<LogPosition> {
        let deadline = tokio::time::Instant::now() + CURRENT_END_WITHIN;
        let (consumer, topic) = (self.watermarks.clone(), self.topic.clone());
        // librdkafka's watermark query blocks its thread.
        let (_, high) = tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic, 0, CURRENT_END_WITHIN)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("watermark query: {e}")))?
        .map_err(|e| {
            StoreError::Backend(format!(
                "asking the broker for the end of {}: {e}",
                self.topic
            ))
        })?;
        let high = u64::try_from(high).unwrap_or(0);
        let mut passed = self.passed.clone();
        let waited = tokio::time::timeout_at(deadline, passed.wait_for(|p| p.0 >= high))
            .await
            .map(|r| r.is_ok());
        match waited {
            Ok(true) => Ok(self.end()),
            Ok(false) => Err(StoreError::Closed),
            Err(_) => Err(StoreError::Backend(format!(
                "the log's follower did not reach the broker's end {high} of {} within {:?} \
                 (it is at {})",
                self.topic,
                CURRENT_END_WITHIN,
                self.passed.borrow().0
            ))),
        }
    }

    async fn fenced_writer(&self, writer_id: &str) -> Result<Arc<dyn FencedWriter>> {
        let (writer, task) = fenced_writer::open(&self.fenced, writer_id).await?;
        let mut tasks = self.fenced_tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Writers come and go (one per leadership): forget the ones that ended.
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(Arc::new(writer))
    }
}
