//! The label-selector watch over the cluster's driver pods: list, then watch from the list's
//! resourceVersion; after a disconnect, watch again from the last resourceVersion seen (no
//! event is lost: the API server replays what happened since); when the API server no longer
//! has that version (410 Gone, `Expired`), list again and compare.

use super::{pod, Inner};
use futures::TryStreamExt;
use kube::api::{ListParams, WatchEvent, WatchParams};
use std::sync::Arc;
use std::time::Duration;

/// Longest pause between attempts while the API server does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Below the client's read timeout (295 s), so a quiet watch ends cleanly and is renewed.
const WATCH_TIMEOUT_SECS: u32 = 290;

/// Runs until the backend shuts down.
pub(super) async fn run(inner: Arc<Inner>) {
    let selector = pod::driver_selector(&inner.cfg);
    let mut version: Option<String> = None;
    let mut backoff = super::RETRY;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        let from = match &version {
            Some(v) => v.clone(),
            None => match relist(&inner, &selector).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(cluster = %inner.name(), error = %e, "cannot list driver pods");
                    wait(&inner, &mut backoff).await;
                    continue;
                }
            },
        };
        version = Some(from.clone());
        let wp = WatchParams::default()
            .labels(&selector)
            .timeout(WATCH_TIMEOUT_SECS);
        let stream = match inner.pods.watch(&wp, &from).await {
            Ok(s) => s,
            Err(kube::Error::Api(s)) if s.code == 410 => {
                tracing::info!(cluster = %inner.name(), %from, "watch expired; listing again");
                version = None;
                continue;
            }
            Err(e) => {
                tracing::warn!(cluster = %inner.name(), error = %e, "cannot watch driver pods");
                wait(&inner, &mut backoff).await;
                continue;
            }
        };
        backoff = super::RETRY;
        let mut stream = std::pin::pin!(stream);
        let mut received = 0usize;
        let mut failed = false;
        loop {
            let next = tokio::select! {
                _ = inner.shutdown.cancelled() => return,
                next = stream.try_next() => next,
            };
            received += 1;
            match next {
                Ok(Some(WatchEvent::Added(p) | WatchEvent::Modified(p))) => {
                    version = p.metadata.resource_version.clone().or(version);
                    inner.observe(p, false);
                }
                Ok(Some(WatchEvent::Deleted(p))) => {
                    version = p.metadata.resource_version.clone().or(version);
                    inner.observe(p, true);
                }
                Ok(Some(WatchEvent::Bookmark(b))) => {
                    version = Some(b.metadata.resource_version);
                }
                Ok(Some(WatchEvent::Error(s))) if s.code == 410 => {
                    tracing::info!(cluster = %inner.name(), "watch expired; listing again");
                    version = None;
                    break;
                }
                Ok(Some(WatchEvent::Error(s))) => {
                    tracing::warn!(cluster = %inner.name(), code = s.code, message = %s.message, "watch error");
                    failed = true;
                    break;
                }
                // The server ended the watch (its timeout), or the connection broke: resume.
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(cluster = %inner.name(), error = %e, "watch interrupted");
                    break;
                }
            }
        }
        // A server that ends every watch at once must not be asked again in a tight loop.
        if failed || received <= 1 {
            wait(&inner, &mut backoff).await;
        }
    }
}

/// Lists the driver pods and replaces the cache; returns the list's resourceVersion.
async fn relist(inner: &Arc<Inner>, selector: &str) -> Result<String, kube::Error> {
    let list = inner
        .pods
        .list(&ListParams::default().labels(selector))
        .await?;
    let version = list.metadata.resource_version.clone().unwrap_or_default();
    inner.replace_all(list.items);
    Ok(version)
}

async fn wait(inner: &Inner, backoff: &mut Duration) {
    tokio::select! {
        _ = inner.shutdown.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}
