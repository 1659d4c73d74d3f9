//! The metrics of the REST API: requests passed on to the leader, long polls waiting,
//! callers refused, event streams open and cut off.

pub const FORWARDED: &str = "kindling_api_forwarded_total";
pub const LONG_POLLS: &str = "kindling_api_long_polls_waiting";
pub const AUTH_REFUSED: &str = "kindling_api_auth_refused_total";
pub const STREAMS: &str = "kindling_api_streams_open";
pub const STREAMS_CUT_OFF: &str = "kindling_api_streams_cut_off_total";

/// Describes the API's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        FORWARDED,
        "Requests on existing jobs forwarded to the leader, by outcome."
    );
    metrics::describe_counter!(
        AUTH_REFUSED,
        "Requests refused before they ran, by reason: missing, malformed, invalid, \
         invalid_token, limited, unavailable (a directory or issuer), forbidden, csrf."
    );
    metrics::describe_gauge!(STREAMS, "Event streams (/api/v1/stream) open now.");
    metrics::describe_counter!(
        STREAMS_CUT_OFF,
        "Event streams closed because their consumer stopped taking messages."
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

/// Counts one event stream as open until the guard drops.
pub fn stream_open() -> impl Drop + Send {
    struct Open;
    impl Drop for Open {
        fn drop(&mut self) {
            metrics::gauge!(STREAMS).decrement(1.0);
        }
    }
    metrics::gauge!(STREAMS).increment(1.0);
    Open
}

pub fn stream_cut_off() {
    metrics::counter!(STREAMS_CUT_OFF).increment(1);
}
