//! Learning a local driver's application id from its directory: the event log Spark names
//! after it, or an id the driver printed.

use kindling_backend::{is_app_id, BackendEvent};
use kindling_events::{Attempt, JobId};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Reports the application id: the name of the event log Spark writes, or an id printed in
/// the driver's output (cluster managers print theirs).
pub(crate) async fn find_app_id(
    job: JobId,
    attempt: Attempt,
    dir: PathBuf,
    events: mpsc::UnboundedSender<BackendEvent>,
    done: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Some(app_id) = app_id_in(&dir) {
            let _ = events.send(BackendEvent::AppIdentified {
                job,
                attempt,
                app_id,
                spark_ui_url: None,
            });
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = done.cancelled() => {
                // One last look: a short job may end before the first poll.
                if let Some(app_id) = app_id_in(&dir) {
                    let _ = events.send(BackendEvent::AppIdentified { job, attempt, app_id, spark_ui_url: None });
                }
                return;
            }
        }
    }
}

fn app_id_in(dir: &Path) -> Option<String> {
    if let Ok(entries) = std::fs::read_dir(dir.join("eventlog")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            // `local-1732…` (single file) or `eventlog_v2_local-1732…` (rolling, Spark 4).
            let id = name.trim_end_matches(".inprogress");
            let id = id.strip_prefix("eventlog_v2_").unwrap_or(id);
            if is_app_id(id) {
                return Some(id.to_string());
            }
        }
    }
    let log = std::fs::read_to_string(dir.join("driver.log")).ok()?;
    log.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| is_app_id(w))
        .map(str::to_string)
}
