//! `read` on a small pool of consumers, each assigned to partition 0 without joining a
//! consumer group (a join costs about half of `session.timeout.ms`; `assign` costs nothing).
//! A read
//! assigns its consumer at the position asked for and unassigns it when done, so an idle
//! consumer sends the broker nothing; the pool keeps the connections and threads.
//!
//! A read that met no record within `request_timeout` fails; one that met some returns them
//! when the time is up, even short of `end` or `max`. A broker that serves one small batch
//! per fetch slowly (tansu 0.6 on S3 answers a fetch in about 0.1 s, and every append is its
//! own batch) so still moves a catching-up reader forward, where failing the whole read would
//! throw the progress away and start over from the same place, for ever.
//!
//! Reads stop at the `end` the caller saw. Offsets below it are not dense: fenced writers'
//! transactions leave a commit or abort marker after their records, and an aborted
//! transaction's records are skipped by `read_committed` consumers, so a read never counts
//! records to know when it is done. It stops on a record at or past `end`, on the record at
//! `end - 1` (`end` is always one past a record), or on reaching the partition's end when the
//! consumer's position (which librdkafka moves past markers and skipped records) is at `end`.
//!
//! `end` can be ahead of what a `read_committed` consumer may see yet: a plain append
//! acknowledged above another writer's open transaction moves `end`, but consumers stop at
//! the transaction's first record until it commits or aborts; and Kafka writes a transaction's
//! commit markers just after its commit returns, so a fenced append's records show a moment
//! after it is acknowledged. A read below such an `end`
//! waits for that (milliseconds for a live writer; for a dead one, until a newer writer with
//! its id opens or `transaction_timeout`) and fails after `request_timeout`.

use crate::config::{KafkaConfig, LogConsumer, LogContext};
use crate::record;
use kindling_events::{Envelope, LogPosition};
use kindling_store::{Result, StoreError};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a reader's fetch may wait at the broker. Reads ask only for records that exist,
/// which Kafka returns at once whatever the wait; but librdkafka prefetches past them, and a
/// fetch parked at the end delays the next read's first fetch on the same connection by up to
/// this much (so the pool hands out the consumer that has rested longest).
///
/// It is not smaller because tansu 0.6 applies the wait to its own storage read: a fetch whose
/// read of the partition takes longer than the wait comes back empty, and librdkafka asks
/// again at once, for ever. Its read lists every batch, so the time grows with the log and the
/// machine's speed. Measured on a 2-core machine, 500 one-record batches on S3, 300 records
/// from offset 0: 10 ms got none in 30 s, 12 ms two, 15 ms all in 8 s, 20 ms in 1.6 s, 100 ms
/// in 0.34 s (a longer wait lets one fetch return many batches).
const FETCH_WAIT: Duration = Duration::from_millis(100);

pub(crate) struct Readers {
    client: ClientConfig,
    topic: Arc<str>,
    /// Oldest-returned first.
    idle: Mutex<VecDeque<LogConsumer>>,
    permits: Semaphore,
    timeout: Duration,
}

impl Readers {
    pub fn new(config: &KafkaConfig, topic: Arc<str>) -> Self {
        Readers {
            client: {
                let mut c = config.consumer("log-reader", FETCH_WAIT);
                c.set("enable.partition.eof", "true");
                c
            },
            topic,
            idle: Mutex::new(VecDeque::new()),
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
        // The consumer that rested longest: its prefetch parked at the end is likeliest over.
        let idle = self.lock().pop_front();
        let consumer = match idle {
            Some(c) => c,
            None => self
                .client
                .create_with_context(LogContext)
                .map_err(|e| StoreError::Backend(format!("kafka consumer: {e}")))?,
        };
        let out = read(&consumer, &self.topic, from.0, end.0, max, self.timeout).await;
        // A consumer that failed is dropped: its state is not worth trusting.
        if out.is_ok() {
            self.lock().push_back(consumer);
        }
        out
    }

    /// The idle consumers, for `close` to destroy off the runtime.
    pub fn drain(&self) -> Vec<LogConsumer> {
        self.lock().drain(..).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<LogConsumer>> {
        // The guarded queue is always whole: a panic elsewhere cannot leave it half-changed.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn read(
    consumer: &LogConsumer,
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
    let mut out = Vec::with_capacity(max.min(4096));
    let mut next = from;
    while out.len() < max && next < end {
        let Ok(received) = tokio::time::timeout_at(deadline, consumer.recv()).await else {
            if out.is_empty() {
                return Err(StoreError::Backend(format!(
                    "reading {topic} at {next} (end {end}): no record within {timeout:?}"
                )));
            }
            // A slow broker: keep what arrived; the caller reads on from past it.
            break;
        };
        let message = match received {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(_)) => {
                // Nothing more to read now; done if only markers or skipped records were left
                // below `end`, else an open transaction holds the rest back: wait for it.
                if position(consumer, topic)?.unwrap_or(from) >= end {
                    tracing::debug!(%topic, from, next, end, got = out.len(), "read reached the partition's end at or past the end asked for");
                    break;
                }
                continue;
            }
            Err(e) => {
                return Err(StoreError::Backend(format!(
                    "reading {topic} at {next}: {e}"
                )))
            }
        };
        let at = record::position(message.offset())?.0;
        if at < next {
            // Fetched for an earlier assignment; librdkafka normally drops these.
            continue;
        }
        if at >= end {
            tracing::debug!(%topic, from, next, end, at, got = out.len(), "read met a record at or past the end asked for");
            break;
        }
        out.push(record::decode(message.offset(), message.payload())?);
        next = at + 1;
    }
    // Stop fetching (and drop what was prefetched) until the next read.
    consumer.unassign().map_err(|e| seek(e.to_string()))?;
    Ok(out)
}

/// Where the consumer will read next: past the last record it returned and past any
/// transaction markers and skipped records after it; none before it passed anything.
pub(crate) fn position(consumer: &LogConsumer, topic: &str) -> Result<Option<u64>> {
    let positions = consumer
        .position()
        .map_err(|e| StoreError::Backend(format!("position in {topic}: {e}")))?;
    Ok(
        match positions.find_partition(topic, 0).map(|p| p.offset()) {
            Some(Offset::Offset(o)) => u64::try_from(o).ok(),
            _ => None,
        },
    )
}
