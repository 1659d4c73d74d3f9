//! Copying a running driver's log into its local file ([`super::logs`]) as it streams.

use super::state::{self, DriverPhase};
use super::{logs, pod, Inner, RETRY};
use futures::{AsyncBufReadExt, TryStreamExt};
use kube::api::LogParams;
use std::io::Write;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl super::tracker::State {
    /// Claims the copy of a driver's log: the token that is cancelled when it finishes, or
    /// `None` when a copy runs already. Claimed under the same lock that decides the copy,
    /// so an end seen by another task at once finds the copy to wait for.
    pub(super) fn claim_copy(&mut self, name: &str) -> Option<CancellationToken> {
        if self.copying.contains_key(name) {
            return None;
        }
        let done = CancellationToken::new();
        self.copying.insert(name.to_string(), done.clone());
        Some(done)
    }
}

impl Inner {
    /// Starts copying the driver's log to its local file, unless a copy runs already.
    pub(super) fn copy_log(self: &Arc<Self>, name: &str) {
        let claimed = self.lock().claim_copy(name);
        if let Some(done) = claimed {
            self.spawn_copy(name, done);
        }
    }

    /// Runs a claimed copy; `done` is cancelled when it finishes.
    pub(super) fn spawn_copy(self: &Arc<Self>, name: &str, done: CancellationToken) {
        let inner = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = inner.copy_until_end(&name).await {
                tracing::warn!(cluster = %inner.name(), driver = %name, error = %e, "driver log copy stopped");
            }
            inner.lock().copying.remove(&name);
            done.cancel();
        });
    }

    /// Follows the log until the driver has ended (or the node shuts down), resuming after
    /// disconnects from the last line kept.
    async fn copy_until_end(&self, name: &str) -> std::io::Result<()> {
        let path = self.logs.log_path(name)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut resume = self.logs.resume(name);
        loop {
            let follow = self.copy_once(name, &mut resume, &mut file, true).await;
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            // The stream ends when the container does, on a disconnect, or on a read timeout.
            let pod = match self.pods.get_opt(name).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(driver = %name, error = %e, "cannot read the driver pod");
                    self.pause().await;
                    continue;
                }
            };
            let ended = match &pod {
                None => true,
                Some(p) => matches!(state::driver_phase(p), DriverPhase::Ended(_)),
            };
            if ended {
                // What a disconnect may have cut off at the very end.
                if pod.is_some() {
                    let _ = self.copy_once(name, &mut resume, &mut file, false).await;
                }
                return Ok(());
            }
            match follow {
                Err(e) => {
                    tracing::debug!(driver = %name, error = %e, "driver log stream broke");
                    self.pause().await;
                }
                // A stream that keeps ending at once must not be asked for in a tight loop.
                Ok(0) => self.pause().await,
                Ok(_) => {}
            }
        }
    }

    pub(super) async fn pause(&self) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(RETRY) => {}
        }
    }

    /// One request for the log from the resume point on; appends the new lines and says how
    /// many there were.
    async fn copy_once(
        &self,
        name: &str,
        resume: &mut logs::Resume,
        file: &mut std::fs::File,
        follow: bool,
    ) -> std::result::Result<usize, String> {
        let lp = LogParams {
            container: Some(pod::DRIVER_CONTAINER.into()),
            follow,
            timestamps: true,
            since_time: resume.since_second(),
            ..LogParams::default()
        };
        let stream = self
            .pods
            .log_stream(name, &lp)
            .await
            .map_err(|e| e.to_string())?;
        let mut lines = std::pin::pin!(stream.lines());
        let mut filter = resume.filter();
        let mut kept = 0;
        loop {
            let next = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(kept),
                next = lines.try_next() => next,
            };
            match next {
                Ok(Some(line)) => {
                    if filter.is_new(&line) {
                        writeln!(file, "{line}").map_err(|e| e.to_string())?;
                        resume.kept(&line);
                        kept += 1;
                    }
                }
                Ok(None) => return Ok(kept),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}
