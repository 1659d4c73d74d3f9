//! The metrics of the core: submissions, jobs by state and their run time, log appends,
//! projection errors and the read barrier, the scheduler's launches, queue
//! waits, lost drivers, backend errors, take-overs and cluster load, and late writes. Names follow
//! `kindling_<subsystem>_<name>_<unit>`; counters end in `_total`.

use kindling_events::JobState;
use std::time::Duration;

pub const SUBMISSIONS: &str = "kindling_api_submissions_total";
pub const JOBS: &str = "kindling_jobs";
pub const APPEND_LATENCY: &str = "kindling_eventlog_append_latency_seconds";
pub const LAUNCHES: &str = "kindling_scheduler_launches_total";
pub const LAUNCH_LATENCY: &str = "kindling_scheduler_launch_duration_seconds";
pub const QUEUE_WAIT: &str = "kindling_scheduler_queue_wait_seconds";
pub const OLDEST_WAIT: &str = "kindling_scheduler_oldest_wait_seconds";
pub const CLUSTER_CAPACITY: &str = "kindling_scheduler_cluster_capacity_drivers";
pub const DRIVERS_LOST: &str = "kindling_scheduler_drivers_lost_total";
pub const RETRIES: &str = "kindling_scheduler_retries_total";
pub const BACKEND_ERRORS: &str = "kindling_backend_call_errors_total";
pub const JOB_RUN: &str = "kindling_job_run_seconds";
pub const PROJECTION_ERRORS: &str = "kindling_projection_errors_total";
pub const BARRIER_WAIT: &str = "kindling_read_barrier_wait_seconds";
pub const BARRIER_FAILURES: &str = "kindling_read_barrier_failures_total";
pub const TAKEOVER: &str = "kindling_scheduler_takeover_seconds";
pub const TAKEOVERS: &str = "kindling_scheduler_takeovers_total";
pub const CLUSTER_DRIVERS: &str = "kindling_scheduler_cluster_drivers";
pub const CLUSTER_WAITING: &str = "kindling_scheduler_cluster_waiting_jobs";
pub const LATE_WRITES: &str = "kindling_eventlog_late_writes_total";

/// Describes the core's metrics to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(SUBMISSIONS, "Jobs accepted, by kind (batch, session).");
    metrics::describe_counter!(
        RETRIES,
        "Failed batch attempts the restart policy launches again, by cluster."
    );
    metrics::describe_gauge!(JOBS, "Jobs by Livy state.");
    metrics::describe_histogram!(
        APPEND_LATENCY,
        metrics::Unit::Seconds,
        "Durable event log append, including group commit."
    );
    metrics::describe_counter!(
        LAUNCHES,
        "Driver launches answered, by cluster and outcome (ok, failed)."
    );
    metrics::describe_histogram!(
        LAUNCH_LATENCY,
        metrics::Unit::Seconds,
        "Backend launch calls, by cluster and outcome (ok, failed)."
    );
    metrics::describe_histogram!(
        QUEUE_WAIT,
        metrics::Unit::Seconds,
        "Submission to the scheduler's decision to launch, by cluster."
    );
    metrics::describe_gauge!(
        OLDEST_WAIT,
        "How long the longest-waiting job of each cluster has waited (0: none waits)."
    );
    metrics::describe_gauge!(
        CLUSTER_CAPACITY,
        "The most drivers each cluster may run at once (+Inf: no limit)."
    );
    metrics::describe_counter!(
        DRIVERS_LOST,
        "Drivers the scheduler gave up on, by cluster: no heartbeat, no reconnect in time."
    );
    metrics::describe_counter!(
        BACKEND_ERRORS,
        "Backend calls that failed, by cluster and call (launch, find, kill, connect)."
    );
    metrics::describe_histogram!(
        JOB_RUN,
        metrics::Unit::Seconds,
        "Start to end of the jobs this node ended as leader, by kind and final state."
    );
    metrics::describe_counter!(
        PROJECTION_ERRORS,
        "Projection store writes that failed (retried until they succeed)."
    );
    metrics::describe_histogram!(
        BARRIER_WAIT,
        metrics::Unit::Seconds,
        "Reads waiting for this node's projections to reach the log's end."
    );
    metrics::describe_counter!(
        BARRIER_FAILURES,
        "Reads refused because this node could not vouch they were current, by cause: \
         log_unreachable, behind."
    );
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
    // Failure counters exist from the start, so that their first increase is seen.
    metrics::counter!(PROJECTION_ERRORS).increment(0);
    for cause in ["log_unreachable", "behind"] {
        metrics::counter!(BARRIER_FAILURES, "cause" => cause).increment(0);
    }
    metrics::describe_counter!(
        LATE_WRITES,
        "Appends of this node as leader that a newer leader's events preceded in the log, so \
         that they took no effect (only without the broker's fence)."
    );
}

/// What one cluster runs, how many jobs wait for it and for how long the longest has, as
/// of the scheduler's last plan.
pub fn cluster_load(cluster: &str, drivers: usize, waiting: usize, oldest_wait_ms: Option<u64>) {
    let name = cluster.to_string();
    metrics::gauge!(CLUSTER_DRIVERS, "cluster" => name.clone()).set(drivers as f64);
    metrics::gauge!(CLUSTER_WAITING, "cluster" => name.clone()).set(waiting as f64);
    let oldest = oldest_wait_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
    metrics::gauge!(OLDEST_WAIT, "cluster" => name).set(oldest);
}

/// The most drivers `cluster` may run (none: no limit).
pub fn cluster_capacity(cluster: &str, max_drivers: Option<u32>) {
    let max = max_drivers.map_or(f64::INFINITY, f64::from);
    metrics::gauge!(CLUSTER_CAPACITY, "cluster" => cluster.to_string()).set(max);
}

/// Starts the failure counters of a cluster this leader now schedules at 0, so that
/// `rate()` and `increase()` see their first failure.
pub fn cluster_counters(cluster: &str) {
    let name = cluster.to_string();
    for outcome in ["ok", "failed"] {
        metrics::counter!(LAUNCHES, "cluster" => name.clone(), "outcome" => outcome).increment(0);
    }
    metrics::counter!(DRIVERS_LOST, "cluster" => name.clone()).increment(0);
    metrics::counter!(RETRIES, "cluster" => name.clone()).increment(0);
    for call in ["launch", "find", "kill", "connect"] {
        metrics::counter!(BACKEND_ERRORS, "cluster" => name.clone(), "call" => call).increment(0);
    }
}

/// A job leaves the queue for a launch after `waited_ms`.
pub fn queue_wait(cluster: &str, waited_ms: u64) {
    metrics::histogram!(QUEUE_WAIT, "cluster" => cluster.to_string())
        .record(waited_ms as f64 / 1000.0);
}

/// A failed attempt of a job on `cluster` is to be launched again.
pub fn retry(cluster: &str) {
    metrics::counter!(RETRIES, "cluster" => cluster.to_string()).increment(1);
}

pub fn driver_lost(cluster: &str) {
    metrics::counter!(DRIVERS_LOST, "cluster" => cluster.to_string()).increment(1);
}

/// A backend launch call on `cluster` that took `took`.
pub fn launch_call(cluster: &str, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::histogram!(LAUNCH_LATENCY, "cluster" => cluster.to_string(), "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// `call`: `launch`, `find`, `kill` or `connect` (the backend could not be built).
pub fn backend_error(cluster: &str, call: &'static str) {
    metrics::counter!(BACKEND_ERRORS, "cluster" => cluster.to_string(), "call" => call)
        .increment(1);
}

/// A job this node ended as leader, after `ran_ms` from its start (or its submission).
pub fn job_ended(kind: &'static str, state: JobState, ran_ms: i64) {
    metrics::histogram!(JOB_RUN, "kind" => kind, "outcome" => state.as_str())
        .record(ran_ms.max(0) as f64 / 1000.0);
}

pub fn projection_error() {
    metrics::counter!(PROJECTION_ERRORS).increment(1);
}

/// A read waited `d` at the read barrier; `failed`: why it was refused.
pub fn read_barrier(d: Duration, failed: Option<&'static str>) {
    metrics::histogram!(BARRIER_WAIT).record(d.as_secs_f64());
    if let Some(cause) = failed {
        metrics::counter!(BARRIER_FAILURES, "cause" => cause).increment(1);
    }
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

pub fn launch(cluster: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!(LAUNCHES, "cluster" => cluster.to_string(), "outcome" => outcome)
        .increment(1);
}

pub fn takeover(d: Duration) {
    metrics::histogram!(TAKEOVER).record(d.as_secs_f64());
    metrics::counter!(TAKEOVERS).increment(1);
}

pub fn late_write() {
    metrics::counter!(LATE_WRITES).increment(1);
}
