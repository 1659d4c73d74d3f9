//! The node's sampled gauges: what no single event moves, read once a second. How far the
//! projections trail the log (in events, and for how long), the log's end, the data
//! directory's free disk, and the age of the stalest driver heartbeat.

use kindling_core::Core;
use kindling_events::LogPosition;
use kindling_gateway::Gateway;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(1);

/// Describes the sampled gauges to the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(
        "kindling_eventlog_end_position",
        "The event log's end (next position) as this node knows it."
    );
    metrics::describe_gauge!(
        "kindling_projection_position",
        "The next log position this node's projections will apply."
    );
    metrics::describe_gauge!(
        "kindling_projection_lag_events",
        "Events in the log this node's projections have not applied yet."
    );
    metrics::describe_gauge!(
        "kindling_projection_lag_seconds",
        "How long the log has held events this node's projections have not applied (0: \
         caught up within the last second)."
    );
    metrics::describe_gauge!(
        "kindling_data_disk_free_bytes",
        "Bytes free to the node on the filesystem of its data directory."
    );
    metrics::describe_gauge!(
        "kindling_data_disk_size_bytes",
        "Size of the filesystem of the node's data directory."
    );
}

/// Samples the gauges every second until `shutdown`.
pub async fn run(
    core: Arc<Core>,
    gateway: Arc<Gateway>,
    data_dir: PathBuf,
    shutdown: CancellationToken,
) {
    let mut lag = Lag::default();
    loop {
        let end = core.reads().log_end();
        let projected = *core.projected().borrow();
        metrics::gauge!("kindling_eventlog_end_position").set(end.0 as f64);
        metrics::gauge!("kindling_projection_position").set(projected.0 as f64);
        metrics::gauge!("kindling_projection_lag_events")
            .set(end.0.saturating_sub(projected.0) as f64);
        let behind = lag.observe(projected, end, Instant::now());
        metrics::gauge!("kindling_projection_lag_seconds").set(behind.as_secs_f64());
        if let Some((free, size)) = disk(&data_dir) {
            metrics::gauge!("kindling_data_disk_free_bytes").set(free as f64);
            metrics::gauge!("kindling_data_disk_size_bytes").set(size as f64);
        }
        gateway.report_heartbeats();
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// How long the projections have trailed the log: the age of the oldest log end seen at a
/// sample that the projections have not reached yet. Under a steady load each end is
/// reached by the next sample, so the lag stays 0; a projection store that stopped makes it
/// grow by the second.
#[derive(Default)]
struct Lag {
    waiting_for: Option<(LogPosition, Instant)>,
}

impl Lag {
    fn observe(&mut self, projected: LogPosition, end: LogPosition, now: Instant) -> Duration {
        if let Some((target, since)) = self.waiting_for {
            if projected < target {
                return now.saturating_duration_since(since);
            }
            self.waiting_for = None;
        }
        if projected < end {
            self.waiting_for = Some((end, now));
        }
        Duration::ZERO
    }
}

/// (free, size) in bytes of the filesystem holding `dir`.
fn disk(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a statvfs the call fills in.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let block = st.f_frsize as u64;
    Some((st.f_bavail as u64 * block, st.f_blocks as u64 * block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_first_sample_the_projections_have_not_caught_up_with() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut lag = Lag::default();
        assert_eq!(
            lag.observe(LogPosition(10), LogPosition(10), at(0)),
            Duration::ZERO
        );
        // Behind at a sample, past that end by the next: a steady load shows no lag.
        assert_eq!(
            lag.observe(LogPosition(10), LogPosition(12), at(1)),
            Duration::ZERO
        );
        assert_eq!(
            lag.observe(LogPosition(12), LogPosition(14), at(2)),
            Duration::ZERO
        );
        assert_eq!(
            lag.observe(LogPosition(14), LogPosition(14), at(3)),
            Duration::ZERO
        );
        // The projections stop at 14 while the log grows: the lag counts from sample 4,
        // when the log ended at 16.
        assert_eq!(
            lag.observe(LogPosition(14), LogPosition(16), at(4)),
            Duration::ZERO
        );
        assert_eq!(
            lag.observe(LogPosition(14), LogPosition(18), at(5)),
            Duration::from_secs(1)
        );
        assert_eq!(
            lag.observe(LogPosition(15), LogPosition(20), at(8)),
            Duration::from_secs(4)
        );
        // Caught up again.
        assert_eq!(
            lag.observe(LogPosition(20), LogPosition(20), at(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn the_data_directory_has_a_size_and_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let (free, size) = disk(dir.path()).unwrap();
        assert!(size > 0 && free <= size, "{free} of {size}");
        assert_eq!(disk(&dir.path().join("absent")), None);
    }
}
