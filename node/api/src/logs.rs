//! A job's driver log as the API serves it: read from its cluster's backend in the window a
//! request names (never whole), and Livy's view of it, `stdout: `, the lines, then
//! `\nstderr: ` (the backends merge stderr into stdout, as Livy's batches do). Only requests
//! about one job read a log; listings never do.

use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::AppState;
use kindling_backend::{LogSlice, LogWindow, MAX_LOG_LINES};
use kindling_core::Error;
use kindling_events::Job;
use std::time::Duration;

/// Longest a log read waits for a cluster's backend.
const LOG_TIMEOUT: Duration = Duration::from_secs(15);

/// Lines of the driver's output shown inside a batch or session object.
pub const LOG_TAIL: usize = 10;

/// The lines Livy's `from` and `size` name: `size` lines (default 100; negative: all, up to
/// [`MAX_LOG_LINES`]) from `from`, or the last `size` when `from` is missing or negative.
pub fn livy_window(params: &Params) -> ApiResult<LogWindow> {
    let size = match params.int("size")? {
        None => 100,
        Some(s) if s < 0 => MAX_LOG_LINES,
        Some(s) => usize::try_from(s).unwrap_or(MAX_LOG_LINES),
    };
    Ok(match params.int("from")? {
        Some(f) if f >= 0 => LogWindow::Range {
            from: usize::try_from(f).unwrap_or(usize::MAX),
            size,
        },
        _ => LogWindow::Tail(size),
    })
}

/// The window of the driver's own output that covers `window` of Livy's view, which has one
/// line more at each end.
fn inner_window(window: LogWindow) -> LogWindow {
    match window {
        LogWindow::Tail(n) => LogWindow::Tail(n),
        LogWindow::Range { from, size } => LogWindow::Range {
            from: from.saturating_sub(1),
            size: size.saturating_add(1),
        },
    }
}

/// `window` of Livy's view of a log, given the driver's output read with
/// [`inner_window`]`(window)`.
fn livy_view(window: LogWindow, inner: LogSlice) -> LogSlice {
    let total = inner.total + 2;
    let (start, end) = window.bounds(total);
    let lines = (start..end)
        .filter_map(|i| match i {
            0 => Some("stdout: ".to_string()),
            i if i == total - 1 => Some("\nstderr: ".to_string()),
            i => inner.lines.get(i - 1 - inner.from).cloned(),
        })
        .collect();
    LogSlice {
        from: start,
        total,
        lines,
    }
}

impl AppState {
    /// `window` of the driver's output as Livy shows it.
    pub async fn livy_log(&self, job: &Job, window: LogWindow) -> ApiResult<LogSlice> {
        let inner = self.driver_log(job, inner_window(window)).await?;
        Ok(livy_view(window, inner))
    }

    /// `window` of the driver's output, from its cluster's backend.
    pub async fn driver_log(&self, job: &Job, window: LogWindow) -> ApiResult<LogSlice> {
        let Some(name) = &job.driver_name else {
            return Ok(LogSlice::default());
        };
        let cluster_name = job.spec.cluster();
        let Some(cluster) = self.clusters.catalog.get(cluster_name).await? else {
            let gone = format!(
                "kindling: the driver ran on cluster '{cluster_name}', which no longer exists"
            );
            return Ok(LogSlice {
                from: 0,
                total: 1,
                lines: vec![gone],
            });
        };
        let unavailable = |e: String| {
            ApiError::from(Error::Unavailable(format!(
                "cannot read the driver's log from cluster '{cluster_name}': {e}"
            )))
        };
        let backend = self
            .clusters
            .backends
            .get(&cluster)
            .await
            .map_err(unavailable)?;
        match tokio::time::timeout(LOG_TIMEOUT, backend.log(name, window)).await {
            Ok(r) => r.map_err(|e| unavailable(e.to_string())),
            Err(_) => Err(unavailable(format!(
                "no answer within {} s",
                LOG_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Livy's view of a driver output of `n` lines, `0`..`n`, read as the API reads it.
    fn view(n: usize, window: LogWindow) -> LogSlice {
        let lines: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let inner = kindling_backend::DriverLog::new()
            .lines(lines)
            .read(inner_window(window))
            .unwrap();
        livy_view(window, inner)
    }

    fn params(q: &str) -> Params {
        Params::from_query(Some(q)).unwrap()
    }

    #[test]
    fn windows_follow_livys_from_and_size() {
        assert_eq!(livy_window(&params("")).unwrap(), LogWindow::Tail(100));
        assert_eq!(
            livy_window(&params("from=0&size=10")).unwrap(),
            LogWindow::Range { from: 0, size: 10 }
        );
        assert_eq!(
            livy_window(&params("from=-1&size=-1")).unwrap(),
            LogWindow::Tail(MAX_LOG_LINES)
        );
        assert!(livy_window(&params("size=ten")).is_err());
    }

    #[test]
    fn livys_view_has_a_line_more_at_each_end() {
        let all = view(3, LogWindow::Range { from: 0, size: 100 });
        assert_eq!(all.total, 5);
        assert_eq!(all.lines, ["stdout: ", "0", "1", "2", "\nstderr: "]);
        let tail = view(250, LogWindow::Tail(100));
        assert_eq!((tail.from, tail.total, tail.lines.len()), (152, 252, 100));
        assert_eq!(tail.lines[0], "151");
        assert_eq!(tail.lines[99], "\nstderr: ");
        let page = view(
            250,
            LogWindow::Range {
                from: 240,
                size: 100,
            },
        );
        assert_eq!((page.from, page.lines.len()), (240, 12));
        assert_eq!(page.lines[0], "239");
        let head = view(250, LogWindow::Range { from: 0, size: 2 });
        assert_eq!(head.lines, ["stdout: ", "0"]);
        let past = view(5, LogWindow::Range { from: 99, size: 10 });
        assert_eq!((past.from, past.lines.len()), (7, 0));
        let empty = view(0, LogWindow::Tail(LOG_TAIL));
        assert_eq!(empty.lines, ["stdout: ", "\nstderr: "]);
    }
}
