//! The request that submits one driver to the master's REST server
//! (`POST /v1/submissions/create`): the `spark-submit` command the worker runs, the driver's
//! Spark properties, its environment and its tag. Pure; no I/O.

use crate::StandaloneConfig;
use kindling_backend::LaunchSpec;
use kindling_events::spec::JobKind;
use serde::Serialize;
use std::collections::BTreeMap;

/// The driver's main class: Spark's own `spark-submit`, run on the worker in client mode.
pub(crate) const SPARK_SUBMIT: &str = "org.apache.spark.deploy.SparkSubmit";
/// The Spark property that tags a driver with `<cluster>:<driver name>`.
pub const TAG_PROPERTY: &str = "spark.kindling.driver";
/// The REST server only requires the field to be set; it does not compare versions.
const CLIENT_SPARK_VERSION: &str = "4.3.0";

/// The body of `POST /v1/submissions/create`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubmission {
    pub action: &'static str,
    pub app_resource: String,
    pub main_class: &'static str,
    pub app_args: Vec<String>,
    pub spark_properties: BTreeMap<String, String>,
    pub environment_variables: BTreeMap<String, String>,
    pub client_spark_version: &'static str,
}

/// The submission for one driver. `master` is the master's RPC URL (`spark://host:7077`).
pub fn submission(cfg: &StandaloneConfig, l: &LaunchSpec, master: &str) -> CreateSubmission {
    let r = &l.spec.resources;
    let mut props = cfg.default_conf.clone();
    props.extend(r.conf.clone());
    props.retain(|k, _| !k.starts_with("kindling."));
    // The typed fields win over conf, as spark-submit's flags do. The driver's memory and
    // cores must be properties: the master places the driver and the worker sizes its JVM.
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
    // `queue` is YARN's: standalone has none.
    let name = l
        .spec
        .name
        .clone()
        .or_else(|| props.get("spark.app.name").cloned())
        .unwrap_or_else(|| l.driver_name.clone());
    props.insert("spark.app.name".into(), name);
    props
        .entry("spark.pyspark.python".into())
        .or_insert_with(|| cfg.python.clone());
    props.insert(TAG_PROPERTY.into(), tag(cfg, &l.driver_name));

    let mut args: Vec<String> = vec![
        "--master".into(),
        master.into(),
        "--deploy-mode".into(),
        "client".into(),
    ];
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
    let mut env: BTreeMap<String, String> = [
        ("KINDLING_DRIVER", tag(cfg, &l.driver_name)),
        ("KINDLING_JOB_ID", l.job.0.to_string()),
        ("KINDLING_ATTEMPT", l.attempt.0.to_string()),
        ("PYSPARK_PYTHON", props["spark.pyspark.python"].clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let app_resource = match &l.spec.kind {
        JobKind::Batch(b) => {
            if let Some(c) = &b.class_name {
                args.push("--class".into());
                args.push(c.clone());
            }
            // The worker's copy of the application, in the driver's directory.
            args.push("{{USER_JAR}}".into());
            args.extend(b.args.iter().cloned());
            fetchable(&b.file)
        }
        JobKind::Session(s) => {
            args.push(cfg.runner.clone());
            env.insert("KINDLING_SESSION_KIND".into(), s.kind.as_str().into());
            fetchable(&cfg.proto)
        }
    };
    if let Some(link) = &l.session {
        env.extend(
            link.route_env()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        env.insert("KINDLING_SECRET".into(), link.secret.clone());
    }
    CreateSubmission {
        action: "CreateSubmissionRequest",
        app_resource,
        main_class: SPARK_SUBMIT,
        app_args: args,
        spark_properties: props,
        environment_variables: env,
        client_spark_version: CLIENT_SPARK_VERSION,
    }
}

pub(crate) fn tag(cfg: &StandaloneConfig, driver_name: &str) -> String {
    format!("{}:{driver_name}", cfg.cluster_id)
}

/// `appResource` as the worker fetches it: a plain path becomes a `file:` URL.
fn fetchable(file: &str) -> String {
    if let Some(path) = file.strip_prefix("local:") {
        return format!("file:{path}");
    }
    if file.contains("://") || file.starts_with("file:") {
        return file.to_string();
    }
    format!("file:{file}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_backend::SessionLink;
    use kindling_events::spec::{BatchSpec, JobSpec, SessionKind, SessionSpec, SparkResources};
    use kindling_events::{Attempt, JobId};
    use std::time::Duration;

    fn cfg() -> StandaloneConfig {
        StandaloneConfig {
            rest_url: "http://m:6066".into(),
            web_ui_url: "http://m:8080".into(),
            cluster_id: "c1".into(),
            default_conf: [
                ("spark.ui.enabled".to_string(), "false".to_string()),
                ("spark.driver.memory".to_string(), "1g".to_string()),
            ]
            .into(),
            python: "/venv/bin/python".into(),
            runner: "/shared/runner/kindling_runner.py".into(),
            proto: "/shared/proto/driver.proto".into(),
            poll_interval: Duration::from_secs(1),
        }
    }

    fn batch() -> LaunchSpec {
        LaunchSpec {
            job: JobId(7),
            attempt: Attempt(2),
            driver_name: "kindling-7-2".into(),
            spec: JobSpec {
                kind: JobKind::Batch(BatchSpec {
                    file: "/apps/job.jar".into(),
                    class_name: Some("com.example.Main".into()),
                    args: vec!["--day".into(), "1".into()],
                }),
                name: None,
                owner: None,
                proxy_user: None,
                resources: SparkResources {
                    driver_memory: Some("2g".into()),
                    driver_cores: Some(2),
                    executor_memory: Some("4g".into()),
                    executor_cores: Some(3),
                    num_executors: Some(5),
                    queue: Some("etl".into()),
                    jars: vec!["/a.jar".into(), "hdfs:///b.jar".into()],
                    py_files: vec!["/deps.zip".into()],
                    files: vec!["/conf.yml".into()],
                    archives: vec!["/env.tgz#env".into()],
                    conf: [
                        ("spark.ui.enabled".to_string(), "true".to_string()),
                        ("spark.app.name".to_string(), "from-conf".to_string()),
                        ("kindling.cluster".to_string(), "default".to_string()),
                    ]
                    .into(),
                },
            },
            session: None,
        }
    }
    #[test]
    fn a_batch_becomes_a_spark_submit_run_on_the_worker() {
        let s = submission(&cfg(), &batch(), "spark://m:7077");
        assert_eq!(s.action, "CreateSubmissionRequest");
        assert_eq!(s.main_class, "org.apache.spark.deploy.SparkSubmit");
        assert_eq!(s.app_resource, "file:/apps/job.jar");
        assert_eq!(
            s.app_args.join(" "),
            "--master spark://m:7077 --deploy-mode client --jars /a.jar,hdfs:///b.jar \
             --py-files /deps.zip --files /conf.yml --archives /env.tgz#env \
             --class com.example.Main {{USER_JAR}} --day 1"
        );
        let p = &s.spark_properties;
        // Typed resources win over conf, the job's conf over the defaults.
        assert_eq!(p["spark.driver.memory"], "2g");
        assert_eq!(p["spark.driver.cores"], "2");
        assert_eq!(p["spark.executor.memory"], "4g");
        assert_eq!(p["spark.executor.cores"], "3");
        assert_eq!(p["spark.executor.instances"], "5");
        assert_eq!(p["spark.ui.enabled"], "true");
        assert_eq!(p["spark.app.name"], "from-conf");
        assert_eq!(p["spark.pyspark.python"], "/venv/bin/python");
        assert_eq!(p[TAG_PROPERTY], "c1:kindling-7-2");
        assert!(!p.contains_key("kindling.cluster"));
        assert!(!p.keys().any(|k| k.contains("queue")));
        let e = &s.environment_variables;
        assert_eq!(e["KINDLING_DRIVER"], "c1:kindling-7-2");
        assert_eq!(e["KINDLING_JOB_ID"], "7");
        assert_eq!(e["KINDLING_ATTEMPT"], "2");
        assert!(!e.contains_key("KINDLING_SECRET"));

        let json = serde_json::to_value(&s).unwrap();
        for key in [
            "action",
            "appResource",
            "mainClass",
            "appArgs",
            "sparkProperties",
            "environmentVariables",
            "clientSparkVersion",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
    }

    #[test]
    fn the_app_name_is_the_jobs_or_else_the_drivers() {
        let mut l = batch();
        l.spec.name = Some("nightly".into());
        let s = submission(&cfg(), &l, "spark://m:7077");
        assert_eq!(s.spark_properties["spark.app.name"], "nightly");
        l.spec.name = None;
        l.spec.resources.conf.clear();
        let s = submission(&cfg(), &l, "spark://m:7077");
        assert_eq!(s.spark_properties["spark.app.name"], "kindling-7-2");
    }

    #[test]
    fn a_session_runs_the_runner_with_its_proto_as_the_app_resource() {
        let mut l = batch();
        l.spec.kind = JobKind::Session(SessionSpec {
            kind: SessionKind::Sql,
            heartbeat_timeout_secs: 60,
            ttl: None,
            idle_timeout: None,
        });
        l.spec.resources = SparkResources::default();
        l.session = Some(SessionLink {
            endpoints: "node1:7000,node2:7000".into(),
            kafka: None,
            tls: None,
            secret: "s3cret".into(),
        });
        let s = submission(&cfg(), &l, "spark://m:7077");
        assert_eq!(s.app_resource, "file:/shared/proto/driver.proto");
        assert_eq!(
            s.app_args.last().map(String::as_str),
            Some("/shared/runner/kindling_runner.py")
        );
        let e = &s.environment_variables;
        assert_eq!(e["KINDLING_ENDPOINTS"], "node1:7000,node2:7000");
        assert_eq!(e["KINDLING_SECRET"], "s3cret");
        assert_eq!(e["KINDLING_SESSION_KIND"], "sql");
        assert_eq!(e["PYSPARK_PYTHON"], "/venv/bin/python");
        // The secret stays out of the properties, which the worker prints in the driver's log.
        assert!(!s.spark_properties.values().any(|v| v.contains("s3cret")));
    }

    #[test]
    fn app_resources_are_urls_the_worker_can_fetch() {
        assert_eq!(fetchable("/a/b.py"), "file:/a/b.py");
        assert_eq!(fetchable("local:/a/b.py"), "file:/a/b.py");
        assert_eq!(fetchable("file:///a/b.py"), "file:///a/b.py");
        assert_eq!(fetchable("hdfs://nn/a.jar"), "hdfs://nn/a.jar");
        assert_eq!(fetchable("http://node/r.py"), "http://node/r.py");
    }
}
