//! Who leads, as the cluster's members say: each running member's `GET /api/v1/cluster`,
//! the leader they agree on or the one named with the highest term, and waiting for them to
//! agree.

use super::Cluster;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What `GET /api/v1/cluster` says about leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ClusterView {
    pub term: u64,
    pub leader_id: Option<u64>,
}

impl Cluster {
    /// What each running, unpaused member says about leadership.
    pub async fn views(&self, http: &reqwest::Client) -> BTreeMap<u64, ClusterView> {
        let mut out = BTreeMap::new();
        for id in &self.members {
            let n = &self.nodes[id];
            if !n.running() || n.paused {
                continue;
            }
            if let Some(v) = view(http, &self.url(*id)).await {
                out.insert(*id, v);
            }
        }
        out
    }

    /// The leader as the highest term reported says, if any node knows one.
    pub async fn leader(&self, http: &reqwest::Client) -> Option<u64> {
        leader_of(&self.views(http).await)
    }

    /// Waits until what the members say satisfies `done`.
    pub(super) async fn wait_for(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        done: impl Fn(&BTreeMap<u64, ClusterView>) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let views = self.views(http).await;
            if done(&views) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out after {timeout:?}; the nodes said {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every running member names the same leader.
    pub async fn wait_agreed(&self, http: &reqwest::Client, timeout: Duration) -> Result<()> {
        let running = self
            .members
            .iter()
            .filter(|id| self.nodes[id].running())
            .count();
        self.wait_for(http, timeout, |views| {
            views.len() == running && agreed(views).is_some()
        })
        .await
        .context("the members did not agree on a leader")
    }
}

/// A leader all the given views agree on.
pub fn agreed(views: &BTreeMap<u64, ClusterView>) -> Option<u64> {
    let first = views.values().next()?.leader_id?;
    views
        .values()
        .all(|v| v.leader_id == Some(first))
        .then_some(first)
}

/// The leader named with the highest term.
pub fn leader_of(views: &BTreeMap<u64, ClusterView>) -> Option<u64> {
    views
        .values()
        .filter(|v| v.leader_id.is_some())
        .max_by_key(|v| v.term)
        .and_then(|v| v.leader_id)
}

pub async fn view(http: &reqwest::Client, url: &str) -> Option<ClusterView> {
    let r = http
        .get(format!("{url}/api/v1/cluster"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leadership_from_views() {
        let v = |term, leader| ClusterView {
            term,
            leader_id: leader,
        };
        let mut views = BTreeMap::new();
        views.insert(1, v(3, Some(2)));
        views.insert(2, v(3, Some(2)));
        assert_eq!(agreed(&views), Some(2));
        views.insert(3, v(4, Some(3)));
        assert_eq!(agreed(&views), None);
        assert_eq!(leader_of(&views), Some(3));
        views.insert(3, v(5, None));
        assert_eq!(leader_of(&views), Some(2));
    }
}
