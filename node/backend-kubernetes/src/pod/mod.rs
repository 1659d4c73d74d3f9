//! The objects one driver attempt is made of: the driver pod, its headless service and, when
//! it has any, the secret holding its credentials (a session runner's secret, credential-like
//! Spark conf). Built the way Spark's own
//! `spark-submit --deploy-mode cluster` builds a driver pod (its `BasicDriverFeatureStep`,
//! `DriverServiceFeatureStep` and `DriverCommandFeatureStep`): the container runs the image's
//! entrypoint with `driver …`, which becomes `spark-submit --deploy-mode client …` inside the
//! pod, with `spark.kubernetes.submitInDriver=true` so Spark talks to the API server with the
//! pod's service account and creates the executors itself. Pure functions; no I/O.
//!
//! This module holds the names, labels and application id that tie a driver's objects together
//! and let the backend find them again; the driver's Spark properties and arguments are built
//! in `conf`, the pod in `driver`, the service and secret it owns in `owned`.

mod conf;
mod driver;
mod owned;

pub use conf::{conf_of, driver_args, spark_conf, spark_mib, spark_ui_url};
pub use driver::driver_pod;
pub use owned::{driver_secret, driver_service, owner_patch};

use super::config::KubernetesConfig;
use k8s_openapi::api::core::v1::Pod;
use kindling_events::{Attempt, JobId};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The driver container's name, as Spark names it.
pub const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "kindling";
pub const LABEL_CLUSTER: &str = "kindling.io/cluster";
pub const LABEL_JOB: &str = "kindling.io/job";
pub const LABEL_ATTEMPT: &str = "kindling.io/attempt";
/// Spark's own labels: executors find their driver's service by them.
pub const LABEL_SPARK_APP: &str = "spark-app-selector";
pub const LABEL_SPARK_ROLE: &str = "spark-role";
/// Which of Kindling's Kubernetes clusters (registry name) launched the pod.
pub const ANNOTATION_BACKEND: &str = "kindling.io/backend";
/// The key of the runner's secret in a driver's Secret.
pub const SECRET_KEY: &str = "secret";
/// The key of the Spark properties file (credential-like conf) in a driver's Secret.
pub const PROPERTIES_KEY: &str = "spark.properties";
/// Where a driver's Secret is mounted in its container (only its properties file).
pub const SECRET_DIR: &str = "/opt/kindling/secret";
const DRIVER_PORT: i32 = 7078;
const BLOCK_MANAGER_PORT: i32 = 7079;
const UI_PORT: i32 = 4040;

/// The Spark application id: fixed by (cluster, driver name), so it is known before the driver
/// starts and after a restart. Same shape as Spark's own (`spark-` + 32 hex digits).
pub fn app_id(cluster_id: &str, driver_name: &str) -> String {
    let digest = Sha256::digest(format!("{cluster_id}/{driver_name}").as_bytes());
    format!("spark-{}", &hex::encode(digest)[..32])
}

pub fn service_name(driver_name: &str) -> String {
    format!("{driver_name}-svc")
}

pub fn secret_name(driver_name: &str) -> String {
    format!("{driver_name}-secret")
}

/// The label selector of this Kindling cluster's driver pods (executors carry the Kindling
/// labels too, but not `spark-role=driver`).
pub fn driver_selector(cfg: &KubernetesConfig) -> String {
    format!(
        "{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_CLUSTER}={},{LABEL_SPARK_ROLE}=driver",
        cfg.cluster_id
    )
}

/// The labels every object of a driver attempt carries.
fn labels(cfg: &KubernetesConfig, job: JobId, attempt: Attempt) -> BTreeMap<String, String> {
    [
        (LABEL_MANAGED_BY, MANAGED_BY.to_string()),
        (LABEL_CLUSTER, cfg.cluster_id.clone()),
        (LABEL_JOB, job.0.to_string()),
        (LABEL_ATTEMPT, attempt.0.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Whether a pod is the driver of this (cluster, job, attempt).
pub fn is_driver_of(pod: &Pod, cfg: &KubernetesConfig, job: JobId, attempt: Attempt) -> bool {
    let Some(labels) = pod.metadata.labels.as_ref() else {
        return false;
    };
    let is = |k: &str, v: &str| labels.get(k).map(String::as_str) == Some(v);
    is(LABEL_MANAGED_BY, MANAGED_BY)
        && is(LABEL_CLUSTER, &cfg.cluster_id)
        && is(LABEL_JOB, &job.0.to_string())
        && is(LABEL_ATTEMPT, &attempt.0.to_string())
}

/// Whether a pod is one of this Kindling cluster's drivers.
pub fn is_ours(pod: &Pod, cfg: &KubernetesConfig) -> bool {
    let Some(labels) = pod.metadata.labels.as_ref() else {
        return false;
    };
    labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
        && labels.get(LABEL_CLUSTER) == Some(&cfg.cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_stable_and_shaped_like_sparks() {
        let a = app_id("c1", "kindling-7-2");
        assert_eq!(a, app_id("c1", "kindling-7-2"));
        assert_ne!(a, app_id("c2", "kindling-7-2"));
        assert_eq!(a.len(), "spark-".len() + 32);
        assert!(a.starts_with("spark-"));
    }
}
