//! The objects a driver pod owns: its headless service and, for a session, the secret holding
//! the runner's credentials. The garbage collector deletes them with the pod.

use super::{
    app_id, labels, secret_name, service_name, BLOCK_MANAGER_PORT, DRIVER_PORT, LABEL_SPARK_APP,
    LABEL_SPARK_ROLE, SECRET_KEY, UI_PORT,
};
use crate::config::KubernetesConfig;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::ByteString;
use kindling_backend::LaunchSpec;
use kindling_events::{Attempt, JobId};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn owned_by(pod: &Pod) -> Value {
    json!([{
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod.metadata.name,
        "uid": pod.metadata.uid,
        "controller": true,
    }])
}

/// The driver's headless service: executors (and the session's clients inside the cluster)
/// reach the driver at `<service>.<namespace>.svc`. Owned by the pod, so the garbage
/// collector deletes it with the pod.
pub fn driver_service(
    cfg: &KubernetesConfig,
    job: JobId,
    attempt: Attempt,
    driver_name: &str,
    pod: &Pod,
) -> Service {
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(driver_name),
            "namespace": cfg.namespace,
            "labels": labels(cfg, job, attempt),
            "ownerReferences": owned_by(pod),
        },
        "spec": {
            "clusterIP": "None",
            "selector": {
                LABEL_SPARK_APP: app_id(&cfg.cluster_id, driver_name),
                LABEL_SPARK_ROLE: "driver",
            },
            "ports": [
                { "name": "driver-rpc-port", "port": DRIVER_PORT, "targetPort": DRIVER_PORT },
                { "name": "blockmanager", "port": BLOCK_MANAGER_PORT, "targetPort": BLOCK_MANAGER_PORT },
                { "name": "spark-ui", "port": UI_PORT, "targetPort": UI_PORT },
            ],
        },
    });
    serde_json::from_value(service).expect("a well-formed service")
}

/// A session's secret: created before the pod, which reads it into `KINDLING_SECRET`.
pub fn session_secret(cfg: &KubernetesConfig, l: &LaunchSpec) -> Option<Secret> {
    let link = l.session.as_ref()?;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(&l.driver_name),
            "namespace": cfg.namespace,
            "labels": labels(cfg, l.job, l.attempt),
        },
        "type": "Opaque",
    });
    let mut secret: Secret = serde_json::from_value(secret).expect("a well-formed secret");
    secret.data = Some(BTreeMap::from([(
        SECRET_KEY.to_string(),
        ByteString(link.secret.clone().into_bytes()),
    )]));
    Some(secret)
}

/// The `ownerReferences` patch that hands a secret over to its pod.
pub fn owner_patch(pod: &Pod) -> Value {
    json!({ "metadata": { "ownerReferences": owned_by(pod) } })
}
