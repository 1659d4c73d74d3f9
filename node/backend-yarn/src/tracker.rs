//! Following the drivers the scheduler waits on: every poll interval, each watched
//! application's report (`GET /ws/v1/cluster/apps/{appid}`) is read and mapped ([`super::state`]);
//! the application id is reported once it runs (with its tracking URL as the Spark UI), its end
//! once it ended and its log is kept. Reports go out only from here, so each is sent once.

use super::rm::App;
use super::state::{self, AppEnd, AppPhase};
use super::Inner;
use futures::StreamExt;
use kindling_backend::BackendEvent;
use kindling_events::{Attempt, JobId};
use std::sync::Arc;
use std::time::Duration;

/// Consecutive polls on which the ResourceManager does not know a watched application before
/// it counts as ended.
const MISSING_POLLS: u32 = 3;
/// How long a kill the ResourceManager accepted (202) is followed before giving up on seeing
/// the application end; its end is reported whenever it comes all the same.
const KILL_WAIT: Duration = Duration::from_secs(60);

/// A driver the scheduler wants to hear about.
pub(super) struct Watched {
    job: JobId,
    attempt: Attempt,
    pub(super) app_id: String,
    app_reported: bool,
    missing: u32,
    /// Its end is being reported.
    ending: bool,
}

/// An end to report.
struct Ending {
    job: JobId,
    attempt: Attempt,
    name: String,
    app_id: String,
    /// The final report (`None`: the ResourceManager forgot the application).
    app: Option<App>,
    end: AppEnd,
    app_reported: bool,
}

pub(super) async fn run(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => return,
            _ = tokio::time::sleep(inner.cfg.poll_interval) => {}
            _ = inner.wake.notified() => {}
        }
        inner.poll_once().await;
    }
}

impl Inner {
    /// Watches the driver's application from now on (again, after a restart).
    pub(super) fn watch(&self, job: JobId, attempt: Attempt, name: &str, app_id: &str) {
        let mut watched = self.lock();
        if watched.get(name).is_some_and(|w| w.app_id == app_id) {
            return;
        }
        watched.insert(
            name.to_string(),
            Watched {
                job,
                attempt,
                app_id: app_id.to_string(),
                app_reported: false,
                missing: 0,
                ending: false,
            },
        );
        drop(watched);
        self.wake.notify_one();
    }

    async fn poll_once(self: &Arc<Self>) {
        let todo: Vec<(String, String)> = self
            .lock()
            .iter()
            .filter(|(_, w)| !w.ending)
            .map(|(n, w)| (n.clone(), w.app_id.clone()))
            .collect();
        let answers: Vec<_> = futures::stream::iter(todo)
            .map(|(name, app_id)| async move {
                let r = self.rm.app(&app_id).await;
                (name, app_id, r)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (name, app_id, answer) in answers {
            match answer {
                Ok(Some(app)) => self.observe(&name, app),
                Ok(None) => self.missing(&name, &app_id),
                Err(e) => {
                    tracing::debug!(cluster = %self.name(), driver = %name, error = %e,
                        "cannot read the application's report")
                }
            }
        }
    }

    /// Takes in a report of a watched driver's application.
    fn observe(self: &Arc<Self>, name: &str, app: App) {
        let phase = state::phase_of(&app);
        let mut watched = self.lock();
        let Some(w) = watched.get_mut(name).filter(|w| w.app_id == app.id) else {
            return;
        };
        w.missing = 0;
        if w.ending {
            return;
        }
        match phase {
            AppPhase::Pending => {}
            AppPhase::Running => {
                if !w.app_reported {
                    w.app_reported = true;
                    let ev = BackendEvent::AppIdentified {
                        job: w.job,
                        attempt: w.attempt,
                        app_id: app.id.clone(),
                        spark_ui_url: app.tracking_url.clone(),
                    };
                    drop(watched);
                    tracing::info!(cluster = %self.name(), driver = %name, app_id = %app.id, "driver running");
                    let _ = self.events.send(ev);
                }
            }
            AppPhase::Ended(end) => {
                w.ending = true;
                let ending = Ending {
                    job: w.job,
                    attempt: w.attempt,
                    name: name.to_string(),
                    app_id: app.id.clone(),
                    app: Some(app),
                    end,
                    app_reported: w.app_reported,
                };
                drop(watched);
                tokio::spawn(self.clone().report_end(ending));
            }
        }
    }

    /// The ResourceManager does not know a watched application (any more).
    fn missing(self: &Arc<Self>, name: &str, app_id: &str) {
        let mut watched = self.lock();
        let Some(w) = watched.get_mut(name).filter(|w| w.app_id == app_id) else {
            return;
        };
        if w.ending {
            return;
        }
        w.missing += 1;
        if w.missing < MISSING_POLLS {
            return;
        }
        w.ending = true;
        let ending = Ending {
            job: w.job,
            attempt: w.attempt,
            name: name.to_string(),
            app_id: app_id.to_string(),
            app: None,
            end: AppEnd::forgotten(app_id),
            app_reported: w.app_reported,
        };
        drop(watched);
        tokio::spawn(self.clone().report_end(ending));
    }

    /// Reports an end: the application id if it never was (a driver that failed before
    /// running still has one), then, once its log is kept, the exit.
    async fn report_end(self: Arc<Self>, e: Ending) {
        let Ending {
            job,
            attempt,
            name,
            app_id,
            app,
            end,
            app_reported,
        } = e;
        if let (false, Some(app)) = (app_reported, &app) {
            let _ = self.events.send(BackendEvent::AppIdentified {
                job,
                attempt,
                app_id: app.id.clone(),
                spark_ui_url: app.tracking_url.clone(),
            });
        }
        if let Some(app) = app {
            self.keep_log(&name, app).await;
        }
        self.record_end(&name, &app_id, &end);
        tracing::info!(cluster = %self.name(), driver = %name, %app_id,
            exit_code = ?end.exit_code, reason = %end.reason, "driver ended");
        // No longer watched before the end is out: a `find` after it asks the cluster, which
        // says it ended, instead of answering "running" from here.
        {
            let mut watched = self.lock();
            if watched.get(&name).is_some_and(|w| w.app_id == app_id) {
                watched.remove(&name);
            }
        }
        let _ = self.events.send(BackendEvent::Exited {
            job,
            attempt,
            exit_code: end.exit_code,
            reason: Some(end.reason.clone()).filter(|r| !r.is_empty()),
        });
    }

    pub(super) fn record_end(&self, name: &str, app_id: &str, end: &AppEnd) {
        self.logs.write_end(
            name,
            &format!(
                "kindling: YARN application {app_id} ended: {}",
                end.describe()
            ),
        );
    }

    /// For a driver `find` found ended: keeps its end and log here too, unless kept already.
    pub(super) fn keep_end_later(self: &Arc<Self>, name: &str, app: App, end: AppEnd) {
        if self.logs.read_end(name).is_some() {
            return;
        }
        let inner = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            inner.keep_log(&name, app.clone()).await;
            inner.record_end(&name, &app.id, &end);
        });
    }

    /// Follows a kill the ResourceManager accepted until the application's state is final,
    /// then has the tracker look at once.
    pub(super) fn confirm_kill(self: &Arc<Self>, app_id: &str) {
        let inner = self.clone();
        let app_id = app_id.to_string();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + KILL_WAIT;
            loop {
                match inner.rm.app_state(&app_id).await {
                    Ok(Some(s)) if state::is_final(&s) => break,
                    Ok(None) => break,
                    Ok(Some(_)) => {}
                    Err(e) => tracing::debug!(cluster = %inner.name(), %app_id, error = %e,
                        "cannot read the state of an application being killed"),
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(cluster = %inner.name(), %app_id,
                        "the ResourceManager accepted the kill but the application has not ended");
                    return;
                }
                tokio::select! {
                    _ = inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(inner.cfg.poll_interval) => {}
                }
            }
            inner.wake.notify_one();
        });
    }
}
