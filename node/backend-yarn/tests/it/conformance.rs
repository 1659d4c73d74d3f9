//! The `ClusterBackend` conformance suite on the YARN backend, against the recorded-response
//! ResourceManager FAKE ([`crate::yarn_fake`]) and the stand-in `spark-submit` of [`crate::Yarn`].
//! The harness plays the ResourceManager's part in a task of its own: an application that
//! appears is started (`RUNNING`) and its driver prints its marker, then it finishes at once or
//! when released, with Spark's diagnostics for its exit status. The cluster forgets an ended
//! driver as a ResourceManager drops a completed application.

use crate::Yarn;
use async_trait::async_trait;
use kindling_backend::conformance::{marker, Ending, Harness};
use kindling_backend::{BackendEvent, ClusterBackend};
use kindling_backend_yarn::YarnBackend;
use kindling_events::spec::JobSpec;
use kindling_events::{Attempt, JobId};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often the ResourceManager's part looks for new applications: the stand-in submits
/// through files, which nothing announces.
const LOOK: Duration = Duration::from_millis(20);

/// The conformance drivers, by their driver tag.
type Drivers = Arc<Mutex<HashMap<String, (JobId, Ending)>>>;

pub struct YarnHarness {
    yarn: Arc<Yarn>,
    drivers: Drivers,
    rm: tokio::task::JoinHandle<()>,
}

impl Drop for YarnHarness {
    fn drop(&mut self) {
        self.rm.abort();
    }
}

fn driver_tag(job: JobId) -> String {
    format!(
        "kindling-driver-{}",
        kindling_backend::driver_name(job, Attempt(1))
    )
}

/// The application of `job`'s driver, once YARN has it.
fn app_of(yarn: &Yarn, job: JobId) -> Option<String> {
    let tag = driver_tag(job);
    yarn.fake
        .apps()
        .into_iter()
        .find(|a| a.tags.contains(&tag))
        .map(|a| a.id)
}

/// The application ends as a Spark driver exiting with `exit_code` ends it.
fn finish(yarn: &Yarn, app: &str, exit_code: i32) {
    if exit_code == 0 {
        yarn.fake.set(app, "app-finished-succeeded");
    } else {
        yarn.fake.set(app, "app-finished-failed");
        let diagnostics = format!("User application exited with status {exit_code}");
        yarn.fake.patch(app, json!({ "diagnostics": diagnostics }));
    }
}

/// Starts each conformance driver's application as it appears, and finishes it at once if
/// it ends so.
async fn resource_manager(yarn: Arc<Yarn>, drivers: Drivers) {
    let mut started = HashSet::new();
    loop {
        for app in yarn.fake.apps() {
            if started.contains(&app.id) {
                continue;
            }
            let driver = drivers
                .lock()
                .iter()
                .find(|(tag, _)| app.tags.contains(tag))
                .map(|(_, d)| *d);
            let Some((job, ending)) = driver else {
                continue;
            };
            started.insert(app.id.clone());
            yarn.fake.set(&app.id, "app-running");
            yarn.fake.print(&app.id, &marker(job));
            if let Ending::AtOnce(code) = ending {
                finish(&yarn, &app.id, code);
            }
        }
        tokio::time::sleep(LOOK).await;
    }
}

impl YarnHarness {
    async fn start() -> YarnHarness {
        let yarn = Arc::new(Yarn::new().await);
        let drivers = Drivers::default();
        YarnHarness {
            rm: tokio::spawn(resource_manager(yarn.clone(), drivers.clone())),
            yarn,
            drivers,
        }
    }

    fn app(&self, job: JobId) -> String {
        app_of(&self.yarn, job)
            .unwrap_or_else(|| panic!("YARN has no application of job {}", job.0))
    }
}

#[async_trait]
impl Harness for YarnHarness {
    async fn backend(
        &self,
        events: mpsc::UnboundedSender<BackendEvent>,
        stop: CancellationToken,
    ) -> Arc<dyn ClusterBackend> {
        Arc::new(YarnBackend::new(self.yarn.cfg.clone(), events, stop).unwrap())
    }

    fn batch(&self, job: JobId, ending: Ending) -> JobSpec {
        self.drivers.lock().insert(driver_tag(job), (job, ending));
        crate::batch(job, &[]).spec
    }

    async fn release(&self, job: JobId) {
        let (_, ending) = self.drivers.lock()[&driver_tag(job)];
        finish(&self.yarn, &self.app(job), ending.code());
    }

    async fn forget(&self, job: JobId) -> bool {
        self.yarn.fake.forget(&self.app(job));
        true
    }

    fn deadline(&self) -> Duration {
        crate::DEADLINE
    }

    fn exit_reason(&self, exit_code: i32) -> Option<String> {
        Some(
            if exit_code == 0 {
                "FINISHED/SUCCEEDED"
            } else {
                "FINISHED/FAILED"
            }
            .into(),
        )
    }

    fn kill_reason(&self) -> Option<String> {
        Some("KILLED/KILLED".into())
    }
}

kindling_backend::backend_conformance_tests!(YarnHarness::start());
