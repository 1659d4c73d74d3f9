//! The metrics of the REST API: requests passed on to the leader, long polls waiting,
//! callers refused.

pub const FORWARDED: &str = "kindling_api_forwarded_total";
pub const LONG_POLLS: &str = "kindling_api_long_polls_waiting";
pub const AUTH_REFUSED: &str = "kindling_api_auth_refused_total";

/// Describes the API's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        FORWARDED,
        "Requests on existing jobs forwarded to the leader, by outcome."
    );
    metrics::describe_counter!(
        AUTH_REFUSED,
        "Requests refused before they ran, by reason: missing, malformed, invalid, \
         invalid_token, limited, unavailable (a directory or issuer), forbidden."
    );
    metrics::describe_gauge!(
        LONG_POLLS,
        "Statement long polls waiting now (at most --max-long-polls)."
    );
}

/// Counts one long poll as waiting until the guard drops.
pub fn long_poll_waiting() -> impl Drop {
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            metrics::gauge!(LONG_POLLS).decrement(1.0);
        }
    }
    metrics::gauge!(LONG_POLLS).increment(1.0);
    Waiting
}

pub fn forwarded(outcome: &'static str) {
    metrics::counter!(FORWARDED, "outcome" => outcome).increment(1);
}

pub fn auth_refused(reason: &'static str) {
    metrics::counter!(AUTH_REFUSED, "reason" => reason).increment(1);
}
