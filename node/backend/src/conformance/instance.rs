//! One backend instance under test and what it reported: what a node holds of a cluster
//! between two restarts. Dropping it stops the backend, as a node going down does. Every wait
//! is on the instance's events or on the backend's answers, with the harness's deadline.

use super::Harness;
use crate::{BackendEvent, ClusterBackend, LogSlice, LogWindow};
use kindling_events::JobId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many lines the suite's log reads ask for: a conformance driver's whole log, whatever
/// the cluster adds around its output, and still a tail.
pub const TAIL: usize = 1000;

/// Pause between two looks at a driver's log while waiting for a line.
const LOG_POLL: Duration = Duration::from_millis(250);

/// An exit a backend reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

pub struct Instance {
    pub backend: Arc<dyn ClusterBackend>,
    events: mpsc::UnboundedReceiver<BackendEvent>,
    seen: Vec<BackendEvent>,
    stop: CancellationToken,
    deadline: Duration,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Instance {
    /// A new backend instance of the harness's cluster.
    pub async fn start<H: Harness>(h: &H) -> Instance {
        let (tx, events) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        Instance {
            backend: h.backend(tx, stop.clone()).await,
            events,
            seen: vec![],
            stop,
            deadline: h.deadline(),
        }
    }

    /// Waits for the first event `pick` recognises, among those reported so far and to come.
    async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&BackendEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + self.deadline;
        loop {
            if let Some(found) = self.seen.iter().find_map(&pick) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.seen.push(ev),
                _ => panic!(
                    "no {what} within {:?}; reported: {:?}",
                    self.deadline, self.seen
                ),
            }
        }
    }

    /// The exit reported for `job`'s driver.
    pub async fn exit_of(&mut self, job: JobId) -> Exit {
        self.wait_for(&format!("exit of job {}", job.0), |ev| match ev {
            BackendEvent::Exited {
                job: j,
                exit_code,
                reason,
                ..
            } if *j == job => Some(Exit {
                exit_code: *exit_code,
                reason: reason.clone(),
            }),
            _ => None,
        })
        .await
    }

    /// Takes in every event reported within `settle` from now. A report that is sent twice
    /// is sent from the same watch or poll as the first, well within `settle`.
    pub async fn listen(&mut self, settle: Duration) {
        let until = Instant::now() + settle;
        while let Ok(Some(ev)) = tokio::time::timeout_at(until, self.events.recv()).await {
            self.seen.push(ev);
        }
    }

    /// The events taken in so far about `job`.
    pub fn reported(&self, job: JobId) -> Vec<BackendEvent> {
        self.seen
            .iter()
            .filter(|ev| match ev {
                BackendEvent::AppIdentified { job: j, .. }
                | BackendEvent::Exited { job: j, .. } => *j == job,
            })
            .cloned()
            .collect()
    }

    /// The last `TAIL` lines of the driver's log.
    pub async fn tail(&self, driver_name: &str) -> LogSlice {
        self.backend
            .log(driver_name, LogWindow::Tail(TAIL))
            .await
            .unwrap_or_else(|e| panic!("the log of {driver_name} cannot be read: {e}"))
    }

    /// Waits until `line` is a line of the driver's log; returns the log's tail then.
    pub async fn log_with_line(&self, driver_name: &str, line: &str) -> LogSlice {
        let deadline = Instant::now() + self.deadline;
        loop {
            let tail = self.tail(driver_name).await;
            if tail.lines.iter().any(|l| l == line) {
                return tail;
            }
            assert!(
                Instant::now() < deadline,
                "{line:?} not in the log of {driver_name} within {:?}:\n{}",
                self.deadline,
                tail.lines.join("\n")
            );
            tokio::time::sleep(LOG_POLL).await;
        }
    }
}
