//! The append path. One writer task per [`KafkaEventLog`](crate::KafkaEventLog) owns the
//! idempotent producer: it takes every append waiting in its queue (group commit, like the
//! sled log) and hands their records to librdkafka one append after another, so the records
//! of one append are adjacent in the producer's queue and, the producer being idempotent with
//! in-order retries, adjacent in the partition. An acknowledger task then waits for the
//! delivery reports in order and answers each append once all of its records are written
//! with `acks=all`; only then does `end` move past them. The writer keeps sending the next
//! group while earlier ones are in flight (bounded by [`GROUPS_IN_FLIGHT`]).
//!
//! Several producers writing one topic (every node appends API events; a fenced writer has its
//! own producer) interleave: Kafka keeps each producer's order but not adjacency across
//! producers, so an append's records are adjacent only among this producer's records. A
//! failed record also leaves the records around it written: an append that fails "may have
//! happened, in part". The scheduler writes through a fenced writer instead
//! (`fenced_writer`), whose appends are all-or-nothing.

use crate::record::{self, UNASSIGNED};
use kindling_events::{codec, Envelope, LogPosition, NewEvent};
use kindling_store::{Result, StoreError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Most events taken into one group: bounds the latency a large group adds.
const MAX_GROUP_EVENTS: usize = 4096;
/// Groups sent but not yet acknowledged; with [`MAX_GROUP_EVENTS`] this stays far below
/// librdkafka's queue (100,000 messages), so a full queue is a rare slow path.
const GROUPS_IN_FLIGHT: usize = 8;
/// Wait before retrying a record librdkafka's full queue refused.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(2);

pub(crate) struct AppendRequest {
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<Vec<Envelope>>>,
}

/// An append whose records are with librdkafka.
struct Pending {
    envelopes: Vec<Envelope>,
    deliveries: Vec<DeliveryFuture>,
    /// A record that could not be queued; the records queued before it may still be written.
    queue_error: Option<KafkaError>,
    reply: oneshot::Sender<Result<Vec<Envelope>>>,
}

pub(crate) struct Writer {
    pub writer: JoinHandle<FutureProducer>,
    pub acknowledger: JoinHandle<()>,
}

pub(crate) fn spawn(
    producer: FutureProducer,
    settings: rdkafka::ClientConfig,
    topic: Arc<str>,
    max_record_bytes: usize,
    requests: mpsc::Receiver<AppendRequest>,
    end: Arc<watch::Sender<LogPosition>>,
) -> Writer {
    let (tx, rx) = mpsc::channel(GROUPS_IN_FLIGHT);
    let stale = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Writer {
        writer: tokio::spawn(write(
            producer,
            settings,
            topic,
            max_record_bytes,
            requests,
            tx,
            stale.clone(),
        )),
        acknowledger: tokio::spawn(acknowledge(rx, end, stale)),
    }
}

/// Moves `end` forward to `to`, never back: the writer and the tail both report.
pub(crate) fn advance(end: &watch::Sender<LogPosition>, to: LogPosition) {
    end.send_if_modified(|e| {
        if to > *e {
            *e = to;
            true
        } else {
            false
        }
    });
}

/// Ends when every sender of `requests` is gone (the log was closed or dropped), after the
/// groups taken so far are handed to the acknowledger. Returns the producer so that `close`
/// can destroy it off the runtime (librdkafka's destructor blocks).
async fn write(
    mut producer: FutureProducer,
    settings: rdkafka::ClientConfig,
    topic: Arc<str>,
    max_record_bytes: usize,
    mut requests: mpsc::Receiver<AppendRequest>,
    acks: mpsc::Sender<Vec<Pending>>,
    stale: Arc<std::sync::atomic::AtomicBool>,
) -> FutureProducer {
    let mut group = Vec::new();
    while let Some(first) = requests.recv().await {
        let mut events = first.events.len();
        group.push(first);
        while events < MAX_GROUP_EVENTS {
            match requests.try_recv() {
                Ok(r) => {
                    events += r.events.len();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        // An idempotent producer that hit a fatal error (e.g. a broker that restarted without
        // its producer state fences it) refuses every record from then on. Its unacknowledged
        // records fail with it; a new producer (a new producer id) takes the appends that
        // follow. If even that cannot be created, say why instead of each record's failure.
        let fatal = producer.client().fatal_error().or_else(|| {
            stale
                .swap(false, std::sync::atomic::Ordering::SeqCst)
                .then(|| {
                    (
                        RDKafkaErrorCode::ProducerFenced,
                        "the broker no longer accepts this producer's id".to_string(),
                    )
                })
        });
        if let Some((code, reason)) = fatal {
            tracing::warn!(%topic, ?code, %reason, "kafka producer failed fatally; replacing it");
            match settings.create::<FutureProducer>() {
                Ok(fresh) => {
                    let old = std::mem::replace(&mut producer, fresh);
                    // librdkafka's destructor blocks while it drains: off the runtime.
                    tokio::task::spawn_blocking(move || drop(old));
                }
                Err(e) => {
                    for req in group.drain(..) {
                        let _ = req.reply.send(Err(StoreError::Backend(format!(
                            "kafka producer failed fatally ({code:?}: {reason}) and cannot be \
                             replaced ({e}); nothing was written"
                        ))));
                    }
                    continue;
                }
            }
        }
        kindling_store::metrics::commit_batch(events);
        let mut pending = Vec::with_capacity(group.len());
        for req in group.drain(..) {
            if let Some(p) = enqueue(&producer, &topic, max_record_bytes, req).await {
                pending.push(p);
            }
        }
        if acks.send(pending).await.is_err() {
            break;
        }
    }
    producer
}

/// Hands one append's records to librdkafka, or refuses it whole when an event is too large
/// (then certainly nothing of it was written).
async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    max_record_bytes: usize,
    req: AppendRequest,
) -> Option<Pending> {
    let envelopes: Vec<Envelope> = req
        .events
        .into_iter()
        .map(|e| Envelope::new(UNASSIGNED, e))
        .collect();
    let values: Vec<Vec<u8>> = envelopes.iter().map(codec::encode).collect();
    if let Some(v) = values.iter().find(|v| v.len() > max_record_bytes) {
        let _ = req.reply.send(Err(StoreError::TooLarge {
            bytes: v.len(),
            limit: max_record_bytes,
        }));
        return None;
    }
    let mut deliveries = Vec::with_capacity(values.len());
    let mut queue_error = None;
    for (envelope, value) in envelopes.iter().zip(&values) {
        match send(producer, topic, &record::key(envelope.aggregate), value).await {
            Ok(d) => deliveries.push(d),
            Err(e) => {
                queue_error = Some(e);
                break;
            }
        }
    }
    Some(Pending {
        envelopes,
        deliveries,
        queue_error,
        reply: req.reply,
    })
}

/// Hands one record to librdkafka, waiting while its queue is full.
pub(crate) async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        let record = FutureRecord::to(topic).partition(0).key(key).payload(value);
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            // librdkafka offers no wake-up when its queue drains: back off and retry.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(QUEUE_FULL_BACKOFF).await
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Answers appends in the order they were sent; ends when the writer is gone and every group
/// it sent is answered.
async fn acknowledge(
    mut acks: mpsc::Receiver<Vec<Pending>>,
    end: Arc<watch::Sender<LogPosition>>,
    stale: Arc<std::sync::atomic::AtomicBool>,
) {
    while let Some(group) = acks.recv().await {
        for pending in group {
            settle(pending, &end, &stale).await;
        }
    }
}

/// Delivery errors after which the broker refuses this producer's id for good (e.g. a broker
/// restarted without its producer state): only a new producer gets records through again.
fn producer_id_refused(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::UnknownProducerId
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
        )
    )
}

async fn settle(
    pending: Pending,
    end: &watch::Sender<LogPosition>,
    stale: &std::sync::atomic::AtomicBool,
) {
    let Pending {
        mut envelopes,
        deliveries,
        queue_error,
        reply,
    } = pending;
    let total = envelopes.len();
    let mut failure = queue_error.map(|e| e.to_string());
    let mut written = 0;
    for (envelope, delivery) in envelopes.iter_mut().zip(deliveries) {
        let outcome = match delivery.await {
            Ok(Ok(d)) => record::position(d.offset).map_err(|e| e.to_string()),
            Ok(Err((e, _))) => {
                if producer_id_refused(&e) {
                    stale.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Err(e.to_string())
            }
            Err(_) => Err("the producer went away before reporting delivery".to_string()),
        };
        match outcome {
            Ok(position) => {
                envelope.position = position;
                written += 1;
                // Acknowledged with acks=all: this record and every offset before it are on
                // all in-sync replicas, whatever happened to this append's other records.
                advance(end, position.next());
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(reason) = failure {
        tracing::warn!(events = total, written, %reason, "event log append failed; it may have happened in part");
        kindling_store::metrics::append_failed(1);
        crate::metrics::kafka_error("producer");
        let _ = reply.send(Err(StoreError::Backend(format!(
            "append of {total} events may have been written in part ({written} confirmed): \
             {reason}"
        ))));
        return;
    }
    if envelopes
        .windows(2)
        .any(|w| w[1].position.0 != w[0].position.0 + 1)
    {
        tracing::debug!(
            first = envelopes[0].position.0,
            events = total,
            "another producer's records landed inside this append's batch"
        );
    }
    kindling_store::metrics::appended(total);
    let _ = reply.send(Ok(envelopes));
}
