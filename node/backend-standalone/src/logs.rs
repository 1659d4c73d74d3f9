//! A driver's log, as its worker and the master tell it: the worker's `/log/` pages, what the
//! head of the driver's `stderr` says (its tag, its application id, its Spark UI port), and
//! the lines `log` serves.

use crate::backend::{Inner, StandaloneBackend};
use crate::submission::TAG_PROPERTY;
use kindling_backend::{is_app_id, Result};

/// How much of a driver's `stderr` head is read for its launch command and application id.
pub(crate) const HEAD_BYTES: u64 = 256 * 1024;
/// How much of the end of each of a driver's `stdout` and `stderr` `log` returns.
const TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// The tag in a driver's launch command (the first line of its `stderr`): `Some(None)` for a
/// driver Kindling did not tag, `None` when the text holds no launch command.
pub fn launch_tag(stderr_head: &str) -> Option<Option<String>> {
    let line = stderr_head
        .lines()
        .find(|l| l.starts_with("Launch Command:"))?;
    let key = format!("\"-D{TAG_PROPERTY}=");
    Some(
        line.split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"').map(|(tag, _)| tag.to_string())),
    )
}

/// The application id and Spark UI port a driver's `stderr` shows.
pub fn app_in(stderr: &str) -> (Option<String>, Option<u16>) {
    let word = |s: &str| {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .find(|w| w.starts_with("app-") && is_app_id(w))
            .map(str::to_string)
    };
    let app = stderr.lines().find_map(|l| {
        l.split_once("with app ID ")
            .and_then(|(_, rest)| word(rest))
    });
    let port = stderr.lines().find_map(|l| {
        let rest = l.split_once("service 'SparkUI' on port ")?.1;
        rest.trim_end_matches('.').trim().parse().ok()
    });
    (app, port)
}

/// Splits a worker `/log/` page into the text and, when the page says so, the number of
/// bytes before it. `None` when the worker has no such log.
pub fn log_page(body: &str) -> Option<(String, u64)> {
    let (head, text) = body.split_once('\n').unwrap_or((body, ""));
    // `==== Bytes <start>-<end> of <total> of <path> ====`
    let start = head
        .strip_prefix("==== Bytes ")
        .and_then(|r| r.split_once('-'))
        .and_then(|(s, _)| s.parse().ok());
    let Some(start) = start else {
        return Some((body.to_string(), 0));
    };
    if text.starts_with("Error: invalid log directory") {
        return None;
    }
    Some((text.to_string(), start))
}

impl Inner {
    /// A driver's log from its worker: the text and how many bytes precede it.
    pub(crate) async fn worker_log(
        &self,
        web_ui: &str,
        driver_id: &str,
        kind: &str,
        range: &str,
    ) -> Result<Option<(String, u64)>, reqwest::Error> {
        let url = format!(
            "{}/log/?driverId={driver_id}&logType={kind}&{range}",
            web_ui.trim_end_matches('/')
        );
        let body = self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(log_page(&body))
    }

    /// The end of a driver's `stdout` and `stderr` (Livy's layout), or where they are.
    async fn driver_log(&self, driver_id: &str, worker: &str) -> Vec<String> {
        let Some(web_ui) = self.worker_ui(worker).await else {
            return vec![format!(
                "the driver's log is on worker {worker}, which the master no longer lists"
            )];
        };
        let mut lines = Vec::new();
        for kind in ["stdout", "stderr"] {
            let range = format!("byteLength={TAIL_BYTES}");
            match self.worker_log(&web_ui, driver_id, kind, &range).await {
                Ok(Some((text, skipped))) => {
                    lines.push(format!("{kind}: "));
                    if skipped > 0 {
                        lines.push(format!(
                            "({skipped} earlier bytes are on worker {worker} at {web_ui})"
                        ));
                    }
                    lines.extend(text.lines().map(str::to_string));
                }
                Ok(None) => lines.push(format!("{kind}: (none on worker {worker})")),
                Err(e) => {
                    lines.push(format!(
                        "the driver's log is on worker {worker} at {web_ui}, which does not answer: {e}"
                    ));
                    break;
                }
            }
        }
        lines
    }
}

impl StandaloneBackend {
    /// The driver's output as the worker and the master tell it.
    pub(crate) async fn lines(&self, driver_name: &str) -> Result<Vec<String>> {
        let inner = &self.inner;
        let Some(driver_id) = inner.driver_id(driver_name).await? else {
            return Ok(vec![]);
        };
        let status = inner
            .status(&driver_id)
            .await
            .map_err(|e| inner.io("cannot reach the standalone master", e))?;
        let state = status.driver_state.as_deref().unwrap_or("UNKNOWN");
        let mut lines = match &status.worker_id {
            Some(worker) => inner.driver_log(&driver_id, worker).await,
            None => vec![format!(
                "driver {driver_id} ({state}) is on no worker, so it has no log"
            )],
        };
        match &status.message {
            Some(m) => {
                lines.push(format!(
                    "kindling: the standalone master reports driver {driver_id} {state}:"
                ));
                lines.extend(m.lines().map(str::to_string));
            }
            None if state == "ERROR" => lines.push(format!(
                "kindling: the standalone master reports driver {driver_id} ERROR: \
                 its worker was lost, or could not start it"
            )),
            None => {}
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tag_from_the_launch_command() {
        let head = "==== preamble\nLaunch Command: \"java\" \"-cp\" \"x\" \
            \"-Dspark.kindling.driver=c1:kindling-1-10\" \"-Dspark.app.name=a\" \
            \"org.apache.spark.deploy.worker.DriverWrapper\"\n=====\nmore";
        assert_eq!(launch_tag(head), Some(Some("c1:kindling-1-10".into())));
        let untagged = "Launch Command: \"java\" \"-Dspark.app.name=a\"\n";
        assert_eq!(launch_tag(untagged), Some(None));
        assert_eq!(launch_tag("26/11/21 INFO nothing yet"), None);
    }

    #[test]
    fn reads_the_app_id_and_ui_port_from_the_driver_log() {
        let log = "26/11/21 11:11:38 INFO Utils: Successfully started service 'SparkUI' on port 4041.\n\
            26/11/21 11:11:39 INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20261121111139-0000\n";
        assert_eq!(
            app_in(log),
            (Some("app-20261121111139-0000".into()), Some(4041))
        );
        assert_eq!(app_in("nothing here"), (None, None));
    }

    #[test]
    fn parses_worker_log_pages() {
        assert_eq!(
            log_page("==== Bytes 0-7 of 7 of /w/driver-1/stdout ====\nsum 45\n"),
            Some(("sum 45\n".into(), 0))
        );
        assert_eq!(
            log_page("==== Bytes 100-107 of 107 of /w/d/stdout ====\nsum 45"),
            Some(("sum 45".into(), 100))
        );
        assert_eq!(
            log_page(
                "==== Bytes 0-0 of 0 of /w/d/stdout ====\nError: invalid log directory /w/d/\n"
            ),
            None
        );
    }
}
