//! The objects one driver attempt is made of: the driver pod, its headless service and, for a
//! session, the secret holding the runner's credentials. Built the way Spark's own
//! `spark-submit --deploy-mode cluster` builds a driver pod (its `BasicDriverFeatureStep`,
//! `DriverServiceFeatureStep` and `DriverCommandFeatureStep`): the container runs the image's
//! entrypoint with `driver …`, which becomes `spark-submit --deploy-mode client …` inside the
//! pod, with `spark.kubernetes.submitInDriver=true` so Spark talks to the API server with the
//! pod's service account and creates the executors itself. Pure functions; no I/O.

use super::config::KubernetesConfig;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::ByteString;
use kindling_backend::LaunchSpec;
use kindling_events::spec::JobKind;
use kindling_events::{Attempt, JobId};
use serde_json::{json, Value};
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
/// The key of the runner's secret in a session's Secret.
pub const SECRET_KEY: &str = "secret";
const DRIVER_PORT: i32 = 7078;
const BLOCK_MANAGER_PORT: i32 = 7079;
const UI_PORT: i32 = 4040;
/// Spark's minimum memory overhead, in MiB.
const MIN_OVERHEAD_MIB: u64 = 384;

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
    format!("{driver_name}-session")
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

fn is_python(l: &LaunchSpec) -> bool {
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
    for (k, v) in conf {
        args.push("--conf".into());
        args.push(format!("{k}={v}"));
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

/// The driver container's memory (heap plus overhead, Spark's rule) and CPU request and limit.
fn resources(l: &LaunchSpec, conf: &BTreeMap<String, String>) -> Result<Value, String> {
    let get = |k: &str| conf.get(k).map(String::as_str);
    let memory = get("spark.driver.memory").unwrap_or("1g");
    let heap = spark_mib(memory).ok_or_else(|| {
        format!("spark.driver.memory {memory:?} is not a size such as 512m or 2g")
    })?;
    let default_factor = if is_python(l) { 0.4 } else { 0.1 };
    let factor = match get("spark.driver.memoryOverheadFactor")
        .or_else(|| get("spark.kubernetes.memoryOverheadFactor"))
    {
        Some(f) => f
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| format!("memory overhead factor {f:?} is not a number"))?,
        None => default_factor,
    };
    let overhead = match get("spark.driver.memoryOverhead") {
        Some(o) => spark_mib(o)
            .ok_or_else(|| format!("spark.driver.memoryOverhead {o:?} is not a size"))?,
        None => ((heap as f64 * factor) as u64).max(MIN_OVERHEAD_MIB),
    };
    let memory = format!("{}Mi", heap + overhead);
    let cpu = get("spark.kubernetes.driver.request.cores")
        .map(str::to_string)
        .or_else(|| get("spark.driver.cores").map(str::to_string))
        .unwrap_or_else(|| "1".into());
    let mut limits = json!({ "memory": memory });
    if let Some(limit) = get("spark.kubernetes.driver.limit.cores") {
        limits["cpu"] = limit.into();
    }
    Ok(json!({ "requests": { "cpu": cpu, "memory": memory }, "limits": limits }))
}

fn env(cfg: &KubernetesConfig, l: &LaunchSpec, conf: &BTreeMap<String, String>) -> Vec<Value> {
    let mut plain: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in conf {
        if let Some(name) = k.strip_prefix("spark.kubernetes.driverEnv.") {
            plain.insert(name.into(), v.clone());
        }
    }
    if let Some(user) = l.spec.proxy_user.as_ref().or(l.spec.owner.as_ref()) {
        plain.insert("SPARK_USER".into(), user.clone());
    }
    if let Some(py) = conf.get("spark.pyspark.python") {
        plain.insert("PYSPARK_PYTHON".into(), py.clone());
    }
    if let Some(py) = conf
        .get("spark.pyspark.driver.python")
        .or(conf.get("spark.pyspark.python"))
    {
        plain.insert("PYSPARK_DRIVER_PYTHON".into(), py.clone());
    }
    plain.insert(
        "SPARK_APPLICATION_ID".into(),
        app_id(&cfg.cluster_id, &l.driver_name),
    );
    plain.insert(
        "KINDLING_DRIVER".into(),
        format!("{}:{}", cfg.cluster_id, l.driver_name),
    );
    plain.insert("KINDLING_JOB_ID".into(), l.job.0.to_string());
    plain.insert("KINDLING_ATTEMPT".into(), l.attempt.0.to_string());
    if let JobKind::Session(s) = &l.spec.kind {
        plain.insert("KINDLING_SESSION_KIND".into(), s.kind.as_str().into());
    }
    if let Some(link) = &l.session {
        plain.extend(
            link.route_env()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
    }
    let mut env: Vec<Value> = plain
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    // Spark binds the driver to the pod's IP (its entrypoint reads this variable).
    env.push(json!({ "name": "SPARK_DRIVER_BIND_ADDRESS",
        "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "status.podIP" } } }));
    // Spark's way of handing credentials to the driver without writing them in its spec:
    // `spark.kubernetes.driver.secretKeyRef.<ENV>=<secret>:<key>`.
    for (k, v) in conf {
        if let (Some(name), Some((secret, key))) = (
            k.strip_prefix("spark.kubernetes.driver.secretKeyRef."),
            v.split_once(':'),
        ) {
            env.push(json!({ "name": name,
                "valueFrom": { "secretKeyRef": { "name": secret, "key": key } } }));
        }
    }
    if l.session.is_some() {
        // The secret stays out of the pod spec, which anyone who can list pods reads.
        env.push(json!({ "name": "KINDLING_SECRET",
            "valueFrom": { "secretKeyRef": { "name": secret_name(&l.driver_name), "key": SECRET_KEY } } }));
    }
    env
}

/// The driver pod of one attempt. `Err` says what in the job to fix.
pub fn driver_pod(cfg: &KubernetesConfig, l: &LaunchSpec) -> Result<Pod, String> {
    let conf = spark_conf(cfg, l);
    let image = conf
        .get("spark.kubernetes.driver.container.image")
        .or(conf.get("spark.kubernetes.container.image"))
        .cloned()
        .unwrap_or_else(|| cfg.image.clone());
    let mut labels = labels(cfg, l.job, l.attempt);
    labels.insert(LABEL_SPARK_ROLE.into(), "driver".into());
    labels.insert(
        LABEL_SPARK_APP.into(),
        app_id(&cfg.cluster_id, &l.driver_name),
    );
    let mut container = json!({
        "name": DRIVER_CONTAINER,
        "image": image,
        "args": driver_args(cfg, l, &conf),
        "env": env(cfg, l, &conf),
        "ports": [
            { "name": "driver-rpc-port", "containerPort": DRIVER_PORT, "protocol": "TCP" },
            { "name": "blockmanager", "containerPort": BLOCK_MANAGER_PORT, "protocol": "TCP" },
            { "name": "spark-ui", "containerPort": UI_PORT, "protocol": "TCP" },
        ],
        "resources": resources(l, &conf)?,
    });
    if let Some(policy) = conf.get("spark.kubernetes.container.image.pullPolicy") {
        container["imagePullPolicy"] = policy.clone().into();
    }
    if let Some(command) = &cfg.driver_command {
        container["command"] = json!(command);
    }
    let mut spec = json!({
        "restartPolicy": "Never",
        "serviceAccountName": cfg.service_account,
        "containers": [container],
    });
    let mut node_selector = serde_json::Map::new();
    for prefix in [
        "spark.kubernetes.node.selector.",
        "spark.kubernetes.driver.node.selector.",
    ] {
        for (k, v) in &conf {
            if let Some(key) = k.strip_prefix(prefix) {
                node_selector.insert(key.into(), v.clone().into());
            }
        }
    }
    if !node_selector.is_empty() {
        spec["nodeSelector"] = node_selector.into();
    }
    if let Some(secrets) = conf.get("spark.kubernetes.container.image.pullSecrets") {
        let names: Vec<Value> = secrets
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| json!({ "name": s }))
            .collect();
        spec["imagePullSecrets"] = names.into();
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": l.driver_name,
            "namespace": cfg.namespace,
            "labels": labels,
            "annotations": { ANNOTATION_BACKEND: cfg.name },
        },
        "spec": spec,
    });
    serde_json::from_value(pod).map_err(|e| format!("cannot build the driver pod: {e}"))
}

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

/// The Spark properties a driver pod was started with (its `--conf` arguments).
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
    use crate::config::{KubeAuth, PodRetention, IN_CLUSTER_MASTER};
    use kindling_events::spec::{BatchSpec, JobSpec};

    fn cfg() -> KubernetesConfig {
        KubernetesConfig {
            name: "east".into(),
            cluster_id: "c1".into(),
            api_server: Some("https://k:6443".into()),
            namespace: "spark".into(),
            auth: KubeAuth::BearerToken("t".into()),
            ca_file: None,
            image: "spark:4".into(),
            image_pull_policy: None,
            service_account: "spark".into(),
            driver_command: None,
            default_conf: BTreeMap::new(),
            runner: "local:///opt/kindling/kindling_runner.py".into(),
            retention: PodRetention::Keep,
            logs_dir: "/tmp/logs".into(),
            in_cluster_master: IN_CLUSTER_MASTER.into(),
        }
    }

    fn batch() -> LaunchSpec {
        LaunchSpec {
            job: JobId(7),
            attempt: Attempt(2),
            driver_name: "kindling-7-2".into(),
            spec: JobSpec {
                kind: JobKind::Batch(BatchSpec {
                    file: "local:///opt/app/Main.jar".into(),
                    class_name: Some("com.example.Main".into()),
                    args: vec![],
                }),
                name: None,
                owner: None,
                proxy_user: Some("bob".into()),
                resources: Default::default(),
            },
            session: None,
        }
    }

    #[test]
    fn a_jvm_driver_gets_the_jvm_overhead_and_its_proxy_user() {
        let pod = driver_pod(&cfg(), &batch()).unwrap();
        let c = &pod.spec.unwrap().containers[0];
        let args = c.args.clone().unwrap();
        assert_eq!(&args[..3], ["driver", "--proxy-user", "bob"]);
        assert_eq!(
            &args[args.len() - 3..],
            ["--class", "com.example.Main", "local:///opt/app/Main.jar"]
        );
        assert!(args.contains(&"spark.kubernetes.resource.type=java".to_string()));
        // 1 GiB by default, and max(10 %, 384 MiB) on top.
        let r = serde_json::to_value(c.resources.clone().unwrap()).unwrap();
        assert_eq!(r["limits"]["memory"], "1408Mi");
    }

    #[test]
    fn a_bad_memory_size_is_a_message_about_the_job() {
        let mut l = batch();
        l.spec.resources.driver_memory = Some("lots".into());
        let e = driver_pod(&cfg(), &l).unwrap_err();
        assert!(
            e.contains("spark.driver.memory") && e.contains("lots"),
            "{e}"
        );
    }

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

    #[test]
    fn secret_references_become_env_from_secrets() {
        let cfg = cfg();
        let mut l = batch();
        l.spec.resources.conf.insert(
            "spark.kubernetes.driver.secretKeyRef.AWS_SECRET_ACCESS_KEY".into(),
            "s3-creds:secret".into(),
        );
        let pod = driver_pod(&cfg, &l).unwrap();
        let env = serde_json::to_value(&pod.spec.unwrap().containers[0].env).unwrap();
        let var = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "AWS_SECRET_ACCESS_KEY")
            .unwrap();
        assert_eq!(var["valueFrom"]["secretKeyRef"]["name"], "s3-creds");
        assert_eq!(var["valueFrom"]["secretKeyRef"]["key"], "secret");
    }

    #[test]
    fn app_ids_are_stable_and_shaped_like_sparks() {
        let a = app_id("c1", "kindling-7-2");
        assert_eq!(a, app_id("c1", "kindling-7-2"));
        assert_ne!(a, app_id("c2", "kindling-7-2"));
        assert_eq!(a.len(), "spark-".len() + 32);
        assert!(a.starts_with("spark-"));
    }
}
