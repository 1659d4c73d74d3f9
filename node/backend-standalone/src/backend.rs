//! The backend itself: the state shared with the poller, and the `ClusterBackend` operations
//! (launch through the REST server, find, kill, log).

use crate::locate::Located;
use crate::master::RestResponse;
use crate::phase::{driver_phase, DriverPhase};
use crate::submission::{submission, tag};
use crate::watch::{poll, Watch};
use crate::StandaloneConfig;
use async_trait::async_trait;
use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, DriverLog, Found, LaunchSpec, LogSlice, LogWindow,
    Result,
};
use kindling_events::{Attempt, JobId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) struct Inner {
    pub(crate) cfg: StandaloneConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) events: mpsc::UnboundedSender<BackendEvent>,
    /// The drivers this node watches, by driver name.
    pub(crate) watched: Mutex<HashMap<String, Watch>>,
    /// The tag each driver id was launched with (`None`: not a Kindling driver). Immutable,
    /// so read from the worker once.
    pub(crate) tags: Mutex<HashMap<String, Option<String>>>,
}

pub struct StandaloneBackend {
    pub(crate) inner: Arc<Inner>,
}

impl StandaloneBackend {
    /// Starts the poller, which reports watched drivers' exits until `shutdown`.
    pub fn new(
        cfg: StandaloneConfig,
        events: mpsc::UnboundedSender<BackendEvent>,
        shutdown: CancellationToken,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            cfg,
            http,
            events,
            watched: Mutex::default(),
            tags: Mutex::default(),
        });
        tokio::spawn(poll(inner.clone(), shutdown));
        StandaloneBackend { inner }
    }
}

impl Inner {
    pub(crate) fn io(&self, what: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Io(format!("{what}: {e}"))
    }
}

#[async_trait]
impl ClusterBackend for StandaloneBackend {
    async fn launch(&self, l: LaunchSpec) -> Result<String> {
        let inner = &self.inner;
        let tag = tag(&inner.cfg, &l.driver_name);
        let (located, state) = inner.locate(&tag).await.map_err(|e| {
            BackendError::LaunchFailed(format!(
                "the standalone master at {} does not answer: {e}",
                inner.cfg.web_ui_url
            ))
        })?;
        match located {
            Located::Found { driver_id, .. } => {
                // Re-issued launch: the driver exists already.
                inner.watch(l.job, l.attempt, &l.driver_name, &driver_id);
                return Ok(driver_id);
            }
            Located::Unsure(which) => {
                // A first launch is the usual reason to get here; queued drivers of other
                // jobs must not block it.
                tracing::debug!(driver = %l.driver_name, %which, "some drivers could not be identified");
            }
            Located::Absent => {}
        }
        let body = submission(&inner.cfg, &l, &state.url);
        let url = format!(
            "{}/v1/submissions/create",
            inner.cfg.rest_url.trim_end_matches('/')
        );
        let sent = inner.http.post(&url).json(&body).send().await;
        let reply: RestResponse = match sent {
            Ok(r) => r.json().await.map_err(|e| {
                inner.io(
                    "the standalone master's answer to a submission is unreadable",
                    e,
                )
            })?,
            Err(e) if e.is_connect() => {
                return Err(BackendError::LaunchFailed(format!(
                    "the standalone master at {url} does not answer: {e}"
                )))
            }
            // The request may have reached the master: only a later `find` can tell.
            Err(e) => return Err(inner.io("submission to the standalone master", e)),
        };
        match (reply.success, reply.submission_id) {
            (Some(true), Some(driver_id)) => {
                tracing::info!(driver = %l.driver_name, %driver_id, "driver submitted");
                inner.watch(l.job, l.attempt, &l.driver_name, &driver_id);
                Ok(driver_id)
            }
            _ => {
                let message = reply.message.unwrap_or_default();
                let first = message.lines().next().unwrap_or("no reason given");
                Err(BackendError::LaunchFailed(format!(
                    "the standalone master refused the driver: {first}"
                )))
            }
        }
    }

    async fn find(&self, job: JobId, attempt: Attempt, driver_name: &str) -> Result<Found> {
        let inner = &self.inner;
        if let Some(w) = inner.watched.lock().get(driver_name) {
            return Ok(Found::Running {
                driver_id: w.driver_id.clone(),
            });
        }
        let (located, _) = inner
            .locate(&tag(&inner.cfg, driver_name))
            .await
            .map_err(|e| inner.io("cannot list the standalone master's drivers", e))?;
        match located {
            Located::Found { driver_id, state } => match driver_phase(&state) {
                DriverPhase::Ended { exit_code } => Ok(Found::Ended { exit_code }),
                // A replaced id is followed to the one the driver runs under now.
                _ => {
                    inner.watch(job, attempt, driver_name, &driver_id);
                    Ok(Found::Running { driver_id })
                }
            },
            Located::Absent => Ok(Found::Never),
            Located::Unsure(which) => Err(BackendError::Io(format!(
                "cannot tell yet whether {driver_name} was launched: drivers {which} are queued \
                 or on workers that do not answer"
            ))),
        }
    }

    async fn kill(&self, driver_name: &str) -> Result<()> {
        let inner = &self.inner;
        let Some(driver_id) = inner.driver_id(driver_name).await? else {
            return Ok(());
        };
        let url = format!(
            "{}/v1/submissions/kill/{driver_id}",
            inner.cfg.rest_url.trim_end_matches('/')
        );
        let reply: RestResponse = inner
            .http
            .post(&url)
            .send()
            .await
            .map_err(|e| inner.io("kill request to the standalone master", e))?
            .json()
            .await
            .map_err(|e| inner.io("the standalone master's answer to a kill", e))?;
        if reply.success != Some(true) {
            // Typically: the driver has already ended. Its end is reported as usual.
            tracing::info!(driver = %driver_name, %driver_id, message = ?reply.message, "kill not applied");
        }
        Ok(())
    }

    async fn log(&self, driver_name: &str, window: LogWindow) -> Result<LogSlice> {
        // The worker serves the ends of the driver's files (HEAD_BYTES, TAIL_BYTES), so what
        // is held here is bounded whatever the driver wrote.
        let lines = self.lines(driver_name).await?;
        DriverLog::new()
            .lines(lines)
            .read(window)
            .map_err(|e| BackendError::Io(e.to_string()))
    }
}
