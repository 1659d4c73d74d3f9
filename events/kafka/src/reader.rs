//! `read` on a small pool of consumers, each assigned to partition 0 without joining a
//! consumer group (a join costs about half of `session.timeout.ms`; `assign` costs nothing).
//! A read
//! assigns its consumer at the position asked for and unassigns it when done, so an idle
//! consumer sends the broker nothing; the pool keeps the connections and threads.
//!
//! Reads stop at the `end` the caller saw, and count on offsets below it being dense: true for
//! an idempotent, non-transactional producer on a delete-policy topic with unlimited
//! retention, which is how the log writes. Transactional writers would put commit markers
//! between records; then a read must stop on reaching the partition's end instead (see
//! `writer`).

use crate::config::KafkaConfig;
use crate::record;
use kindling_events::{Envelope, LogPosition};
use kindling_store::{Result, StoreError};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a reader's fetch waits at the partition's end for new records. Reads ask only for
/// records that exist, but librdkafka prefetches past them, and a fetch parked at the end
/// delays the next read's first fetch on the same connection by up to this much.
const FETCH_WAIT: Duration = Duration::from_millis(10);

pub(crate) struct Readers {
    client: ClientConfig,
    topic: Arc<str>,
    idle: Mutex<Vec<StreamConsumer>>,
    permits: Semaphore,
    timeout: Duration,
}

impl Readers {
    pub fn new(config: &KafkaConfig, topic: Arc<str>) -> Self {
        Readers {
            client: config.consumer("log-reader", FETCH_WAIT),
            topic,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(config.readers.max(1)),
            timeout: config.request_timeout,
        }
    }

    /// Up to `max` events from `from` up to (not including) `end`.
    pub async fn read(
        &self,
        from: LogPosition,
        end: LogPosition,
        max: usize,
    ) -> Result<Vec<Envelope>> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let idle = self.lock().pop();
        let consumer = match idle {
            Some(c) => c,
            None => self
                .client
                .create()
                .map_err(|e| StoreError::Backend(format!("kafka consumer: {e}")))?,
        };
        let out = read(&consumer, &self.topic, from.0, end.0, max, self.timeout).await;
        // A consumer that failed is dropped: its state is not worth trusting.
        if out.is_ok() {
            self.lock().push(consumer);
        }
        out
    }

    /// The idle consumers, for `close` to destroy off the runtime.
    pub fn drain(&self) -> Vec<StreamConsumer> {
        self.lock().drain(..).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StreamConsumer>> {
        // The guarded Vec is always whole: a panic elsewhere cannot leave it half-changed.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn read(
    consumer: &StreamConsumer,
    topic: &str,
    from: u64,
    end: u64,
    max: usize,
    timeout: Duration,
) -> Result<Vec<Envelope>> {
    let seek = |e: String| StoreError::Backend(format!("reading {topic} from {from}: {e}"));
    let start = i64::try_from(from).map_err(|_| seek("past any offset".into()))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(start))
        .and_then(|()| consumer.assign(&tpl))
        .map_err(|e| seek(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let want = usize::try_from(end - from).unwrap_or(usize::MAX).min(max);
    let mut out = Vec::with_capacity(want.min(4096));
    let mut next = from;
    while out.len() < want {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .map_err(|_| {
                StoreError::Backend(format!(
                    "reading {topic} at {next}: no record within {timeout:?}"
                ))
            })?
            .map_err(|e| StoreError::Backend(format!("reading {topic} at {next}: {e}")))?;
        let at = record::position(message.offset())?.0;
        if at < next {
            // Fetched for an earlier assignment; librdkafka normally drops these.
            continue;
        }
        if at >= end {
            break;
        }
        out.push(record::decode(message.offset(), message.payload())?);
        next = at + 1;
    }
    // Stop fetching (and drop what was prefetched) until the next read.
    consumer.unassign().map_err(|e| seek(e.to_string()))?;
    Ok(out)
}
