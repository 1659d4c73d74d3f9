//! The metrics of the REST API: requests by route template, method and status class with
//! their latency, requests passed on to the leader, 503s by cause, long polls waiting,
//! callers refused, event streams open and cut off.

pub const REQUESTS: &str = "kindling_http_requests_total";
pub const REQUEST_LATENCY: &str = "kindling_http_request_duration_seconds";
pub const FORWARDED: &str = "kindling_api_forwarded_total";
pub const LONG_POLLS: &str = "kindling_api_long_polls_waiting";
pub const AUTH_REFUSED: &str = "kindling_api_auth_refused_total";
pub const UNAVAILABLE: &str = "kindling_api_unavailable_total";
pub const STREAMS: &str = "kindling_api_streams_open";
pub const STREAMS_CUT_OFF: &str = "kindling_api_streams_cut_off_total";

/// Describes the API's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "REST requests answered, by route template (never a concrete path), method and status \
         class (2xx, 4xx, ...)."
    );
    metrics::describe_histogram!(
        REQUEST_LATENCY,
        metrics::Unit::Seconds,
        "Time to the start of the answer of REST requests, by route template and method."
    );
    metrics::describe_counter!(
        FORWARDED,
        "Requests on existing jobs forwarded to the leader, by outcome."
    );
    metrics::describe_counter!(
        AUTH_REFUSED,
        "Requests refused before they ran, by reason: missing, malformed, invalid, \
         invalid_token, limited, unavailable (a directory or issuer), forbidden, csrf."
    );
    metrics::describe_counter!(
        UNAVAILABLE,
        "Requests this node refused with 503 (retry), by cause: no_leader, store, not_ready \
         (the readiness probe's 503 answers its question and refuses nothing; a leader's 503 \
         passed on by a follower is counted by the leader)."
    );
    for cause in ["no_leader", "store", "not_ready"] {
        metrics::counter!(UNAVAILABLE, "cause" => cause).increment(0);
    }
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
pub fn long_poll_waiting() -> impl Drop + Send {
    held(LONG_POLLS)
}

/// Counts one event stream as open until the guard drops.
pub fn stream_open() -> impl Drop + Send {
    held(STREAMS)
}

/// Adds one to `gauge` until the guard drops.
fn held(gauge: &'static str) -> impl Drop + Send {
    struct Held(&'static str);
    impl Drop for Held {
        fn drop(&mut self) {
            metrics::gauge!(self.0).decrement(1.0);
        }
    }
    metrics::gauge!(gauge).increment(1.0);
    Held(gauge)
}

pub fn forwarded(outcome: &'static str) {
    metrics::counter!(FORWARDED, "outcome" => outcome).increment(1);
}

pub fn auth_refused(reason: &'static str) {
    metrics::counter!(AUTH_REFUSED, "reason" => reason).increment(1);
}

/// A request answered 503, and why.
pub fn unavailable(cause: &'static str) {
    metrics::counter!(UNAVAILABLE, "cause" => cause).increment(1);
}

pub fn stream_cut_off() {
    metrics::counter!(STREAMS_CUT_OFF).increment(1);
}

/// Counts one answered request of `route` (its template) and how long it took.
pub fn request(route: &str, method: &'static str, status: u16, took: std::time::Duration) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let route = route.to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => class)
        .increment(1);
    metrics::histogram!(REQUEST_LATENCY, "route" => route, "method" => method)
        .record(took.as_secs_f64());
}
