//! The metrics of the driver gateway: drivers linked and statement round trips.

use std::time::Duration;

pub const STATEMENT_LATENCY: &str = "kindling_statement_latency_seconds";
pub const DRIVERS_CONNECTED: &str = "kindling_gateway_drivers_connected";

/// Describes the gateway's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_histogram!(
        STATEMENT_LATENCY,
        metrics::Unit::Seconds,
        "Statement submission to result recorded."
    );
    metrics::describe_gauge!(DRIVERS_CONNECTED, "Session drivers connected to this node.");
}

pub fn statement_latency(d: Duration) {
    metrics::histogram!(STATEMENT_LATENCY).record(d.as_secs_f64());
}

pub fn drivers_connected(n: usize) {
    metrics::gauge!(DRIVERS_CONNECTED).set(n as f64);
}
