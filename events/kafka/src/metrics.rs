//! The metrics of the Kafka clients: errors of the log's producers and consumers, which
//! the log-store alert watches.

pub const ERRORS: &str = "kindling_kafka_errors_total";

/// Describes the crate's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        ERRORS,
        "Errors of the event log's Kafka clients, by client (producer, consumer): failed \
         deliveries and transactions, failed reads of the log's tail, librdkafka's own errors."
    );
    // From the start, so that the first error's increase is seen.
    for client in ["producer", "consumer"] {
        metrics::counter!(ERRORS, "client" => client).increment(0);
    }
}

/// `client`: `producer` or `consumer`.
pub(crate) fn kafka_error(client: &'static str) {
    metrics::counter!(ERRORS, "client" => client).increment(1);
}
