//! Follows the end of the partition so that `end` and `subscribe` see appends made by other
//! processes (every node of a cluster appends). A consumer assigned at the end found on open
//! receives every record written after it, this instance's own included; each one moves
//! `end` past its offset. Consumers only see records below the high watermark, i.e. written
//! to every in-sync replica, so `end` never runs ahead of what is durable.
//!
//! Why a consumer and not polling the watermark: Kafka answers a waiting fetch as soon as
//! records arrive, so other processes' appends show up within a round trip while an idle
//! follower sends one fetch per `tail_fetch_wait`. (tansu 0.6 answers only when the wait is
//! over: there, others' appends show up after about half of it, measured.) It costs fetching
//! the log's bytes once more.
//!
//! The end on open is also found by consuming, not by the broker's ListOffsets answer alone:
//! tansu 0.6 answers the last record *batch's* base offset + 1 (three records written in one
//! batch at 0..=2 give 1, not 3). That answer is only a lower bound here: the follower starts
//! there and consumes to the partition's end (librdkafka's EOF event, from the high watermark
//! of a fetch response). On Kafka the two agree and catching up costs one empty fetch.

use crate::config::KafkaConfig;
use crate::writer::advance;
use kindling_events::LogPosition;
use kindling_store::{Result, StoreError};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Pause after a consumer error (the broker is unreachable) before trying again.
const ERROR_BACKOFF: Duration = Duration::from_millis(200);

/// The follower's consumer, at the partition's end, and that end.
pub(crate) async fn start(
    config: &KafkaConfig,
    topic: &Arc<str>,
) -> Result<(StreamConsumer, LogPosition)> {
    let consumer: StreamConsumer = config
        .consumer("log-tail", config.tail_fetch_wait)
        .set("enable.partition.eof", "true")
        .create()
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
    let from = crate::record::position(high)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(high))
        .and_then(|()| consumer.assign(&tpl))
        .map_err(|e| StoreError::Backend(format!("following {topic}: {e}")))?;
    let end = catch_up(&consumer, topic, from, config.request_timeout).await?;
    Ok((consumer, end))
}

/// Consumes from `from` (a lower bound of the end) until the partition's end is reached, and
/// returns that end.
async fn catch_up(
    consumer: &StreamConsumer,
    topic: &str,
    from: LogPosition,
    timeout: Duration,
) -> Result<LogPosition> {
    let mut end = from;
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
                    end = end.max(LogPosition(offset + 1));
                }
            }
            Err(KafkaError::PartitionEOF(_)) => return Ok(end),
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
pub(crate) async fn follow(
    consumer: StreamConsumer,
    topic: Arc<str>,
    end: Arc<watch::Sender<LogPosition>>,
    mut shutdown: oneshot::Receiver<()>,
) -> StreamConsumer {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            message = consumer.recv() => match message {
                Ok(m) => {
                    if let Ok(offset) = u64::try_from(m.offset()) {
                        advance(&end, LogPosition(offset + 1));
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "following the event log's tail failed; retrying");
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
