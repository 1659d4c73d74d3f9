//! The metrics of the event log's writers, shared by every log implementation: events
//! appended durably, how many each durable write carried (group commit), appends that failed.

pub const APPENDS: &str = "kindling_eventlog_appends_total";
pub const COMMIT_BATCH: &str = "kindling_eventlog_commit_batch_events";
pub const APPEND_ERRORS: &str = "kindling_eventlog_append_errors_total";

/// Describes the log's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        APPENDS,
        "Events this node appended durably to the event log."
    );
    metrics::describe_histogram!(
        COMMIT_BATCH,
        "Events per durable write of the event log: concurrent appends share one (group commit)."
    );
    metrics::describe_counter!(
        APPEND_ERRORS,
        "Appends to the event log that failed (the store unreachable or refusing); nothing \
         acknowledged is lost."
    );
    // From the start, so that the first failure's increase is seen.
    metrics::counter!(APPEND_ERRORS).increment(0);
}

/// One durable write of `events` events, acknowledged.
pub fn committed(events: usize) {
    metrics::counter!(APPENDS).increment(events as u64);
    metrics::histogram!(COMMIT_BATCH).record(events as f64);
}

/// One durable write that carried `events` events (before it is acknowledged).
pub fn commit_batch(events: usize) {
    metrics::histogram!(COMMIT_BATCH).record(events as f64);
}

/// `events` events appended, acknowledged one append at a time.
pub fn appended(events: usize) {
    metrics::counter!(APPENDS).increment(events as u64);
}

/// `appends` appends failed.
pub fn append_failed(appends: usize) {
    metrics::counter!(APPEND_ERRORS).increment(appends as u64);
}
