//! The `ClusterBackend` conformance suite on the local backend, with the real `spark-submit`:
//! each driver is the suite's small Python program run by Spark's PythonRunner, so the whole
//! submission path runs without a SparkSession. A driver waiting to be released waits for a
//! file. The cluster is the node itself: it keeps every driver's log and exit code, so there
//! is nothing for it to forget.

use async_trait::async_trait;
use kindling_backend::conformance::{marker, Ending, Harness};
use kindling_backend::{BackendEvent, ClusterBackend};
use kindling_backend_local::{LocalBackend, LocalConfig};
use kindling_events::spec::{BatchSpec, JobKind, JobSpec};
use kindling_events::JobId;
use kindling_testkit::spark::{conformance_args, conformance_driver, real_spark_home, venv};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct LocalHarness {
    cfg: LocalConfig,
    program: PathBuf,
    dir: tempfile::TempDir,
}

impl LocalHarness {
    async fn start() -> LocalHarness {
        let dir = tempfile::tempdir().unwrap();
        let program = conformance_driver(dir.path());
        let tag = dir.path().file_name().unwrap().to_string_lossy();
        let cfg = LocalConfig {
            spark_home: real_spark_home(),
            python: venv().join("bin/python"),
            master: "local[1]".into(),
            drivers_dir: dir.path().join("drivers"),
            runner: dir.path().join("runner/kindling_runner.py"),
            default_conf: [("spark.driver.memory".to_string(), "512m".to_string())].into(),
            // Apart from any other test's drivers on this machine.
            cluster_id: format!("conformance-{tag}"),
        };
        LocalHarness { cfg, program, dir }
    }

    fn release_file(&self, job: JobId) -> PathBuf {
        self.dir.path().join(format!("release-{}", job.0))
    }
}

#[async_trait]
impl Harness for LocalHarness {
    async fn backend(
        &self,
        events: mpsc::UnboundedSender<BackendEvent>,
        _stop: CancellationToken,
    ) -> Arc<dyn ClusterBackend> {
        // Nothing to stop: a local backend's watches end with their drivers.
        Arc::new(LocalBackend::new(self.cfg.clone(), events))
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

    async fn forget(&self, _job: JobId) -> bool {
        false
    }

    fn deadline(&self) -> Duration {
        // A cold driver takes 5-10 s of CPU; two start at once on two cores.
        Duration::from_secs(120)
    }
}

kindling_backend::backend_conformance_tests!(LocalHarness::start());
