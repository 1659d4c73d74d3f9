//! The Kafka event log's settings, and the librdkafka client configurations derived from them.
//! Durability settings are applied last so no extra property can weaken them.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the log lives and how its clients behave. Defaults suit one local broker; production
/// sets `replication_factor: 3` and `min_insync_replicas: Some(2)`, so that `acks=all`
/// survives the loss of one broker and refuses writes when only one copy would remain.
#[derive(Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// The log's topic. Created on open if missing, with one partition and unlimited retention
    /// (the log is the source of truth: nothing may expire from it).
    pub topic: String,
    /// Replication factor used when the topic is created. 1 for a single dev broker; 3 in
    /// production.
    pub replication_factor: i32,
    /// `min.insync.replicas` set on the topic when it is created (`None`: the broker's
    /// default). 2 with a replication factor of 3 in production.
    pub min_insync_replicas: Option<i32>,
    /// `client.id` prefix of the log's clients, shown in the brokers' logs and metrics.
    pub client_id: String,
    /// `session.timeout.ms` of the log's consumers. They use `assign`, not group membership,
    /// so this never delays the log itself; it matters only if group-based consumers are built
    /// on the same settings (a first group join takes about half of it).
    pub session_timeout: Duration,
    /// How long the producer keeps retrying a record (`message.timeout.ms`) before the append
    /// fails as "may have happened". A fenced writer also gives its commit this long.
    pub delivery_timeout: Duration,
    /// `transaction.timeout.ms` of fenced writers: the broker aborts a transaction open longer
    /// than this. An open transaction holds back every `read_committed` reader of the log
    /// (they stop at its first record), so this bounds how long a writer that died
    /// mid-append stalls the log when no newer writer with its id opens (opening one aborts it
    /// at once). A fenced writer's records wait at most `min(delivery_timeout, this)`.
    pub transaction_timeout: Duration,
    /// Deadline of each broker round trip the log makes on its own (topic creation, metadata,
    /// watermarks) and of one `read`.
    pub request_timeout: Duration,
    /// `linger.ms`: how long the producer waits to fill a batch. Appends are already grouped
    /// by the writer task, so waiting only adds latency (measured on tansu with 32 appenders:
    /// 0 ms gave the best p50 and throughput; 5 ms raised the p50 to 5.6 ms and cut the
    /// throughput to a quarter).
    pub linger: Duration,
    /// How long the tail follower's fetch waits at the end for new records. Kafka answers as
    /// soon as records arrive, so this only paces an idle log's round trips; tansu answers
    /// when it is over, so other processes' appends show up after about half of it.
    pub tail_fetch_wait: Duration,
    /// Largest encoded event accepted. An append with a larger event is refused whole before
    /// anything is sent. Raising it also needs the topic's and brokers' `max.message.bytes`.
    pub max_record_bytes: usize,
    /// Consumers kept for `read` (concurrent reads beyond this wait for one).
    pub readers: usize,
    /// Extra librdkafka properties for every client (e.g. `security.protocol`,
    /// `sasl.mechanism`). They cannot override the durability settings.
    pub properties: BTreeMap<String, String>,
}

// Properties may hold secrets (`sasl.password`): shown redacted.
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("replication_factor", &self.replication_factor)
            .field("client_id", &self.client_id)
            .field("properties", &crate::properties::shown(&self.properties))
            .finish_non_exhaustive()
    }
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            replication_factor: 1,
            min_insync_replicas: None,
            client_id: "kindling".into(),
            session_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            transaction_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            linger: Duration::ZERO,
            tail_fetch_wait: Duration::from_millis(100),
            max_record_bytes: 1_000_000,
            readers: 2,
            properties: BTreeMap::new(),
        }
    }

    fn base(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("{}-{role}", self.client_id));
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn admin(&self) -> ClientConfig {
        self.base("admin")
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.base("log-writer");
        c.set("linger.ms", millis(self.linger))
            .set("message.timeout.ms", millis(self.delivery_timeout))
            // Durable before acknowledged, in order, without duplicates on retry.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5");
        c
    }

    /// The producer of a fenced writer: the same durability, plus a transactional id that the
    /// broker fences when a newer producer initialises it. librdkafka refuses a
    /// `message.timeout.ms` above `transaction.timeout.ms`, so the first is capped.
    pub(crate) fn transactional_producer(&self, writer_id: &str) -> ClientConfig {
        let mut c = self.producer();
        c.set("client.id", format!("{}-fenced-writer", self.client_id))
            .set(
                "message.timeout.ms",
                millis(self.delivery_timeout.min(self.transaction_timeout)),
            )
            .set("transactional.id", writer_id)
            .set("transaction.timeout.ms", millis(self.transaction_timeout));
        c
    }

    /// A consumer that reads partition 0 by `assign` only: no group membership, no commits,
    /// and an error (not a silent jump) if asked for an offset the topic no longer has.
    pub(crate) fn consumer(&self, role: &str, fetch_wait: Duration) -> ClientConfig {
        let mut c = self.base(role);
        // librdkafka's `assign` needs a group id, though a consumer that never subscribes
        // never joins the group and, committing nothing, never writes to it.
        c.set("group.id", format!("{}-{role}", self.client_id))
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("fetch.wait.max.ms", millis(fetch_wait))
            // Bounds what each consumer prefetches (the default is 64 MB per consumer).
            .set("queued.max.messages.kbytes", "8192")
            .set("allow.auto.create.topics", "false")
            .set("enable.partition.eof", "false")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            // Aborted transactions never show, an open one only once committed. Offsets then
            // skip (markers, aborted records): see `reader`.
            .set("isolation.level", "read_committed");
        c
    }
}

/// The context of the log's consumers, which ask for partition-end events
/// (`enable.partition.eof`): librdkafka also reports reaching the end to the client's error
/// callback, which rdkafka's default context logs at ERROR, once for every record the tail
/// follows. Reaching the end is not an error: it goes to trace; other errors stay errors.
pub(crate) struct LogContext;

impl rdkafka::ClientContext for LogContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            tracing::trace!(%reason, "librdkafka: end of partition");
        } else {
            tracing::error!("librdkafka: {error}: {reason}");
            crate::metrics::kafka_error("consumer");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for LogContext {}

/// A consumer of the event log's partition.
pub(crate) type LogConsumer = rdkafka::consumer::StreamConsumer<LogContext>;

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_reads_committed_only() {
        let config = KafkaConfig::new("localhost:9092", "log");
        for role in ["log-reader", "log-tail"] {
            let c = config.consumer(role, Duration::from_millis(10));
            assert_eq!(c.get("isolation.level"), Some("read_committed"), "{role}");
        }
    }

    #[test]
    fn durability_settings_win_over_extra_properties() {
        let mut config = KafkaConfig::new("localhost:9092", "log");
        config.properties.insert("acks".into(), "1".into());
        config
            .properties
            .insert("enable.idempotence".into(), "false".into());
        for c in [
            config.producer(),
            config.transactional_producer("scheduler"),
        ] {
            assert_eq!(c.get("acks"), Some("all"));
            assert_eq!(c.get("enable.idempotence"), Some("true"));
        }
        let t = config.transactional_producer("scheduler");
        assert_eq!(t.get("transactional.id"), Some("scheduler"));
        assert_eq!(t.get("transaction.timeout.ms"), Some("10000"));
        assert_eq!(t.get("message.timeout.ms"), Some("10000"), "capped");
    }
}
