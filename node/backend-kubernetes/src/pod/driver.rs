//! The driver pod of one attempt: its container's arguments, environment, ports and resources,
//! its labels, and the scheduling settings Spark's conf asks for.

use super::conf::{is_python, secret_conf};
use super::{
    app_id, driver_args, labels, secret_name, spark_conf, spark_mib, ANNOTATION_BACKEND,
    BLOCK_MANAGER_PORT, DRIVER_CONTAINER, DRIVER_PORT, LABEL_SPARK_APP, LABEL_SPARK_ROLE,
    PROPERTIES_KEY, SECRET_DIR, SECRET_KEY, UI_PORT,
};
use crate::config::KubernetesConfig;
use k8s_openapi::api::core::v1::Pod;
use kindling_backend::LaunchSpec;
use kindling_events::spec::JobKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The volume of the driver's Secret (its properties file).
const SECRET_VOLUME: &str = "kindling-secret";
/// Spark's minimum memory overhead, in MiB.
const MIN_OVERHEAD_MIB: u64 = 384;

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
    let mut volumes = vec![];
    if !secret_conf(&conf).is_empty() {
        container["volumeMounts"] = json!([{ "name": SECRET_VOLUME, "mountPath": SECRET_DIR,
            "readOnly": true }]);
        volumes.push(json!({ "name": SECRET_VOLUME, "secret": {
            "secretName": secret_name(&l.driver_name),
            "items": [{ "key": PROPERTIES_KEY, "path": PROPERTIES_KEY }],
        } }));
    }
    let mut spec = json!({
        "restartPolicy": "Never",
        "serviceAccountName": cfg.service_account,
        "containers": [container],
    });
    if !volumes.is_empty() {
        spec["volumes"] = volumes.into();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KubeAuth, PodRetention, IN_CLUSTER_MASTER};
    use kindling_events::spec::{BatchSpec, JobSpec};
    use kindling_events::{Attempt, JobId};

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
    fn credential_like_conf_travels_in_the_secret_not_the_pod_spec() {
        let cfg = cfg();
        let mut l = batch();
        let conf = &mut l.spec.resources.conf;
        conf.insert("spark.hadoop.fs.s3a.secret.key".into(), "s3-s3cret".into());
        conf.insert("spark.executor.instances".into(), "2".into());
        let pod = driver_pod(&cfg, &l).unwrap();
        let spec = pod.spec.unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        assert!(!text.contains("s3-s3cret"), "{text}");
        let args = spec.containers[0].args.clone().unwrap().join(" ");
        assert!(args.contains("--conf spark.executor.instances=2"), "{args}");
        assert!(
            args.contains("--properties-file /opt/kindling/secret/spark.properties"),
            "{args}"
        );
        let mounts = serde_json::to_value(&spec.containers[0].volume_mounts).unwrap();
        assert_eq!(mounts[0]["mountPath"], SECRET_DIR);
        let volumes = serde_json::to_value(&spec.volumes).unwrap();
        assert_eq!(volumes[0]["secret"]["secretName"], "kindling-7-2-secret");

        let secret = crate::pod::driver_secret(&cfg, &l).expect("a secret for the credential");
        let data = secret.data.unwrap();
        let props = String::from_utf8(data[PROPERTIES_KEY].0.clone()).unwrap();
        assert!(
            props.contains("spark.hadoop.fs.s3a.secret.key=s3-s3cret"),
            "{props}"
        );
        assert!(!props.contains("executor.instances"), "{props}");
        assert!(
            !data.contains_key(SECRET_KEY),
            "a batch has no runner secret"
        );
    }

    #[test]
    fn a_batch_without_credentials_has_no_secret_and_no_properties_file() {
        let l = batch();
        assert!(crate::pod::driver_secret(&cfg(), &l).is_none());
        let spec = driver_pod(&cfg(), &l).unwrap().spec.unwrap();
        assert!(spec.volumes.is_none());
        let args = spec.containers[0].args.clone().unwrap();
        assert!(!args.contains(&"--properties-file".to_string()));
    }
}
