//! The conformance harness of the Kafka event log: a broker of its own (tansu, started per
//! test), topics named per run, and the broker's known gaps in transactions, found by
//! probing it (tests/broker_transactions.rs shows each in detail).

use crate::support::{run_id, Broker};
use async_trait::async_trait;
use kindling_store::conformance::{KnownGaps, LogHarness};
use kindling_store_kafka::{KafkaConfig, KafkaEventLog};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Kafka {
    pub broker: Broker,
    run: String,
    /// Found by [`probe`] (only by [`Kafka::start_probed`]), never assumed.
    gaps: Option<KnownGaps>,
}

impl Kafka {
    pub fn start() -> Kafka {
        Kafka {
            broker: Broker::start(),
            run: run_id(),
            gaps: None,
        }
    }

    /// A broker, and its known gaps.
    pub async fn start_probed() -> Kafka {
        let mut kafka = Kafka::start();
        kafka.gaps = Some(probe(&kafka.broker.brokers()).await);
        kafka
    }

    pub fn gaps(&self) -> KnownGaps {
        self.gaps
            .expect("the broker was not probed: start it with Kafka::start_probed")
    }

    pub fn config(&self, name: &str) -> KafkaConfig {
        let mut config = KafkaConfig::new(
            self.broker.brokers(),
            format!("kindling-log-{}-{name}", self.run),
        );
        config.session_timeout = Duration::from_secs(2);
        // How long a writer deposed mid-commit waits on a broker that never answers it.
        config.transaction_timeout = COMMIT_WITHIN;
        config
    }

    pub async fn open_log(&self, name: &str) -> KafkaEventLog {
        KafkaEventLog::open(self.config(name))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "open {name}: {e}; broker log: {}",
                    self.broker.log.display()
                )
            })
    }
}

#[async_trait]
impl LogHarness for Kafka {
    type Log = KafkaEventLog;
    async fn open(&self, name: &str) -> KafkaEventLog {
        self.open_log(name).await
    }
    async fn close(&self, log: KafkaEventLog) {
        log.close().await
    }
    fn known_gaps(&self) -> KnownGaps {
        self.gaps()
    }
}

const COMMIT_WITHIN: Duration = Duration::from_secs(3);

/// On a topic of its own: aborts a one-record transaction and commits another, then leaves a
/// third with its record produced while a second producer with the same transactional id
/// initialises, and commits it. Kafka refuses that commit as fenced and hides both aborted
/// records from `read_committed` readers.
async fn probe(brokers: &str) -> KnownGaps {
    let topic = format!("kindling-probe-{}", run_id());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("probe admin client");
    let created = admin
        .create_topics(
            [&NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .expect("probe topic");
    assert!(
        created.iter().all(Result::is_ok),
        "probe topic: {created:?}"
    );
    let producer = || -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("transactional.id", &topic)
            .create()
            .expect("probe producer")
    };
    let old = producer();
    call(&old, |p| p.init_transactions(TIMEOUT)).await.unwrap();
    for (value, commit) in [("aborted", false), ("committed", true), ("fenced", true)] {
        old.begin_transaction().expect("probe: begin");
        let record = FutureRecord::<(), _>::to(&topic)
            .partition(0)
            .payload(value);
        old.send(record, TIMEOUT)
            .await
            .map_err(|(e, _)| e)
            .expect("probe: produce");
        if value == "fenced" {
            break;
        }
        if commit {
            call(&old, |p| p.commit_transaction(TIMEOUT)).await.unwrap();
        } else {
            call(&old, |p| p.abort_transaction(TIMEOUT)).await.unwrap();
        }
    }
    let new = producer();
    call(&new, |p| p.init_transactions(TIMEOUT)).await.unwrap();
    let fenced_commit = call(&old, |p| p.commit_transaction(COMMIT_WITHIN)).await;
    let told_fenced = match &fenced_commit {
        Err(KafkaError::Transaction(e)) => e.is_fatal(),
        other => panic!("probe: the fenced producer's commit: {other:?}"),
    };
    tokio::task::spawn_blocking(move || drop((old, new)))
        .await
        .unwrap();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kindling-probe")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("probe consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => seen.push(m.payload().unwrap_or_default().to_vec()),
                Some(Err(KafkaError::PartitionEOF(_))) => return seen,
                Some(Err(e)) => panic!("probe: reading back: {e}"),
                None => {}
            }
        }
        panic!("probe: no partition end within {TIMEOUT:?}")
    })
    .await
    .unwrap();
    assert!(
        seen.iter().any(|v| v == b"committed"),
        "probe: the committed record was not read back"
    );
    KnownGaps {
        deposed_in_flight_appends_show: seen.iter().any(|v| v == b"aborted" || v == b"fenced"),
        deposed_in_flight_appends_fail_otherwise: !told_fenced,
    }
}

/// Runs a blocking transactional call off the runtime's workers.
async fn call(
    producer: &FutureProducer,
    f: impl FnOnce(&FutureProducer) -> KafkaResult<()> + Send + 'static,
) -> KafkaResult<()> {
    let p = producer.clone();
    tokio::task::spawn_blocking(move || f(&p)).await.unwrap()
}
