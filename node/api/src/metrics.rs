//! The metrics of the REST API: requests passed on to the leader.

pub const FORWARDED: &str = "kindling_api_forwarded_total";

/// Describes the API's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        FORWARDED,
        "Requests on existing jobs forwarded to the leader, by outcome."
    );
}

pub fn forwarded(outcome: &'static str) {
    metrics::counter!(FORWARDED, "outcome" => outcome).increment(1);
}
