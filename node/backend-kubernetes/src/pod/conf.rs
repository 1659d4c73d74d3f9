//! A driver's Spark properties and the `spark-submit` arguments its container runs with, and
//! reading them back from a running driver pod. Credential-like properties stay out of the
//! arguments: they reach `spark-submit` as a properties file from the driver's Secret, which
//! (as any `--properties-file` does) replaces the image's `spark-defaults.conf` for that
//! driver; cluster-wide settings belong in the cluster's `default_conf`.

use super::{
    app_id, labels, service_name, BLOCK_MANAGER_PORT, DRIVER_CONTAINER, DRIVER_PORT,
    PROPERTIES_KEY, SECRET_DIR, UI_PORT,
};
use crate::config::KubernetesConfig;
use k8s_openapi::api::core::v1::Pod;
use kindling_backend::{spark_properties, LaunchSpec};
use kindling_events::spec::JobKind;
use std::collections::BTreeMap;

/// A Spark memory size (`512m`, `2g`, `1024` = MiB) in MiB.
pub fn spark_mib(s: &str) -> Option<u64> {
    kindling_events::MemorySize::parse(s).ok().map(|m| m.mib())
}

/// The job's Spark properties as the driver gets them: the cluster's defaults, then the job's
/// conf, then the typed resources (they win, as spark-submit's flags do), then what
/// Kubernetes mode needs (that wins over everything: the driver would not work otherwise).
pub fn spark_conf(cfg: &KubernetesConfig, l: &LaunchSpec) -> BTreeMap<String, String> {
    let r = &l.spec.resources;
    let mut props = cfg.default_conf.clone();
    props.extend(r.conf.clone());
    props.retain(|k, _| !k.starts_with("kindling."));
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            props.insert(k.into(), v);
        }
    };
    set("spark.driver.memory", r.driver_memory.clone());
    set("spark.driver.cores", r.driver_cores.map(|c| c.to_string()));
    set("spark.executor.memory", r.executor_memory.clone());
    set(
        "spark.executor.cores",
        r.executor_cores.map(|c| c.to_string()),
    );
    set(
        "spark.executor.instances",
        r.num_executors.map(|c| c.to_string()),
    );
    // `queue` is YARN's: Kubernetes has none.
    let name = l
        .spec
        .name
        .clone()
        .or_else(|| props.get("spark.app.name").cloned())
        .unwrap_or_else(|| l.driver_name.clone());
    props.insert("spark.app.name".into(), name);
    props
        .entry("spark.kubernetes.container.image".into())
        .or_insert_with(|| cfg.image.clone());
    if let Some(policy) = &cfg.image_pull_policy {
        props
            .entry("spark.kubernetes.container.image.pullPolicy".into())
            .or_insert_with(|| policy.clone());
    }
    let ns = &cfg.namespace;
    let managed = [
        ("spark.master", cfg.in_cluster_master.clone()),
        ("spark.submit.deployMode", "client".into()),
        ("spark.kubernetes.submitInDriver", "true".into()),
        ("spark.kubernetes.namespace", ns.clone()),
        ("spark.kubernetes.driver.pod.name", l.driver_name.clone()),
        (
            "spark.kubernetes.authenticate.driver.serviceAccountName",
            cfg.service_account.clone(),
        ),
        ("spark.app.id", app_id(&cfg.cluster_id, &l.driver_name)),
        (
            "spark.driver.host",
            format!("{}.{ns}.svc", service_name(&l.driver_name)),
        ),
        ("spark.driver.port", DRIVER_PORT.to_string()),
        (
            "spark.driver.blockManager.port",
            BLOCK_MANAGER_PORT.to_string(),
        ),
        (
            "spark.kubernetes.executor.podNamePrefix",
            l.driver_name.clone(),
        ),
        (
            "spark.kubernetes.resource.type",
            if is_python(l) { "python" } else { "java" }.into(),
        ),
    ];
    for (k, v) in managed {
        props.insert(k.into(), v);
    }
    // Executors carry the Kindling labels, so `kubectl get pods -l kindling.io/job=7` shows
    // the whole application.
    for (k, v) in labels(cfg, l.job, l.attempt) {
        props.insert(format!("spark.kubernetes.executor.label.{k}"), v);
    }
    props
}

pub(crate) fn is_python(l: &LaunchSpec) -> bool {
    match &l.spec.kind {
        JobKind::Batch(b) => b.file.ends_with(".py"),
        JobKind::Session(_) => true,
    }
}

/// The container's arguments for the image's entrypoint: `driver`, then what
/// `spark-submit --deploy-mode client` takes.
pub fn driver_args(
    cfg: &KubernetesConfig,
    l: &LaunchSpec,
    conf: &BTreeMap<String, String>,
) -> Vec<String> {
    let r = &l.spec.resources;
    let mut args = vec!["driver".to_string()];
    if let Some(user) = &l.spec.proxy_user {
        args.push("--proxy-user".into());
        args.push(user.clone());
    }
    for (k, v) in conf.iter().filter(|(k, _)| !spark_properties::is_secret(k)) {
        args.push("--conf".into());
        args.push(format!("{k}={v}"));
    }
    if !secret_conf(conf).is_empty() {
        // Anyone who may read pods reads a pod's arguments: credentials come from the
        // driver's Secret, mounted as a properties file.
        args.push("--properties-file".into());
        args.push(format!("{SECRET_DIR}/{PROPERTIES_KEY}"));
    }
    for (flag, list) in [
        ("--jars", &r.jars),
        ("--py-files", &r.py_files),
        ("--files", &r.files),
        ("--archives", &r.archives),
    ] {
        if !list.is_empty() {
            args.push(flag.into());
            args.push(list.join(","));
        }
    }
    match &l.spec.kind {
        JobKind::Batch(b) => {
            if let Some(c) = &b.class_name {
                args.push("--class".into());
                args.push(c.clone());
            }
            args.push(b.file.clone());
            args.extend(b.args.iter().cloned());
        }
        JobKind::Session(_) => args.push(cfg.runner.clone()),
    }
    args
}

/// The credential-like entries of a driver's Spark properties: they travel in its Secret.
pub fn secret_conf(conf: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    conf.iter()
        .filter(|(k, _)| spark_properties::is_secret(k))
        .collect()
}

/// The Spark properties a driver pod was started with (its `--conf` arguments; not the
/// credentials of its properties file).
pub fn conf_of(pod: &Pod) -> BTreeMap<String, String> {
    let args = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == DRIVER_CONTAINER))
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    args.windows(2)
        .filter(|w| w[0] == "--conf")
        .filter_map(|w| w[1].split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The Spark UI of a driver, as seen from inside the cluster; `None` with the UI disabled.
pub fn spark_ui_url(cfg: &KubernetesConfig, pod: &Pod, driver_name: &str) -> Option<String> {
    let conf = conf_of(pod);
    if conf.get("spark.ui.enabled").map(String::as_str) == Some("false") {
        return None;
    }
    let port = conf
        .get("spark.ui.port")
        .cloned()
        .unwrap_or_else(|| UI_PORT.to_string());
    Some(format!(
        "http://{}.{}.svc:{port}",
        service_name(driver_name),
        cfg.namespace
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_spark() {
        assert_eq!(spark_mib("512m"), Some(512));
        assert_eq!(spark_mib("2g"), Some(2048));
        assert_eq!(spark_mib("2GB"), Some(2048));
        assert_eq!(spark_mib("1024"), Some(1024));
        assert_eq!(spark_mib("1536k"), Some(1), "rounded down, as Spark does");
        assert_eq!(spark_mib("lots"), None);
        assert_eq!(spark_mib("1x"), None);
    }
}
