//! The simulation's stand-ins for what it does not model: session drivers (the workload is
//! batches only, so no driver ever links) and the backend factory (every cluster is the one
//! modelled cluster).

use crate::driver_links::DriverLinks;
use crate::error::Result;
use async_trait::async_trait;
use kindling_backend::{BackendEvent, BackendFactory, ClusterBackend, KafkaRoute};
use kindling_events::{Attempt, Cluster, JobId, SessionKind, StatementId};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// No session driver ever links: the simulated workload runs batches.
pub struct NoDrivers;

#[async_trait]
impl DriverLinks for NoDrivers {
    fn last_seen(&self, _: JobId, _: Attempt) -> Option<Instant> {
        None
    }
    fn connected(&self) -> usize {
        0
    }
    fn max_statement_bytes(&self) -> usize {
        usize::MAX
    }
    async fn open_route(&self, _: JobId, _: Attempt) -> Result<Option<KafkaRoute>> {
        Ok(None)
    }
    async fn resume_routes(&self) {}
    fn release_all(&self) {}
    async fn shutdown(&self, _: JobId, _: &str) {}
    async fn run(&self, _: JobId, _: StatementId, _: SessionKind, _: String) {}
    async fn cancel(&self, _: JobId, _: StatementId) {}
    async fn complete(&self, _: JobId, _: SessionKind, _: String, _: u32) -> Result<Vec<String>> {
        Ok(vec![])
    }
}

/// Every cluster's backend is the one given.
pub struct OneBackend(pub Arc<dyn ClusterBackend>);

#[async_trait]
impl BackendFactory for OneBackend {
    async fn build(
        &self,
        _: &Cluster,
        _: mpsc::UnboundedSender<BackendEvent>,
        _: CancellationToken,
    ) -> std::result::Result<Arc<dyn ClusterBackend>, String> {
        Ok(self.0.clone())
    }
}
