//! Reading a driver's log through its log link, and keeping it ([`super::logs`]) once the
//! driver ended: the log server's aggregated copy when one is configured and YARN has
//! aggregated the logs, else the NodeManager's page (which serves the container's files until
//! they are aggregated, then redirects to the log server).

use super::logs::{self, LOG_FILES};
use super::rm::App;
use super::state::{self, AppPhase};
use super::Inner;
use tokio::time::Instant;

impl Inner {
    /// Keeps an ended driver's log, trying for at most `log_wait` (YARN still aggregating,
    /// a log page not answering yet).
    pub(super) async fn keep_log(&self, name: &str, mut app: App) {
        if self.logs.has_copy(name) {
            return;
        }
        let deadline = Instant::now() + self.cfg.log_wait;
        loop {
            let why = match self.read_log(&app).await {
                Ok(text) => match self.logs.write(name, &text) {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(cluster = %self.name(), driver = %name, error = %e,
                            "cannot keep the driver's log");
                        return;
                    }
                },
                Err(why) => why,
            };
            if Instant::now() >= deadline || self.shutdown.is_cancelled() {
                tracing::warn!(cluster = %self.name(), driver = %name, app_id = %app.id,
                    reason = %why, "the driver's log was not copied; it stays on the cluster");
                return;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
            if let Ok(Some(newer)) = self.rm.app(&app.id).await {
                app = newer;
            }
        }
    }

    /// The driver's log as the node shows it before (or without) a kept copy: read from the
    /// cluster, and kept when the driver has ended.
    pub(super) async fn live_log(&self, name: &str) -> Vec<String> {
        let watched = self.lock().get(name).map(|w| w.app_id.clone());
        let found = match watched {
            Some(id) => self.rm.app(&id).await,
            None => self.find_app(name).await,
        };
        let app = match found {
            Ok(Some(app)) => app,
            Ok(None) => return vec![],
            Err(e) => {
                return vec![format!(
                    "kindling: cannot ask the ResourceManager about the driver's application: {e}"
                )]
            }
        };
        match self.read_log(&app).await {
            Ok(text) => {
                if matches!(state::phase_of(&app), AppPhase::Ended(_))
                    && state::aggregation_settled(app.log_aggregation_status.as_deref())
                {
                    if let Err(e) = self.logs.write(name, &text) {
                        tracing::warn!(cluster = %self.name(), driver = %name, error = %e,
                            "cannot keep the driver's log");
                    }
                }
                text.lines().map(str::to_string).collect()
            }
            Err(why) => vec![format!(
                "kindling: the log of application {} ({}) cannot be read: {why}",
                app.id, app.state
            )],
        }
    }

    /// The log links of an application, the most durable first.
    async fn log_links(&self, app: &App) -> Result<Vec<String>, String> {
        let mut links = vec![];
        let ended = state::is_final(&app.state);
        if let (Some(server), true) = (&self.cfg.log_server_url, ended) {
            let status = app.log_aggregation_status.as_deref();
            if !state::aggregation_settled(status) {
                return Err(format!(
                    "YARN is still aggregating its logs (logAggregationStatus {})",
                    status.unwrap_or("?")
                ));
            }
            if status != Some("DISABLED") {
                match self.rm.attempts(&app.id).await {
                    Ok(attempts) => {
                        let last = attempts.last();
                        let node = last.and_then(|a| a.node_id.as_deref());
                        let container = last.and_then(|a| a.container_id.as_deref());
                        if let (Some(node), Some(container)) = (node, container) {
                            links.push(logs::aggregated_link(server, node, container, &app.user));
                        }
                    }
                    Err(e) => tracing::debug!(cluster = %self.name(), app_id = %app.id, error = %e,
                        "cannot read the application's attempts"),
                }
            }
        }
        if let Some(link) = &app.am_container_logs {
            links.push(link.clone());
        }
        if links.is_empty() {
            return Err(if ended {
                "the ResourceManager shows no log link (the driver never got a container, or \
                 Kindling's user may not view the application)"
                    .into()
            } else {
                "the driver has no container yet".into()
            });
        }
        Ok(links)
    }

    /// The driver's log files behind the first link that serves them all, with YARN's
    /// diagnostics after them once the application ended.
    async fn read_log(&self, app: &App) -> Result<String, String> {
        let mut failures = vec![];
        for link in self.log_links(app).await? {
            match self.read_files(&link).await {
                Ok(mut text) => {
                    if state::is_final(&app.state) && !app.diagnostics.trim().is_empty() {
                        text.push_str(&format!("kindling: YARN diagnostics of {}:\n", app.id));
                        text.push_str(app.diagnostics.trim_end());
                        text.push('\n');
                    }
                    return Ok(text);
                }
                Err(e) => failures.push(e),
            }
        }
        Err(failures.join("; "))
    }

    async fn read_files(&self, link: &str) -> Result<String, String> {
        let container = logs::container_of(link).unwrap_or("?");
        let mut text = String::new();
        for file in LOG_FILES {
            let url = logs::file_url(link, file);
            let resp = self
                .web
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("{url}: {}", super::rm::cause(&e)))?;
            let status = resp.status();
            // After the NodeManager's redirect, the log server's page.
            let served = resp.url().to_string();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp
                .text()
                .await
                .map_err(|e| format!("{url}: {}", super::rm::cause(&e)))?;
            if !status.is_success() {
                return Err(format!("{url}: {status}"));
            }
            let Some(log) = logs::log_text(&body, content_type.as_deref()) else {
                let said = logs::page_message(&body).unwrap_or_else(|| "no log in the page".into());
                return Err(format!("{url}: {said}"));
            };
            text.push_str(&format!(
                "kindling: {file} of the driver's container {container} ({served}):\n"
            ));
            text.push_str(&log);
            if !log.is_empty() && !log.ends_with('\n') {
                text.push('\n');
            }
        }
        Ok(text)
    }
}
