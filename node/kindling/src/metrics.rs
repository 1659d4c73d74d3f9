//! The node's Prometheus exporter: installs the recorder with the histogram buckets every
//! `_seconds` metric uses, and has each crate describe its own metrics.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the global recorder and returns the handle `/metrics` renders.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let buckets = [
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    // Jobs run and wait for minutes to hours: their own buckets, up to a day (an exact
    // name wins over the suffix).
    let long = [
        1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
        86400.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .set_buckets_for_metric(Matcher::Full(kindling_core::metrics::JOB_RUN.into()), &long)?
        .set_buckets_for_metric(
            Matcher::Full(kindling_core::metrics::QUEUE_WAIT.into()),
            &long,
        )?
        .set_buckets_for_metric(
            Matcher::Full(kindling_store::metrics::COMMIT_BATCH.into()),
            &[
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ],
        )?
        .install_recorder()?;
    kindling_store::metrics::describe();
    kindling_store_kafka::metrics::describe();
    kindling_raft::metrics::describe();
    crate::gauges::describe();
    kindling_core::metrics::describe();
    kindling_gateway::metrics::describe();
    kindling_api::metrics::describe();
    metrics::describe_gauge!(
        "kindling_build_info",
        "Always 1; the labels say which build runs (version, and the Git commit if known)."
    );
    metrics::gauge!(
        "kindling_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => option_env!("KINDLING_COMMIT").unwrap_or("unknown")
    )
    .set(1.0);
    Ok(handle)
}
