//! The drivers this node watches and the poller that follows them: it reports each one's
//! application id once its `stderr` shows it, follows a relaunched driver to its new id, and
//! reports its end.

use crate::backend::Inner;
use crate::locate::Located;
use crate::logs::{app_in, HEAD_BYTES};
use crate::master::{RestResponse, WorkerInfo};
use crate::phase::{driver_phase, DriverPhase};
use crate::submission::tag;
use kindling_backend::BackendEvent;
use kindling_events::{Attempt, JobId};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Consecutive polls on which the master does not know a watched driver before it counts as
/// ended: it forgot the driver (restart without recovery, or `spark.deploy.retainedDrivers`).
const MISSING_POLLS: u32 = 3;

pub(crate) struct Watch {
    pub(crate) job: JobId,
    pub(crate) attempt: Attempt,
    pub(crate) driver_id: String,
    pub(crate) app_reported: bool,
    pub(crate) missing: u32,
}

pub(crate) async fn poll(inner: Arc<Inner>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(inner.cfg.poll_interval) => {}
        }
        inner.poll_once().await;
    }
}

impl Inner {
    pub(crate) fn watch(&self, job: JobId, attempt: Attempt, name: &str, driver_id: &str) {
        self.tags
            .lock()
            .insert(driver_id.to_string(), Some(tag(&self.cfg, name)));
        let mut watched = self.watched.lock();
        if watched.get(name).is_some_and(|w| w.driver_id == driver_id) {
            return;
        }
        watched.insert(
            name.to_string(),
            Watch {
                job,
                attempt,
                driver_id: driver_id.to_string(),
                app_reported: false,
                missing: 0,
            },
        );
    }

    /// One look at every watched driver: their states from the master's `/json/`, or from
    /// the REST status of a driver the list no longer holds.
    pub(crate) async fn poll_once(&self) {
        let watched: Vec<(String, String, bool)> = self
            .watched
            .lock()
            .iter()
            .map(|(n, w)| (n.clone(), w.driver_id.clone(), w.app_reported))
            .collect();
        if watched.is_empty() {
            return;
        }
        let master = match self.master_state().await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "cannot reach the standalone master");
                return;
            }
        };
        for (name, driver_id, app_reported) in watched {
            let listed = master
                .activedrivers
                .iter()
                .chain(&master.completeddrivers)
                .find(|d| d.id == driver_id);
            let (state, worker) = match listed {
                Some(d) => (d.state.clone(), d.worker.clone()),
                None => match self.status(&driver_id).await {
                    Ok(RestResponse {
                        driver_state: Some(state),
                        worker_id,
                        ..
                    }) => (state, worker_id),
                    Ok(_) => {
                        self.on_missing(&name, &driver_id);
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(driver = %name, error = %e, "cannot reach the standalone master");
                        continue;
                    }
                },
            };
            if let Some(w) = self.watched.lock().get_mut(&name) {
                w.missing = 0;
            }
            let phase = driver_phase(&state);
            let worker = worker.and_then(|id| master.workers.iter().find(|w| w.id == id));
            if let (false, DriverPhase::Running | DriverPhase::Ended { .. }, Some(worker)) =
                (app_reported, phase, worker)
            {
                self.learn_app(&name, &driver_id, worker).await;
            }
            match phase {
                DriverPhase::Ended { exit_code } => {
                    tracing::info!(driver = %name, %driver_id, %state, "driver ended");
                    self.end(&name, &driver_id, exit_code);
                }
                DriverPhase::Replaced => self.follow(&name, &driver_id).await,
                DriverPhase::Pending | DriverPhase::Running => {}
            }
        }
    }

    /// Watches the id a relaunched driver runs under now, once the cluster shows it.
    async fn follow(&self, name: &str, old_id: &str) {
        let Ok((Located::Found { driver_id, state }, _)) = self.locate(&tag(&self.cfg, name)).await
        else {
            return;
        };
        if driver_id == old_id || !driver_phase(&state).live() {
            return;
        }
        let mut watched = self.watched.lock();
        if let Some(w) = watched.get_mut(name).filter(|w| w.driver_id == old_id) {
            tracing::info!(driver = %name, %old_id, new_id = %driver_id, "the master relaunched the driver");
            w.driver_id = driver_id;
            w.app_reported = false;
            w.missing = 0;
        }
    }

    fn on_missing(&self, name: &str, driver_id: &str) {
        let gone = {
            let mut watched = self.watched.lock();
            match watched.get_mut(name) {
                Some(w) if w.driver_id == driver_id => {
                    w.missing += 1;
                    w.missing >= MISSING_POLLS
                }
                _ => false,
            }
        };
        if gone {
            tracing::warn!(driver = %name, %driver_id, "the standalone master no longer knows the driver");
            self.end(name, driver_id, None);
        }
    }

    fn end(&self, name: &str, driver_id: &str, exit_code: Option<i32>) {
        let w = {
            let mut watched = self.watched.lock();
            match watched.get(name) {
                Some(w) if w.driver_id == driver_id => watched.remove(name),
                _ => None,
            }
        };
        if let Some(w) = w {
            let _ = self.events.send(BackendEvent::Exited {
                job: w.job,
                attempt: w.attempt,
                exit_code,
                reason: None,
            });
        }
    }

    /// Reports the application id once the driver's `stderr` shows it.
    async fn learn_app(&self, name: &str, driver_id: &str, worker: &WorkerInfo) {
        let range = format!("offset=0&byteLength={HEAD_BYTES}");
        let head = self
            .worker_log(&worker.webuiaddress, driver_id, "stderr", &range)
            .await;
        let Ok(Some((text, _))) = head else {
            return;
        };
        let (Some(app_id), ui_port) = app_in(&text) else {
            return;
        };
        // The driver runs on the worker's host.
        let spark_ui_url = ui_port.map(|port| format!("http://{}:{port}", worker.host));
        let w = {
            let mut watched = self.watched.lock();
            match watched.get_mut(name) {
                Some(w) if w.driver_id == driver_id && !w.app_reported => {
                    w.app_reported = true;
                    Some((w.job, w.attempt))
                }
                _ => None,
            }
        };
        if let Some((job, attempt)) = w {
            let _ = self.events.send(BackendEvent::AppIdentified {
                job,
                attempt,
                app_id,
                spark_ui_url,
            });
        }
    }
}
