//! Creates the log topic if it is missing and checks that it has exactly one partition: the
//! log's total order is partition 0's offsets, so a topic with more partitions is refused
//! rather than written to in an order no reader could reconstruct.

use crate::config::KafkaConfig;
use kindling_store::{Result, StoreError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use std::time::{Duration, Instant};

/// Pause between metadata checks while a just-created topic propagates to the brokers.
const METADATA_RETRY: Duration = Duration::from_millis(50);

pub(crate) async fn ensure(config: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = config
        .admin()
        .create()
        .map_err(|e| StoreError::Backend(format!("kafka admin client: {e}")))?;
    let min_isr = config.min_insync_replicas.map(|n| n.to_string());
    let mut topic = NewTopic::new(
        &config.topic,
        1,
        TopicReplication::Fixed(config.replication_factor),
    )
    .set("retention.ms", "-1")
    .set("retention.bytes", "-1")
    .set("cleanup.policy", "delete");
    if let Some(n) = &min_isr {
        topic = topic.set("min.insync.replicas", n);
    }
    let options = AdminOptions::new()
        .request_timeout(Some(config.request_timeout))
        .operation_timeout(Some(config.request_timeout));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| StoreError::Backend(format!("creating topic {}: {e}", config.topic)))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(
                topic = %name,
                replication_factor = config.replication_factor,
                "created the event log topic"
            ),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StoreError::Backend(format!(
                    "creating topic {name}: {code}"
                )))
            }
        }
    }
    let topic = config.topic.clone();
    let timeout = config.request_timeout;
    // librdkafka's metadata call blocks its thread: keep it off the runtime's workers.
    tokio::task::spawn_blocking(move || check_partitions(&admin, &topic, timeout))
        .await
        .map_err(|e| StoreError::Backend(format!("metadata check: {e}")))?
}

fn check_partitions(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let found = admin
            .inner()
            .fetch_metadata(Some(topic), left)
            .map_err(|e| format!("{e}"))
            .and_then(|m| {
                let t = m.topics().iter().find(|t| t.name() == topic);
                match t {
                    Some(t) if t.error().is_none() => Ok(t.partitions().len()),
                    Some(t) => Err(format!("{:?}", t.error())),
                    None => Err("not in metadata".into()),
                }
            });
        match found {
            Ok(1) => return Ok(()),
            Ok(n) if n > 1 => {
                return Err(StoreError::Backend(format!(
                    "topic {topic} has {n} partitions; the event log needs exactly 1 (its order \
                     is one partition's offsets)"
                )))
            }
            // Zero partitions or an error: the new topic has not reached every broker yet.
            other if Instant::now() >= deadline => {
                return Err(StoreError::Backend(format!(
                    "topic {topic} not ready within {timeout:?}: {other:?}"
                )))
            }
            _ => std::thread::sleep(METADATA_RETRY),
        }
    }
}
