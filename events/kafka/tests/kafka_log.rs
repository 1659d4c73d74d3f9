//! The Kafka event log against a real broker (tansu, started by each test): the shared
//! conformance suite, other processes' appends, durability across instances, and refusals;
//! fenced writers in [`fenced_writer`].

mod fenced_writer;
mod harness;
mod support;

use harness::Kafka;
use kindling_events::{Event, LogPosition, NewEvent, Origin};
use kindling_store::conformance::{event_log_suite, new_event};
use kindling_store::{EventLog, StoreError};
use kindling_store_kafka::{KafkaConfig, KafkaEventLog};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn activity(job: u64, n: u64) -> Vec<NewEvent> {
    (1..=n)
        .map(|v| new_event(job, v, Origin::Api, Event::SessionActivity))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_log_passes_the_conformance_suite() {
    event_log_suite(&Kafka::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_appends_advance_end_and_subscribe() {
    let kafka = Kafka::start();
    let first = kafka.open_log("shared").await;
    let second = kafka.open_log("shared").await;
    let mut end = first.subscribe();

    let theirs = second.append(activity(1, 3)).await.unwrap();
    tokio::time::timeout(WAIT, end.wait_for(|e| *e >= LogPosition(3)))
        .await
        .expect("the other instance's append moved end")
        .unwrap();
    assert_eq!(first.end(), LogPosition(3));
    assert_eq!(first.read(LogPosition(0), 10).await.unwrap(), theirs);

    let ours = first.append(activity(2, 2)).await.unwrap();
    assert_eq!(
        ours.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        [3, 4],
        "positions continue after the other instance's records"
    );
    let mut their_end = second.subscribe();
    tokio::time::timeout(WAIT, their_end.wait_for(|e| *e >= LogPosition(5)))
        .await
        .expect("and the other way round")
        .unwrap();
    assert_eq!(second.read(LogPosition(3), 10).await.unwrap(), ours);

    // Reads at several positions at once, more of them than the reader pool holds.
    let first = Arc::new(first);
    let reads: Vec<_> = (0..5u64)
        .map(|from| {
            let log = first.clone();
            tokio::spawn(async move { log.read(LogPosition(from), 2).await.unwrap() })
        })
        .collect();
    let all = [theirs, ours].concat();
    for (from, read) in reads.into_iter().enumerate() {
        let want: Vec<_> = all.iter().skip(from).take(2).cloned().collect();
        assert_eq!(read.await.unwrap(), want);
    }
    Arc::into_inner(first).unwrap().close().await;
    second.close().await;
}

/// `current_end` covers every append acknowledged before it, by any instance: the other
/// instance's `end` learns of them only when its tail fetches them (tansu answers a waiting
/// fetch after `tail_fetch_wait`), `current_end` asks the broker. Once the broker is gone it
/// fails instead of answering a stale end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_end_covers_what_another_instance_appended() {
    let mut kafka = Kafka::start();
    let writer = kafka.open_log("current").await;
    let mut config = kafka.config("current");
    // A slow follower: `end` alone would lag by up to a second.
    config.tail_fetch_wait = Duration::from_secs(1);
    let reader = KafkaEventLog::open(config).await.unwrap();
    for round in 0..5u64 {
        let written = writer.append(activity(round, 1)).await.unwrap();
        let after = written[0].position.next();
        let end = reader.current_end().await.unwrap();
        assert!(
            end >= after,
            "round {round}: current_end {end:?} is behind the acknowledged append at {after:?}"
        );
        assert_eq!(
            reader.end(),
            end,
            "end has caught up with what current_end answered"
        );
    }
    kafka.broker.kill();
    let failed = tokio::time::timeout(WAIT, reader.current_end())
        .await
        .expect("current_end gives up on an unreachable broker");
    assert!(failed.is_err(), "without a broker: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_are_read_back_by_a_fresh_instance() {
    let kafka = Kafka::start();
    let log = Arc::new(kafka.open_log("durable").await);
    let appends: Vec<_> = (0..8u64)
        .map(|job| {
            let log = log.clone();
            tokio::spawn(async move { log.append(activity(job, 5)).await.unwrap() })
        })
        .collect();
    let mut written = Vec::new();
    for a in appends {
        written.extend(a.await.unwrap());
    }
    written.sort_by_key(|e| e.position);
    // Not closed: dropped as a crashing node would leave it, once every append was answered.
    drop(log);

    let fresh = kafka.open_log("durable").await;
    assert_eq!(fresh.end(), LogPosition(40));
    assert_eq!(fresh.read(LogPosition(0), 100).await.unwrap(), written);
    fresh.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_more_than_one_partition_is_refused() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;

    let kafka = Kafka::start();
    let config = kafka.config("two-partitions");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.broker.brokers())
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            [&NewTopic::new(&config.topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    match KafkaEventLog::open(config).await {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("exactly 1"), "{msg}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a two-partition topic was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_open_within_the_request_timeout() {
    // A port nothing listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = KafkaConfig::new(addr.to_string(), "kindling-log-nowhere");
    config.request_timeout = Duration::from_secs(2);
    let open = tokio::time::timeout(Duration::from_secs(15), KafkaEventLog::open(config))
        .await
        .expect("open gave up on its own");
    assert!(matches!(open, Err(StoreError::Backend(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_is_refused_whole() {
    let kafka = Kafka::start();
    let mut config = kafka.config("oversized");
    config.max_record_bytes = 200;
    let log = KafkaEventLog::open(config).await.unwrap();
    let mut events = activity(1, 2);
    events[1].event = Event::StatementSubmitted {
        statement: kindling_events::StatementId(0),
        kind: kindling_events::SessionKind::Pyspark,
        code: "x".repeat(500),
    };
    match log.append(events).await {
        Err(e @ StoreError::TooLarge { limit: 200, .. }) => {
            assert!(e.to_string().contains("nothing was written"), "{e}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(log.end(), LogPosition(0));
    let ok = log.append(activity(1, 1)).await.unwrap();
    assert_eq!(
        ok[0].position,
        LogPosition(0),
        "nothing of the refused append took a position"
    );
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_broker_never_acknowledges_fails_as_may_have_happened() {
    let mut kafka = Kafka::start();
    let mut config = kafka.config("lost-broker");
    config.delivery_timeout = Duration::from_secs(2);
    let log = KafkaEventLog::open(config).await.unwrap();
    log.append(activity(1, 2)).await.unwrap();
    kafka.broker.kill();
    // Queued records fail at the delivery timeout; a record already in flight when the
    // broker died fails when librdkafka notices the connection is gone, which under load
    // took up to 9 s (measured). Either way it must give up, not hang.
    let gives_up_within = Duration::from_secs(30);
    let failed = tokio::time::timeout(gives_up_within, log.append(activity(2, 2)))
        .await
        .expect("the append gave up instead of waiting for the broker forever");
    match failed {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("may have been written"), "{msg}"),
        other => panic!("expected a may-have-happened failure, got {other:?}"),
    }
    assert_eq!(
        log.end(),
        LogPosition(2),
        "end does not move past unacknowledged records"
    );
    tokio::time::timeout(WAIT, log.close())
        .await
        .expect("close does not hang without a broker");
}

/// A read below the end always returns something, whatever reads ran on the pool's
/// consumers before it: one that ended far ahead of where the next one starts, one that
/// returned a moment ago (its prefetch still parked at the partition's end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_jumping_positions_never_come_back_empty_below_the_end() {
    let kafka = Kafka::start();
    let log = kafka.open_log("jumping").await;
    for job in 0..60 {
        log.append(activity(job, 5)).await.unwrap();
    }
    let end = log.end();
    assert_eq!(end, LogPosition(300));
    let mut empty = vec![];
    for i in 0..60u64 {
        // Alternately near the end and far behind it, as the scheduler's follower and a
        // lagging projector share the pool.
        let from = if i % 2 == 0 {
            300 - 1 - (i % 7)
        } else {
            (i * 37) % 290
        };
        let got = log.read(LogPosition(from), 1000).await.unwrap();
        if got.is_empty() {
            empty.push(from);
        }
    }
    assert!(
        empty.is_empty(),
        "reads below the end came back empty from {empty:?}"
    );
}
