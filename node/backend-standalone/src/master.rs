//! What the master answers: the REST submission server's replies and the web UI's `/json/`
//! state (workers, active and completed drivers), and the requests that read them.

use crate::backend::Inner;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestResponse {
    #[serde(default)]
    pub(crate) success: Option<bool>,
    #[serde(default)]
    pub(crate) submission_id: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) driver_state: Option<String>,
    #[serde(default)]
    pub(crate) worker_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MasterState {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) workers: Vec<WorkerInfo>,
    #[serde(default)]
    pub(crate) activedrivers: Vec<DriverInfo>,
    #[serde(default)]
    pub(crate) completeddrivers: Vec<DriverInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WorkerInfo {
    pub(crate) id: String,
    pub(crate) host: String,
    pub(crate) webuiaddress: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DriverInfo {
    pub(crate) id: String,
    pub(crate) state: String,
    /// The worker's id, or `"None"` while the driver is queued.
    #[serde(default)]
    pub(crate) worker: Option<String>,
    #[serde(default)]
    pub(crate) mainclass: Option<String>,
}

impl Inner {
    pub(crate) async fn master_state(&self) -> Result<MasterState, reqwest::Error> {
        let url = format!("{}/json/", self.cfg.web_ui_url.trim_end_matches('/'));
        self.http.get(url).send().await?.json().await
    }

    pub(crate) async fn status(&self, driver_id: &str) -> Result<RestResponse, reqwest::Error> {
        let url = format!(
            "{}/v1/submissions/status/{driver_id}",
            self.cfg.rest_url.trim_end_matches('/')
        );
        self.http.get(url).send().await?.json().await
    }

    /// The web UI of a worker, by its id.
    pub(crate) async fn worker_ui(&self, worker_id: &str) -> Option<String> {
        let state = self.master_state().await.ok()?;
        state
            .workers
            .into_iter()
            .find(|w| w.id == worker_id)
            .map(|w| w.webuiaddress)
    }
}
