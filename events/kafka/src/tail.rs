//! Follows the end of the partition so that `end` and `subscribe` see appends made by other
//! processes (every node of a cluster appends). A consumer assigned at the end found on open
//! receives every record written after it, this instance's own included; each one moves
//! `end` past its offset. Consumers only see records below the high watermark, i.e. written
//! to every in-sync replica, so `end` never runs ahead of what is durable; reading committed
//! only, the follower never sees an open or aborted transaction's records, nor its markers.
//!
//! Why a consumer and not polling the watermark: Kafka answers a waiting fetch as soon as
//! records arrive, so other processes' appends show up within a round trip while an idle
//! follower sends one fetch per `tail_fetch_wait`. (tansu 0.6 answers only when the wait is
//! over: there, others' appends show up after about half of it, measured.) It costs fetching
//! the log's bytes once more.
//!
//! The end on open is also found by consuming, not by the broker's ListOffsets answer alone:
//! tansu 0.6 answers the last record *batch's* base offset + 1 (three records written in one
//! batch at 0..=2 give 1, not 3), and with fenced writers the partition ends in a commit
//! marker (or an aborted transaction), whose offset is not an event's: `end` is one past the
//! last record a `read_committed` consumer returns. The answer is only where to start
//! looking: the follower consumes from there to the partition's end (librdkafka's EOF
//! event), and if it met no record there, looks again further back, each time four times as
//! far, down to offset 0. On Kafka with plain appends only, the first look is one empty fetch.

use crate::config::{KafkaConfig, LogConsumer, LogContext};
use crate::writer::advance;
use kindling_events::LogPosition;
use kindling_store::{Result, StoreError};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Pause after a consumer error (the broker is unreachable) before trying again.
const ERROR_BACKOFF: Duration = Duration::from_millis(200);

/// How far back the follower looks first for the last record when none is at or after the
/// broker's answer; each further look goes four times as far.
const FIRST_LOOK_BACK: u64 = 1;

/// The follower's consumer, at the partition's end, and the log's end.
pub(crate) async fn start(
    config: &KafkaConfig,
    topic: &Arc<str>,
) -> Result<(LogConsumer, LogPosition)> {
    let consumer: LogConsumer = config
        .consumer("log-tail", config.tail_fetch_wait)
        .set("enable.partition.eof", "true")
        .create_with_context(LogContext)
        .map_err(|e| StoreError::Backend(format!("kafka consumer: {e}")))?;
    let (consumer, high) = {
        let topic = topic.clone();
        let timeout = config.request_timeout;
        // librdkafka's watermark query blocks its thread: keep it off the runtime's workers.
        tokio::task::spawn_blocking(move || {
            let high = consumer.fetch_watermarks(&topic, 0, timeout);
            (consumer, high)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("watermark query: {e}")))?
    };
    let (_, high) =
        high.map_err(|e| StoreError::Backend(format!("finding the end of {topic}: {e}")))?;
    let mut from = crate::record::position(high)?.0;
    let mut back = FIRST_LOOK_BACK;
    loop {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(from as i64))
            .and_then(|()| consumer.assign(&tpl))
            .map_err(|e| StoreError::Backend(format!("following {topic}: {e}")))?;
        if let Some(last) = last_record(&consumer, topic, from, config.request_timeout).await? {
            return Ok((consumer, LogPosition(last + 1)));
        }
        if from == 0 {
            return Ok((consumer, LogPosition(0)));
        }
        from = from.saturating_sub(back);
        back = back.saturating_mul(4);
    }
}

/// Consumes from `from` until the partition's end is reached, and returns the offset of the
/// last record met, if any.
async fn last_record(
    consumer: &LogConsumer,
    topic: &str,
    from: u64,
    timeout: Duration,
) -> Result<Option<u64>> {
    let mut last = None;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .map_err(|_| {
                StoreError::Backend(format!(
                    "did not reach the end of {topic} within {timeout:?} (from {from})"
                ))
            })?;
        match next {
            Ok(m) => {
                if let Ok(offset) = u64::try_from(m.offset()) {
                    last = last.max(Some(offset));
                }
            }
            Err(KafkaError::PartitionEOF(_)) => return Ok(last),
            Err(e) => {
                return Err(StoreError::Backend(format!(
                    "finding the end of {topic}: {e}"
                )))
            }
        }
    }
}

/// Runs until `shutdown` fires or its sender is dropped; returns the consumer so that
/// `close` can destroy it off the runtime.
///
/// Besides `end`, publishes `passed`: the offset the follower has consumed up to, transaction
/// markers and skipped records included (the consumer's position at the partition's end), so
/// `current_end` can tell when everything below a broker's high watermark has been seen.
pub(crate) async fn follow(
    consumer: LogConsumer,
    topic: Arc<str>,
    end: Arc<watch::Sender<LogPosition>>,
    passed: watch::Sender<LogPosition>,
    mut shutdown: oneshot::Receiver<()>,
) -> LogConsumer {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            message = consumer.recv() => match message {
                Ok(m) => {
                    if let Ok(offset) = u64::try_from(m.offset()) {
                        advance(&end, LogPosition(offset + 1));
                        advance(&passed, LogPosition(offset + 1));
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {
                    if let Ok(Some(at)) = crate::reader::position(&consumer, &topic) {
                        advance(&passed, LogPosition(at));
                    }
                }
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "following the event log's tail failed; retrying");
                    crate::metrics::kafka_error("consumer");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(ERROR_BACKOFF) => {}
                    }
                }
            },
        }
    }
    consumer
}
