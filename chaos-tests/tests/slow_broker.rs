//! The Kafka event log on the broker the harness runs: tansu 0.6 with its log on S3
//! (SeaweedFS), which lists every stored batch on each fetch, and every append is its own
//! batch. A node that replays a long log there must still move
//! forward: a read that runs out of time returns the records it met and the next read goes on
//! from there. Failing the whole read instead threw the progress away, and each node of the
//! first chaos run against the real cluster retried its replay from one place for ever.

use kindling_chaos::services::{self, Binaries};
use kindling_events::{Envelope, Event, LogPosition, Origin};
use kindling_store::conformance::new_event;
use kindling_store::EventLog;
use kindling_store_kafka::{KafkaConfig, KafkaEventLog};
use std::time::Duration;

const EVENTS: u64 = 1500;

fn config(broker: &services::Service) -> KafkaConfig {
    let mut config = KafkaConfig::new(broker.addr.to_string(), "kindling-slow-broker");
    config.session_timeout = Duration::from_secs(2);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_a_slow_broker_keep_their_progress() {
    let bins = Binaries::find().expect("ops/dev/install-kafka and ops/dev/install-s3");
    let dir = tempfile::tempdir().unwrap();
    let s3 = services::s3(&bins, dir.path()).unwrap();
    let broker = services::kafka(&bins, dir.path(), Some(&s3)).unwrap();

    let writer = KafkaEventLog::open(config(&broker)).await.unwrap();
    let mut written = Vec::new();
    for job in 0..EVENTS {
        let one = new_event(job, 1, Origin::Api, Event::SessionActivity);
        written.extend(writer.append(vec![one]).await.unwrap());
    }
    writer.close().await;

    // tansu on S3 lists the partition's objects on every fetch: with 1,500 one-record
    // batches a fetch takes tens of milliseconds, and reading them all takes longer than a
    // 2 s request timeout (500 did not, once the reader's fetch wait let one fetch return
    // several batches: 500 records from offset 0 took 0.6 s). Opening needs one fetch (the
    // last record), well within it even on a loaded machine.
    let mut slow = config(&broker);
    slow.request_timeout = Duration::from_secs(2);
    let reader = KafkaEventLog::open(slow).await.unwrap();
    assert_eq!(reader.end(), LogPosition(EVENTS));

    // Each read either returns the records it met in its time, or, when a loaded machine made
    // even its first fetch take longer than that, fails having met none: that read is retried
    // from the same place, and a few such in a row would mean the reader no longer moves.
    let mut read: Vec<Envelope> = Vec::new();
    let (mut reads, mut short_reads, mut empty_in_a_row) = (0, 0, 0);
    while read.len() < written.len() {
        let from = read.last().map_or(LogPosition(0), |e| e.position.next());
        reads += 1;
        match reader.read(from, 1000).await {
            Ok(more) => {
                assert!(!more.is_empty(), "a read from {from:?} met nothing");
                if read.len() + more.len() < written.len() {
                    short_reads += 1;
                }
                read.extend(more);
                empty_in_a_row = 0;
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("no record within"),
                    "a read from {from:?} failed for another reason than time: {e}"
                );
                empty_in_a_row += 1;
                assert!(
                    empty_in_a_row < 5,
                    "{empty_in_a_row} reads in a row from {from:?} met no record: {e}"
                );
            }
        }
    }
    assert!(
        short_reads > 0,
        "no read stopped short on the slow broker: the test no longer tests a slow read"
    );
    assert_eq!(
        read, written,
        "{reads} reads together return the log in order"
    );
    reader.close().await;
}
