//! The `ClusterBackend` conformance suite on a real Spark standalone cluster (a master and
//! two one-core workers of the project venv's pyspark, one cluster per case): each driver is
//! the suite's small Python program, submitted through the REST server and run on a worker by
//! Spark's own `spark-submit`. A driver waiting to be released waits for a file; the workers
//! run on this machine, so they see the harness's directory.

use crate::cluster::Cluster;
use async_trait::async_trait;
use kindling_backend::conformance::{marker, Ending, ExitCodes, Harness};
use kindling_backend::{BackendEvent, ClusterBackend};
use kindling_backend_standalone::{StandaloneBackend, StandaloneConfig};
use kindling_events::spec::{BatchSpec, JobKind, JobSpec};
use kindling_events::JobId;
use kindling_testkit::spark::{conformance_args, conformance_driver};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct StandaloneHarness {
    cfg: StandaloneConfig,
    program: PathBuf,
    // Dropped first: the drivers waiting for a release file give up once it is gone, and the
    // cluster then kills whatever is left.
    dir: tempfile::TempDir,
    _cluster: Cluster,
}

impl StandaloneHarness {
    async fn start() -> StandaloneHarness {
        let cluster = Cluster::start(2).await;
        let dir = tempfile::tempdir().unwrap();
        StandaloneHarness {
            cfg: cluster.config(),
            program: conformance_driver(dir.path()),
            dir,
            _cluster: cluster,
        }
    }

    fn release_file(&self, job: JobId) -> PathBuf {
        self.dir.path().join(format!("release-{}", job.0))
    }
}

#[async_trait]
impl Harness for StandaloneHarness {
    async fn backend(
        &self,
        events: mpsc::UnboundedSender<BackendEvent>,
        stop: CancellationToken,
    ) -> Arc<dyn ClusterBackend> {
        Arc::new(StandaloneBackend::new(self.cfg.clone(), events, stop))
    }

    fn batch(&self, job: JobId, ending: Ending) -> JobSpec {
        let release = match ending {
            Ending::AtOnce(_) => None,
            Ending::OnRelease(_) => Some(self.release_file(job)),
        };
        JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: self.program.display().to_string(),
                class_name: None,
                args: conformance_args(&marker(job), ending.code(), release.as_deref()),
            }),
            name: None,
            owner: None,
            proxy_user: None,
            resources: Default::default(),
        }
    }

    async fn release(&self, job: JobId) {
        std::fs::write(self.release_file(job), "").unwrap();
    }

    /// The master keeps ended drivers (`spark.deploy.retainedDrivers`) and the workers their
    /// logs; the backend keeps nothing on the node, so a driver the master forgot takes its
    /// log with it: there is no forgetting to test here.
    async fn forget(&self, _job: JobId) -> bool {
        false
    }

    fn deadline(&self) -> Duration {
        // A cold driver on a worker takes 10-15 s on two cores, two may start at once.
        Duration::from_secs(120)
    }

    fn exit_codes(&self) -> ExitCodes {
        // The master records FINISHED or FAILED, not the code.
        ExitCodes::ZeroOrNot
    }
}

kindling_backend::backend_conformance_tests!(StandaloneHarness::start());
