//! What the broker the tests run against (tansu, started by each test) does with Kafka
//! transactions, checked with plain librdkafka clients and no Kindling code: the fenced writer
//! of the event log relies on each of these, so a broker that lacks one is found here first.
//!
//! - InitProducerId with a transactional id, AddPartitionsToTxn, Produce, EndTxn(commit).
//! - Commit markers take offsets (positions of a transactional log have gaps).
//! - `read_committed` readers do not see an open transaction's records until it commits.
//! - A second producer with the same transactional id fences the first (its next
//!   transaction fails with a fatal, fenced error).
//! - A producer fenced while its commit is under way is told so (`PRODUCER_FENCED` to its
//!   EndTxn), and its transaction is aborted.
//! - `read_committed` readers never see an aborted transaction's records.
//!
//! tansu 0.6 lacks the last two. The tests of those check that the gap is exactly the known
//! one and say so (a `KNOWN BROKER GAP` line), so they can neither pass silently on a broker
//! that fails differently nor keep passing once tansu is fixed.

mod support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use support::{run_id, Broker};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Topic {
    broker: Broker,
    name: String,
}

impl Topic {
    async fn create(name: &str) -> Topic {
        let broker = Broker::start();
        let name = format!("txn-{}-{name}", run_id());
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", broker.brokers())
            .create()
            .unwrap();
        let created = admin
            .create_topics(
                [&NewTopic::new(&name, 1, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
            )
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        Topic { broker, name }
    }

    /// A transactional producer with `transactional.id = id`, initialised (InitProducerId).
    async fn producer(&self, id: &str) -> FutureProducer {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.broker.brokers())
            .set("transactional.id", id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        blocking(producer.clone(), |p| p.init_transactions(TIMEOUT))
            .await
            .unwrap_or_else(|e| panic!("InitProducerId with transactional id {id}: {e}"));
        producer
    }

    /// Every record `isolation` lets a reader see, from offset 0 to the partition's end, and
    /// the reader's position there (past any transaction markers; none if it consumed
    /// nothing).
    async fn read_all(&self, isolation: &str) -> (Vec<(i64, String)>, Option<i64>) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.broker.brokers())
            .set("group.id", format!("probe-{isolation}"))
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.name, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let topic = self.name.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + TIMEOUT;
            let mut seen = Vec::new();
            loop {
                assert!(
                    Instant::now() < deadline,
                    "no partition end within {TIMEOUT:?}"
                );
                match consumer.poll(Duration::from_millis(100)) {
                    None => continue,
                    Some(Ok(m)) => seen.push((
                        m.offset(),
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    )),
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => panic!("reading {topic}: {e}"),
                }
            }
            let position = consumer.position().unwrap();
            let at = match position.find_partition(&topic, 0).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                Some(Offset::Invalid) => None,
                other => panic!("unexpected position after reading: {other:?}"),
            };
            (seen, at)
        })
        .await
        .unwrap()
    }
}

/// Runs a blocking librdkafka call (transactions API) off the runtime's workers.
async fn blocking<T: Send + 'static>(
    producer: FutureProducer,
    f: impl FnOnce(&FutureProducer) -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || f(&producer))
        .await
        .unwrap()
}

/// Produces `values` in one transaction and commits it; returns their offsets.
async fn transaction(producer: &FutureProducer, topic: &str, values: &[&str]) -> Vec<i64> {
    producer.begin_transaction().unwrap();
    let offsets = produce(producer, topic, values).await.unwrap();
    blocking(producer.clone(), |p| p.commit_transaction(TIMEOUT))
        .await
        .unwrap();
    offsets
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    values: &[&str],
) -> Result<Vec<i64>, KafkaError> {
    let mut offsets = Vec::new();
    for v in values {
        let record = FutureRecord::<(), _>::to(topic).partition(0).payload(*v);
        let delivery = producer.send(record, TIMEOUT).await.map_err(|(e, _)| e)?;
        offsets.push(delivery.offset);
    }
    Ok(offsets)
}

fn values(seen: &[(i64, String)]) -> Vec<&str> {
    seen.iter().map(|(_, v)| v.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_read_back_and_their_markers_take_offsets() {
    let topic = Topic::create("commit").await;
    let producer = topic.producer("probe-commit").await;
    assert_eq!(
        transaction(&producer, &topic.name, &["a", "b"]).await,
        [0, 1]
    );
    assert_eq!(
        transaction(&producer, &topic.name, &["c"]).await,
        [3],
        "the commit marker of the first transaction is at offset 2"
    );
    let (seen, end) = topic.read_all("read_committed").await;
    assert_eq!(seen, [(0, "a".into()), (1, "b".into()), (3, "c".into())]);
    assert_eq!(
        end,
        Some(5),
        "the reader's position is past the second marker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transactions_are_invisible_to_read_committed_readers_until_committed() {
    let topic = Topic::create("open").await;
    let producer = topic.producer("probe-open").await;
    producer.begin_transaction().unwrap();
    let written = produce(&producer, &topic.name, &["x", "y"]).await.unwrap();
    assert_eq!(
        written,
        [0, 1],
        "written to the partition, not yet committed"
    );

    let (uncommitted, _) = topic.read_all("read_uncommitted").await;
    assert_eq!(values(&uncommitted), ["x", "y"]);
    let (committed, position) = topic.read_all("read_committed").await;
    assert!(committed.is_empty(), "open transaction seen: {committed:?}");
    assert_eq!(
        position, None,
        "read_committed stops at the last stable offset, before the open transaction"
    );

    blocking(producer, |p| p.commit_transaction(TIMEOUT))
        .await
        .unwrap();
    let (committed, position) = topic.read_all("read_committed").await;
    assert_eq!(committed, [(0, "x".into()), (1, "y".into())]);
    assert_eq!(position, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let topic = Topic::create("fence").await;
    let old = topic.producer("probe-fence").await;
    transaction(&old, &topic.name, &["old-1"]).await;

    let new = topic.producer("probe-fence").await;

    old.begin_transaction().unwrap();
    let produced = produce(&old, &topic.name, &["old-2"]).await;
    let committed = blocking(old.clone(), |p| p.commit_transaction(TIMEOUT)).await;
    let error = match (&produced, &committed) {
        (Err(_), Err(KafkaError::Transaction(e))) => e.clone(),
        other => panic!("the fenced producer's transaction went through: {other:?}"),
    };
    assert!(error.is_fatal(), "fencing is fatal: {error}");
    assert!(
        matches!(
            error.code(),
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        ),
        "fenced, not {:?}: {error}",
        error.code()
    );
    let fatal = old.client().fatal_error().map(|(code, _)| code);
    assert!(fatal.is_some(), "the old producer is unusable from now on");

    transaction(&new, &topic.name, &["new-1"]).await;
    let (seen, _) = topic.read_all("read_committed").await;
    assert_eq!(values(&seen), ["old-1", "new-1"]);
}

/// An explicitly aborted transaction, and one left open by a producer that a newer one
/// fenced (InitProducerId aborts it), must both stay invisible to `read_committed` readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_are_hidden_from_read_committed_readers_except_on_the_known_broker_gap(
) {
    let topic = Topic::create("abort").await;
    let producer = topic.producer("probe-abort").await;
    producer.begin_transaction().unwrap();
    produce(&producer, &topic.name, &["aborted"]).await.unwrap();
    blocking(producer.clone(), |p| p.abort_transaction(TIMEOUT))
        .await
        .unwrap();
    transaction(&producer, &topic.name, &["committed-1"]).await;

    producer.begin_transaction().unwrap();
    produce(&producer, &topic.name, &["left-open"])
        .await
        .unwrap();
    let new = topic.producer("probe-abort").await;
    transaction(&new, &topic.name, &["committed-2"]).await;

    let (seen, _) = topic.read_all("read_committed").await;
    let expected = ["committed-1", "committed-2"];
    if values(&seen) == expected {
        return;
    }
    // tansu 0.6 answers every Fetch with an empty `aborted_transactions` list
    // (tansu-storage/src/service/fetch.rs), and librdkafka drops an aborted transaction's
    // records only when the broker lists it: aborted records reach read_committed readers.
    // Abort markers are still written and the last stable offset still holds back open
    // transactions (the tests above), so exactly the aborted records show, in place.
    assert_eq!(
        values(&seen),
        ["aborted", "committed-1", "left-open", "committed-2"],
        "not the known tansu gap either: {seen:?}"
    );
    eprintln!(
        "KNOWN BROKER GAP (tansu 0.6, {}): read_committed readers see the records of aborted \
         transactions {seen:?}; the fenced event-log writer's guarantee that a deposed \
         writer's unacknowledged appends never become visible holds on Kafka, not on this \
         broker",
        topic.broker.log.display()
    );
}

/// The fenced producer's transaction was begun and its records produced (its partition is in
/// the transaction) when the new producer initialised: its commit must fail as fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_under_way_when_fenced_fails_as_fenced_except_on_the_known_broker_gap() {
    const COMMIT_WITHIN: Duration = Duration::from_secs(3);
    let topic = Topic::create("fence-commit").await;
    let old = topic.producer("probe-fence-commit").await;
    old.begin_transaction().unwrap();
    produce(&old, &topic.name, &["in-flight"]).await.unwrap();
    let new = topic.producer("probe-fence-commit").await;

    let committed = blocking(old.clone(), |p| p.commit_transaction(COMMIT_WITHIN)).await;
    let error = match committed {
        Err(KafkaError::Transaction(e)) => e,
        other => panic!("the fenced producer committed: {other:?}"),
    };
    transaction(&new, &topic.name, &["new"]).await;
    if error.is_fatal() {
        assert!(
            matches!(
                error.code(),
                RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
            ),
            "fenced, not {:?}: {error}",
            error.code()
        );
        return;
    }
    // tansu 0.6 returns the epoch check's ProducerFenced from EndTxn as an error of the
    // request, not as the response's error code: the broker logs
    // `Storage(Api(ProducerFenced))` and drops the connection, librdkafka retries the EndTxn
    // until the call times out, and the producer never learns it was fenced.
    assert!(
        error.is_retriable() && error.code() == RDKafkaErrorCode::OperationTimedOut,
        "not the known tansu gap either: {error} ({:?})",
        error.code()
    );
    assert!(old.client().fatal_error().is_none());
    eprintln!(
        "KNOWN BROKER GAP (tansu 0.6, {}): the EndTxn of a producer fenced mid-transaction \
         gets no answer (the connection drops), so its commit times out ({error}) instead of \
         failing as fenced",
        topic.broker.log.display()
    );
}
