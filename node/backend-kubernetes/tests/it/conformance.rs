//! The `ClusterBackend` conformance suite on the Kubernetes backend, against the API server
//! FAKE (`kindling_testkit::kube_fake`; the suite does not run against a real cluster). The
//! harness plays the kubelet in a task of its own: a driver pod that appears is started and
//! prints its marker, then terminates at once or when released, with the reason the kubelet
//! gives (`Completed`, `Error`). The cluster forgets an ended driver by deleting its pod.

use crate::{base_config, client_for, NS};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kindling_backend::conformance::{marker, Ending, Harness};
use kindling_backend::{BackendEvent, ClusterBackend};
use kindling_backend_kubernetes::{KubeAuth, KubernetesBackend, KubernetesConfig};
use kindling_events::spec::{BatchSpec, JobKind, JobSpec};
use kindling_events::{Attempt, JobId};
use kindling_testkit::kube_fake::KubeFake;
use kube::api::{Api, DeleteParams};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The conformance drivers the kubelet starts, by pod name.
type Drivers = Arc<Mutex<HashMap<String, (JobId, Ending)>>>;

pub struct KubeHarness {
    fake: Arc<KubeFake>,
    cfg: KubernetesConfig,
    drivers: Drivers,
    pods: Api<Pod>,
    kubelet: tokio::task::JoinHandle<()>,
    _logs: tempfile::TempDir,
}

impl Drop for KubeHarness {
    fn drop(&mut self) {
        self.kubelet.abort();
    }
}

/// The kubelet's word for a container's exit.
fn reason(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

fn pod_name(job: JobId) -> String {
    kindling_backend::driver_name(job, Attempt(1))
}

/// Starts each conformance driver's pod as it appears: running, its marker printed, and
/// terminated at once if it ends so.
async fn kubelet(fake: Arc<KubeFake>, drivers: Drivers) {
    let mut changes = fake.changes();
    let mut started = HashSet::new();
    loop {
        changes.borrow_and_update();
        let appeared: Vec<String> = fake
            .all("pods")
            .iter()
            .filter(|p| p["metadata"]["namespace"] == NS)
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .filter(|name| !started.contains(name))
            .collect();
        for name in appeared {
            let Some((job, ending)) = drivers.lock().get(&name).copied() else {
                continue;
            };
            started.insert(name.clone());
            fake.run(NS, &name);
            fake.log(NS, &name, &marker(job));
            if let Ending::AtOnce(code) = ending {
                fake.terminate(NS, &name, code, reason(code));
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

impl KubeHarness {
    async fn start() -> KubeHarness {
        let logs = tempfile::tempdir().unwrap();
        let fake = Arc::new(KubeFake::start(None).await);
        let mut cfg = base_config("conformance", &logs);
        cfg.api_server = Some(fake.url.clone());
        cfg.auth = KubeAuth::BearerToken(String::new());
        let drivers = Drivers::default();
        KubeHarness {
            pods: Api::namespaced(client_for(&cfg).await, NS),
            kubelet: tokio::spawn(kubelet(fake.clone(), drivers.clone())),
            fake,
            cfg,
            drivers,
            _logs: logs,
        }
    }
}

#[async_trait]
impl Harness for KubeHarness {
    async fn backend(
        &self,
        events: mpsc::UnboundedSender<BackendEvent>,
        stop: CancellationToken,
    ) -> Arc<dyn ClusterBackend> {
        Arc::new(
            KubernetesBackend::new(self.cfg.clone(), events, stop)
                .await
                .unwrap(),
        )
    }

    fn batch(&self, job: JobId, ending: Ending) -> JobSpec {
        self.drivers.lock().insert(pod_name(job), (job, ending));
        JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: "local:///opt/app/conformance.py".into(),
                class_name: None,
                args: vec![],
            }),
            name: None,
            owner: None,
            proxy_user: None,
            resources: Default::default(),
        }
    }

    async fn release(&self, job: JobId) {
        let (_, ending) = self.drivers.lock()[&pod_name(job)];
        let code = ending.code();
        self.fake.terminate(NS, &pod_name(job), code, reason(code));
    }

    async fn forget(&self, job: JobId) -> bool {
        self.pods
            .delete(&pod_name(job), &DeleteParams::default())
            .await
            .unwrap();
        assert!(self.fake.get("pods", NS, &pod_name(job)).is_none());
        true
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs(20)
    }

    fn exit_reason(&self, exit_code: i32) -> Option<String> {
        Some(reason(exit_code).into())
    }

    fn kill_reason(&self) -> Option<String> {
        Some("Killed".into())
    }
}

kindling_backend::backend_conformance_tests!(KubeHarness::start());
