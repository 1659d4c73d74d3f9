//! The route topics: how they are named, the settings of the node's clients, and creating and
//! listing them on the brokers.

use super::{KafkaRoutes, FETCH_WAIT, REQUEST_TIMEOUT};
use kindling_backend::KafkaRoute;
use kindling_core::{Error, Result};
use kindling_events::JobId;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Where the routes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub brokers: String,
    /// Topic names start with this (`<prefix>.job.<id>.requests`).
    pub prefix: String,
    /// Replication factor of the topics created.
    pub replication: i32,
    /// `client.id` of the node's Kafka clients.
    pub client_id: String,
}

impl RouteConfig {
    /// The topic pair of job `job`.
    pub fn route(&self, job: JobId) -> KafkaRoute {
        KafkaRoute {
            brokers: self.brokers.clone(),
            requests: format!("{}.job.{}.requests", self.prefix, job.0),
            replies: format!("{}.job.{}.replies", self.prefix, job.0),
        }
    }

    pub(super) fn client(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("{}-{role}", self.client_id));
        c
    }

    pub(super) fn consumer(&self) -> ClientConfig {
        let mut c = self.client("route-replies");
        c.set("group.id", format!("{}.routes", self.prefix))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A route's first leader reads its replies from the start.
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", FETCH_WAIT.as_millis().to_string());
        c
    }

    pub(super) fn producer(&self) -> ClientConfig {
        let mut c = self.client("route-requests");
        c.set("enable.idempotence", "true")
            .set(
                "message.max.bytes",
                crate::links::ROUTE_MESSAGE_BYTES.to_string(),
            )
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "30000");
        c
    }
}

impl KafkaRoutes {
    /// Creates the pair if it is missing and waits until the brokers know it.
    pub(super) async fn create(&self, route: &KafkaRoute) -> Result<()> {
        let replication = || TopicReplication::Fixed(self.cfg.replication);
        let topics = [
            NewTopic::new(&route.requests, 1, replication()),
            NewTopic::new(&route.replies, 1, replication()),
        ];
        let options = AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .admin
            .create_topics(&topics, &options)
            .await
            .map_err(|e| Error::Unavailable(format!("creating {}: {e}", route.requests)))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(Error::Unavailable(format!("creating topic {name}: {code}")))
                }
            }
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let names = self.topic_names().await?;
            if names.contains(&route.requests) && names.contains(&route.replies) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "topics {} and {} not ready within {REQUEST_TIMEOUT:?}",
                    route.requests, route.replies
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every topic the brokers know with at least one partition.
    pub(super) async fn topic_names(&self) -> Result<HashSet<String>> {
        let consumer = self.consumer.clone();
        // librdkafka's metadata call blocks its thread: keep it off the runtime's workers.
        let metadata =
            tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, REQUEST_TIMEOUT))
                .await
                .map_err(|e| Error::Unavailable(format!("metadata: {e}")))?
                .map_err(|e| Error::Unavailable(format!("listing topics: {e}")))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.name().to_string())
            .collect())
    }
}
