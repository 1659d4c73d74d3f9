//! Finding a driver again by its tag among all the drivers the master knows, reading each
//! driver's tag once from the launch command at the head of its `stderr` on its worker.

use crate::backend::Inner;
use crate::logs::{launch_tag, HEAD_BYTES};
use crate::master::{DriverInfo, MasterState};
use crate::phase::driver_phase;
use crate::submission::{tag, SPARK_SUBMIT};
use futures::StreamExt;
use kindling_backend::Result;
use std::collections::HashMap;

/// What the cluster says about a tag.
pub(crate) enum Located {
    Found {
        driver_id: String,
        state: String,
    },
    Absent,
    /// Not found among the drivers that could be read, but some live ones could not be.
    Unsure(String),
}

impl Inner {
    /// Looks for the driver tagged `tag` among all the drivers the master knows.
    pub(crate) async fn locate(&self, tag: &str) -> Result<(Located, MasterState), reqwest::Error> {
        let state = self.master_state().await?;
        let ui: HashMap<&str, &str> = state
            .workers
            .iter()
            .map(|w| (w.id.as_str(), w.webuiaddress.as_str()))
            .collect();
        let ours: Vec<&DriverInfo> = state
            .activedrivers
            .iter()
            .chain(&state.completeddrivers)
            .filter(|d| d.mainclass.as_deref() == Some(SPARK_SUBMIT))
            .collect();
        let unread: Vec<(String, Option<String>)> = {
            let tags = self.tags.lock();
            ours.iter()
                .filter(|d| !tags.contains_key(&d.id))
                .map(|d| {
                    let web_ui = d.worker.as_deref().and_then(|w| ui.get(w));
                    (d.id.clone(), web_ui.map(|u| u.to_string()))
                })
                .collect()
        };
        let read: Vec<(String, Option<Option<String>>)> = futures::stream::iter(
            unread
                .into_iter()
                .map(|(id, web_ui)| self.read_tag(id, web_ui)),
        )
        .buffer_unordered(8)
        .collect()
        .await;
        let mut tags = self.tags.lock();
        // Forget drivers the master has forgotten: the cache stays as small as its list.
        tags.retain(|id, _| ours.iter().any(|d| &d.id == id));
        for (id, found) in read {
            if let Some(t) = found {
                tags.insert(id, t);
            }
        }
        let mut found: Option<&DriverInfo> = None;
        let mut unsure = Vec::new();
        for d in ours {
            match tags.get(&d.id) {
                Some(Some(t)) if t == tag => {
                    // A relaunched driver's tag is on its old ids too: the live or else the
                    // latest id counts.
                    let live = |d: &DriverInfo| driver_phase(&d.state).live();
                    if found.is_none_or(|f| (live(d), &d.id) > (live(f), &f.id)) {
                        found = Some(d);
                    }
                }
                Some(_) => {}
                None if !driver_phase(&d.state).live() => {}
                None => unsure.push(format!("{} ({})", d.id, d.state)),
            }
        }
        let located = match (found, unsure.is_empty()) {
            (Some(d), _) => Located::Found {
                driver_id: d.id.clone(),
                state: d.state.clone(),
            },
            (None, true) => Located::Absent,
            (None, false) => Located::Unsure(unsure.join(", ")),
        };
        drop(tags);
        Ok((located, state))
    }

    /// The tag in a driver's launch command, read from its worker; `None` if unreadable.
    async fn read_tag(
        &self,
        driver_id: String,
        web_ui: Option<String>,
    ) -> (String, Option<Option<String>>) {
        let Some(web_ui) = web_ui else {
            return (driver_id, None);
        };
        let range = format!("offset=0&byteLength={HEAD_BYTES}");
        let found = match self.worker_log(&web_ui, &driver_id, "stderr", &range).await {
            Ok(Some((text, _))) => launch_tag(&text),
            _ => None,
        };
        (driver_id, found)
    }

    /// The id of the driver called `name`: the watched one, else the one the cluster holds.
    pub(crate) async fn driver_id(&self, name: &str) -> Result<Option<String>> {
        if let Some(w) = self.watched.lock().get(name) {
            return Ok(Some(w.driver_id.clone()));
        }
        let tag = tag(&self.cfg, name);
        let (located, _) = self
            .locate(&tag)
            .await
            .map_err(|e| self.io("cannot list the standalone master's drivers", e))?;
        Ok(match located {
            Located::Found { driver_id, .. } => Some(driver_id),
            _ => None,
        })
    }
}
