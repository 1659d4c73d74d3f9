//! The writer task of a [`KafkaFencedWriter`](super::KafkaFencedWriter): it owns the
//! transactional producer and commits each group of waiting appends as one transaction,
//! answering every append only once the outcome is known (see the parent module for how each
//! failure is answered).

use super::MAX_GROUP_EVENTS;
use crate::record::{self, UNASSIGNED};
use crate::writer::{self, advance, AppendRequest};
use kindling_events::{codec, Envelope, LogPosition};
use kindling_store::{Result, StoreError};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, Producer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

pub(super) struct Task {
    pub(super) producer: FutureProducer,
    pub(super) topic: Arc<str>,
    pub(super) writer_id: Arc<str>,
    pub(super) max_record_bytes: usize,
    pub(super) commit_timeout: Duration,
    pub(super) abort_timeout: Duration,
    pub(super) end: Arc<watch::Sender<LogPosition>>,
}

/// Why a group failed.
enum Failure {
    /// Deposed (or the producer failed fatally): this writer is finished.
    Fenced(String),
    /// Certainly not written: the transaction was aborted.
    NotWritten(String),
    /// May have been written: the writer cannot go on.
    Unknown(String),
}

pub(super) async fn run(
    task: Task,
    mut requests: mpsc::Receiver<AppendRequest>,
    mut closing: watch::Receiver<bool>,
) {
    // Set once the writer may not append any more: what every later append is told.
    let mut finished: Option<Failure> = None;
    let mut group = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = closing.wait_for(|c| *c) => break,
            r = requests.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
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
        if let Some(f) = &finished {
            for req in group.drain(..) {
                let _ = req.reply.send(Err(refusal(&task.writer_id, f)));
            }
            continue;
        }
        let appends: Vec<_> = group.drain(..).filter_map(|req| task.encode(req)).collect();
        if appends.is_empty() {
            continue;
        }
        match task.transact(&appends).await {
            Ok(positions) => {
                kindling_store::metrics::committed(positions.iter().map(Vec::len).sum());
                if let Some(last) = positions.iter().flatten().max() {
                    advance(&task.end, last.next());
                }
                for (append, positions) in appends.into_iter().zip(positions) {
                    let mut envelopes = append.envelopes;
                    for (e, p) in envelopes.iter_mut().zip(positions) {
                        e.position = p;
                    }
                    let _ = append.reply.send(Ok(envelopes));
                }
            }
            Err(failure) => {
                let events: usize = appends.iter().map(|a| a.envelopes.len()).sum();
                // A deposed writer is a newer leader at work, not a broker failing.
                if !matches!(failure, Failure::Fenced(_)) {
                    kindling_store::metrics::append_failed(appends.len());
                    crate::metrics::kafka_error("producer");
                }
                match &failure {
                    Failure::Fenced(why) => {
                        tracing::warn!(writer = %task.writer_id, reason = %why, "fenced writer deposed")
                    }
                    Failure::NotWritten(why) => {
                        tracing::warn!(writer = %task.writer_id, reason = %why, "fenced writer aborted a transaction")
                    }
                    Failure::Unknown(why) => {
                        tracing::error!(writer = %task.writer_id, reason = %why, "fenced writer lost track of a transaction")
                    }
                }
                for append in appends {
                    let _ =
                        append
                            .reply
                            .send(Err(failed_append(&task.writer_id, &failure, events)));
                }
                if !matches!(failure, Failure::NotWritten(_)) {
                    finished = Some(failure);
                }
            }
        }
    }
    // Appends still queued are answered `Closed` when the receiver drops.
    drop(requests);
    close_producer(task.producer).await;
    tracing::info!(writer = %task.writer_id, "fenced writer closed");
}

/// What an append of a group of `events` that failed with `failure` is told.
fn failed_append(writer_id: &str, failure: &Failure, events: usize) -> StoreError {
    match failure {
        Failure::Fenced(why) => StoreError::Fenced(format!(
            "writer {writer_id} was fenced ({why}); this append (one transaction of {events} \
             events) was not acknowledged and is not visible, unless its commit reached the \
             broker just before the fence"
        )),
        Failure::NotWritten(why) => StoreError::Backend(format!(
            "transaction of {events} events aborted ({why}); nothing was written"
        )),
        Failure::Unknown(why) => StoreError::Backend(format!(
            "transaction of {events} events may have been written ({why}); this writer \
             refuses further appends: open a new one"
        )),
    }
}

/// What an append is told once the writer is finished.
fn refusal(writer_id: &str, finished: &Failure) -> StoreError {
    match finished {
        Failure::Fenced(why) => StoreError::Fenced(format!(
            "writer {writer_id} was fenced ({why}); nothing was written"
        )),
        Failure::NotWritten(why) | Failure::Unknown(why) => StoreError::Backend(format!(
            "writer {writer_id} refuses appends since a transaction's outcome was lost \
             ({why}); nothing was written: open a new writer"
        )),
    }
}

/// One append, encoded, waiting for its transaction.
struct Encoded {
    envelopes: Vec<Envelope>,
    values: Vec<Vec<u8>>,
    reply: oneshot::Sender<Result<Vec<Envelope>>>,
}

impl Task {
    /// Encodes an append, or refuses it whole when an event is too large.
    fn encode(&self, req: AppendRequest) -> Option<Encoded> {
        let envelopes: Vec<Envelope> = req
            .events
            .into_iter()
            .map(|e| Envelope::new(UNASSIGNED, e))
            .collect();
        let values: Vec<Vec<u8>> = envelopes.iter().map(codec::encode).collect();
        if let Some(v) = values.iter().find(|v| v.len() > self.max_record_bytes) {
            let _ = req.reply.send(Err(StoreError::TooLarge {
                bytes: v.len(),
                limit: self.max_record_bytes,
            }));
            return None;
        }
        Some(Encoded {
            envelopes,
            values,
            reply: req.reply,
        })
    }

    /// Writes `appends` in one transaction; returns each one's positions once committed.
    async fn transact(&self, appends: &[Encoded]) -> Result<Vec<Vec<LogPosition>>, Failure> {
        if let Err(e) = self.producer.begin_transaction() {
            return Err(self.failed(&e, "begin_transaction", false));
        }
        let mut deliveries: Vec<Vec<DeliveryFuture>> = Vec::with_capacity(appends.len());
        for append in appends {
            let mut these = Vec::with_capacity(append.values.len());
            for (envelope, value) in append.envelopes.iter().zip(&append.values) {
                let key = record::key(envelope.aggregate);
                match writer::send(&self.producer, &self.topic, &key, value).await {
                    Ok(d) => these.push(d),
                    Err(e) => return Err(self.abort(self.failed(&e, "produce", true)).await),
                }
            }
            deliveries.push(these);
        }
        self.commit().await?;
        let mut positions = Vec::with_capacity(deliveries.len());
        for these in deliveries {
            let mut ps = Vec::with_capacity(these.len());
            for delivery in these {
                let position = match delivery.await {
                    Ok(Ok(d)) => record::position(d.offset).map_err(|e| e.to_string()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("no delivery report".to_string()),
                };
                // Committed means every record was delivered: a missing report leaves a
                // position unknown, not the append undone.
                ps.push(position.map_err(|e| {
                    Failure::Unknown(format!("committed, but a record's offset is unknown: {e}"))
                })?);
            }
            positions.push(ps);
        }
        Ok(positions)
    }

    /// Commits the open transaction, retrying while librdkafka says the commit may be retried
    /// and the commit timeout lasts.
    async fn commit(&self) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + self.commit_timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (_, outcome) = blocking(self.producer.clone(), move |p| p.commit_transaction(left))
                .await
                .map_err(|e| Failure::Unknown(e.to_string()))?;
            let e = match outcome {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(fatal) = self.fatal() {
                return Err(fatal);
            }
            match &e {
                KafkaError::Transaction(t) if t.txn_requires_abort() => {
                    return Err(self.abort(Failure::NotWritten(e.to_string())).await)
                }
                KafkaError::Transaction(t)
                    if t.is_retriable() && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(error = %e, "retrying a commit");
                }
                // The records were not all delivered in time; the commit was not sent.
                KafkaError::Flush(_) => {
                    return Err(self.abort(Failure::NotWritten(e.to_string())).await)
                }
                _ => return Err(Failure::Unknown(format!("commit: {e}"))),
            }
        }
    }

    /// Aborts the open transaction after `failure`; what the caller is then told.
    async fn abort(&self, failure: Failure) -> Failure {
        let Failure::NotWritten(why) = failure else {
            return failure;
        };
        let timeout = self.abort_timeout;
        let aborted = blocking(self.producer.clone(), move |p| p.abort_transaction(timeout)).await;
        match aborted {
            Ok((_, Ok(()))) => Failure::NotWritten(why),
            Ok((_, Err(e))) => self
                .fatal()
                .unwrap_or_else(|| Failure::Unknown(format!("{why}; then abort: {e}"))),
            Err(e) => Failure::Unknown(format!("{why}; then abort: {e}")),
        }
    }

    /// Classifies a failed transactional call; `abortable` when the transaction was begun
    /// and nothing is known to have gone wrong with the producer itself.
    fn failed(&self, e: &KafkaError, call: &str, abortable: bool) -> Failure {
        if let Some(fatal) = self.fatal() {
            return fatal;
        }
        match e {
            KafkaError::Transaction(t) if t.is_fatal() => Failure::Fenced(format!("{call}: {e}")),
            _ if abortable => Failure::NotWritten(format!("{call}: {e}")),
            // `begin_transaction` failing leaves nothing begun, but a producer in an
            // unexpected state.
            _ => Failure::Unknown(format!("{call}: {e}")),
        }
    }

    /// The producer's fatal error, if it has one: fenced by a newer writer (the usual case)
    /// or broken for good; either way this writer is finished.
    fn fatal(&self) -> Option<Failure> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| Failure::Fenced(format!("{code:?}: {reason}")))
    }
}

/// Runs a blocking librdkafka call (the transactions API waits for the coordinator) off the
/// runtime's workers; hands the producer back with the outcome.
pub(super) async fn blocking<T: Send + 'static>(
    producer: FutureProducer,
    f: impl FnOnce(&FutureProducer) -> T + Send + 'static,
) -> Result<(FutureProducer, T)> {
    tokio::task::spawn_blocking(move || {
        let out = f(&producer);
        (producer, out)
    })
    .await
    .map_err(|e| StoreError::Backend(format!("transactional call: {e}")))
}

/// librdkafka's destructor blocks (it flushes and joins its threads): run it off the runtime.
pub(super) async fn close_producer(producer: FutureProducer) {
    let _ = tokio::task::spawn_blocking(move || drop(producer)).await;
}
