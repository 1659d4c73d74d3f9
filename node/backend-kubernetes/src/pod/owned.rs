//! The objects a driver pod owns: its headless service and, when it has credentials (a
//! session runner's secret, credential-like Spark conf), the Secret holding them. The garbage
//! collector deletes them with the pod.

use super::conf::{secret_conf, spark_conf};
use super::{
    app_id, labels, secret_name, service_name, BLOCK_MANAGER_PORT, DRIVER_PORT, LABEL_SPARK_APP,
    LABEL_SPARK_ROLE, PROPERTIES_KEY, SECRET_KEY, UI_PORT,
};
use crate::config::KubernetesConfig;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::ByteString;
use kindling_backend::{spark_properties, LaunchSpec};
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

/// A driver's Secret, if it has credentials: created before the pod, which reads the
/// runner's secret into `KINDLING_SECRET` and mounts the properties file at `SECRET_DIR`.
pub fn driver_secret(cfg: &KubernetesConfig, l: &LaunchSpec) -> Option<Secret> {
    let conf = spark_conf(cfg, l);
    let mut data = BTreeMap::new();
    if let Some(link) = &l.session {
        data.insert(
            SECRET_KEY.to_string(),
            ByteString(link.secret.clone().into_bytes()),
        );
    }
    let private = secret_conf(&conf);
    if !private.is_empty() {
        let text = spark_properties::text(None, private);
        data.insert(PROPERTIES_KEY.to_string(), ByteString(text.into_bytes()));
    }
    if data.is_empty() {
        return None;
    }
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
    secret.data = Some(data);
    Some(secret)
}

/// The `ownerReferences` patch that hands a secret over to its pod.
pub fn owner_patch(pod: &Pod) -> Value {
    json!({ "metadata": { "ownerReferences": owned_by(pod) } })
}
