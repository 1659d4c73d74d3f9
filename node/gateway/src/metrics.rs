//! The metrics of the driver gateway: drivers linked, the age of their stalest heartbeat,
//! and statement round trips by kind.

use kindling_events::SessionKind;
use std::time::Duration;

pub const STATEMENT_LATENCY: &str = "kindling_statement_latency_seconds";
pub const DRIVERS_CONNECTED: &str = "kindling_gateway_drivers_connected";
pub const OLDEST_HEARTBEAT: &str = "kindling_gateway_oldest_heartbeat_seconds";

/// Describes the gateway's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_histogram!(
        STATEMENT_LATENCY,
        metrics::Unit::Seconds,
        "Statement submission to result recorded, by kind (pyspark, sql)."
    );
    metrics::describe_gauge!(
        OLDEST_HEARTBEAT,
        "Age of the stalest heartbeat among the drivers connected to this node (0: none)."
    );
    metrics::describe_gauge!(DRIVERS_CONNECTED, "Session drivers connected to this node.");
}

pub fn statement_latency(kind: SessionKind, d: Duration) {
    metrics::histogram!(STATEMENT_LATENCY, "kind" => kind.as_str()).record(d.as_secs_f64());
}

pub fn oldest_heartbeat(age: Option<Duration>) {
    metrics::gauge!(OLDEST_HEARTBEAT).set(age.map_or(0.0, |a| a.as_secs_f64()));
}

pub fn drivers_connected(n: usize) {
    metrics::gauge!(DRIVERS_CONNECTED).set(n as f64);
}
