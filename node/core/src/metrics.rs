//! The metrics of the core: submissions, jobs by state, log appends, the scheduler's
//! launches, take-overs and cluster load, and late writes. Names follow
//! `kindling_<subsystem>_<name>_<unit>`; counters end in `_total`.

use kindling_events::JobState;
use std::time::Duration;

pub const SUBMISSIONS: &str = "kindling_api_submissions_total";
pub const JOBS: &str = "kindling_jobs";
pub const APPEND_LATENCY: &str = "kindling_eventlog_append_latency_seconds";
pub const LAUNCHES: &str = "kindling_scheduler_launches_total";
pub const TAKEOVER: &str = "kindling_scheduler_takeover_seconds";
pub const TAKEOVERS: &str = "kindling_scheduler_takeovers_total";
pub const CLUSTER_DRIVERS: &str = "kindling_scheduler_cluster_drivers";
pub const CLUSTER_WAITING: &str = "kindling_scheduler_cluster_waiting_jobs";
pub const LATE_WRITES: &str = "kindling_eventlog_late_writes_total";

/// Describes the core's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(SUBMISSIONS, "Jobs accepted, by kind (batch, session).");
    metrics::describe_gauge!(JOBS, "Jobs by Livy state.");
    metrics::describe_histogram!(
        APPEND_LATENCY,
        metrics::Unit::Seconds,
        "Durable event log append, including group commit."
    );
    metrics::describe_counter!(LAUNCHES, "Driver launches, by outcome (ok, failed).");
    metrics::describe_histogram!(
        TAKEOVER,
        metrics::Unit::Seconds,
        "Election to scheduling: the catch-up barrier of a new leader."
    );
    metrics::describe_counter!(TAKEOVERS, "Times this node became the scheduling leader.");
    metrics::describe_gauge!(
        CLUSTER_DRIVERS,
        "Drivers the scheduler counts against each cluster's capacity (launching or running)."
    );
    metrics::describe_gauge!(
        CLUSTER_WAITING,
        "Jobs waiting for room on each cluster (or for their owner's limit)."
    );
    metrics::describe_counter!(
        LATE_WRITES,
        "Appends of this node as leader that a newer leader's events preceded in the log, so \
         that they took no effect (only without the broker's fence)."
    );
}

/// What one cluster runs and how many jobs wait for it, as of the scheduler's last plan.
pub fn cluster_load(cluster: &str, drivers: usize, waiting: usize) {
    let name = cluster.to_string();
    metrics::gauge!(CLUSTER_DRIVERS, "cluster" => name.clone()).set(drivers as f64);
    metrics::gauge!(CLUSTER_WAITING, "cluster" => name).set(waiting as f64);
}

pub fn submission(kind: &'static str) {
    metrics::counter!(SUBMISSIONS, "kind" => kind).increment(1);
}

pub fn jobs_in_state(state: JobState, n: i64) {
    metrics::gauge!(JOBS, "state" => state.as_str()).set(n as f64);
}

pub fn append_latency(d: Duration) {
    metrics::histogram!(APPEND_LATENCY).record(d.as_secs_f64());
}

pub fn launch(ok: bool) {
    metrics::counter!(LAUNCHES, "outcome" => if ok { "ok" } else { "failed" }).increment(1);
}

pub fn takeover(d: Duration) {
    metrics::histogram!(TAKEOVER).record(d.as_secs_f64());
    metrics::counter!(TAKEOVERS).increment(1);
}

pub fn late_write() {
    metrics::counter!(LATE_WRITES).increment(1);
}
