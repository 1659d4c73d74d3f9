//! The `spark-submit --master yarn --deploy-mode cluster` command line of one driver attempt:
//! arguments, environment, and the properties file that carries its secrets. Pure
//! functions of the configuration and the job; running it is [`super::submit`]'s.
//!
//! The application carries two tags (`spark.yarn.tags`): `kindling-cluster-<cluster id>` and
//! `kindling-driver-<driver name>`. They are how a driver is found again by the
//! ResourceManager after a restart, since YARN has no names that are unique.

use super::config::{YarnAuth, YarnConfig};
use kindling_backend::{spark_properties, LaunchSpec};
use kindling_events::spec::JobKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Conf Kindling sets for every job unless the cluster's or the job's conf says otherwise:
/// Kindling's attempts are the unit of retry, so YARN must not run a second ApplicationMaster
/// (a second driver) under the same attempt.
const KINDLING_DEFAULTS: &[(&str, &str)] = &[("spark.yarn.maxAppAttempts", "1")];
/// Where the session secret goes: the ApplicationMaster's (the driver's) environment.
pub const SECRET_ENV_CONF: &str = "spark.yarn.appMasterEnv.KINDLING_SECRET";

/// One `spark-submit` run: its arguments, the environment it adds, and the properties file
/// it reads (when there are credential-like conf or a session's secret, which must not be on
/// a command line that every user of the node can read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub properties: Option<String>,
}

/// The `driver.proto` the node installs beside the runner.
pub fn runner_proto(runner: &Path) -> PathBuf {
    runner
        .parent()
        .unwrap_or(Path::new("."))
        .join("kindling/driver/v1/driver.proto")
}

/// The command line for a driver. `spark_defaults` is the text of the Spark installation's
/// `spark-defaults.conf`, and `properties_file` where the session's properties go: a
/// `--properties-file` replaces `spark-defaults.conf`, so its text comes first in it.
pub fn submission(
    cfg: &YarnConfig,
    l: &LaunchSpec,
    spark_defaults: Option<&str>,
    properties_file: &Path,
) -> Submission {
    let r = &l.spec.resources;
    let mut conf: BTreeMap<String, String> = KINDLING_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    conf.extend(cfg.default_conf.clone());
    conf.extend(r.conf.clone());
    // Kindling's own keys, and what the flags below decide, stay out of the conf.
    conf.retain(|k, _| {
        !k.starts_with("kindling.")
            && !matches!(
                k.as_str(),
                "spark.master" | "spark.submit.deployMode" | "spark.app.name" | SECRET_ENV_CONF
            )
    });
    let mut tags: Vec<String> = conf
        .get("spark.yarn.tags")
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    tags.retain(|t| !t.is_empty());
    for t in [cfg.cluster_tag(), cfg.driver_tag(&l.driver_name)] {
        if !tags.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
            tags.push(t);
        }
    }
    let mut managed: Vec<(&str, String)> = vec![
        ("spark.yarn.tags", tags.join(",")),
        ("spark.yarn.submit.waitAppCompletion", "false".into()),
        (
            "spark.yarn.appMasterEnv.KINDLING_DRIVER",
            format!("{}:{}", cfg.cluster_id, l.driver_name),
        ),
        (
            "spark.yarn.appMasterEnv.KINDLING_JOB_ID",
            l.job.0.to_string(),
        ),
        (
            "spark.yarn.appMasterEnv.KINDLING_ATTEMPT",
            l.attempt.0.to_string(),
        ),
    ];
    if let JobKind::Session(s) = &l.spec.kind {
        managed.push((
            "spark.yarn.appMasterEnv.KINDLING_SESSION_KIND",
            s.kind.as_str().into(),
        ));
    }
    for (k, v) in managed {
        conf.insert(k.into(), v);
    }
    // The driver's route back to the cluster: gateway endpoints, or its Kafka topics.
    if let Some(link) = &l.session {
        for (name, value) in link.route_env() {
            conf.insert(format!("spark.yarn.appMasterEnv.{name}"), value);
        }
    }

    let mut a: Vec<String> = vec![
        "--master".into(),
        "yarn".into(),
        "--deploy-mode".into(),
        "cluster".into(),
        "--name".into(),
        l.driver_name.clone(),
    ];
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.into());
            a.push(v);
        }
    };
    opt("--queue", r.queue.clone().or_else(|| cfg.queue.clone()));
    opt("--proxy-user", l.spec.proxy_user.clone());
    opt("--driver-memory", r.driver_memory.clone());
    opt("--driver-cores", r.driver_cores.map(|c| c.to_string()));
    opt("--executor-memory", r.executor_memory.clone());
    opt("--executor-cores", r.executor_cores.map(|c| c.to_string()));
    opt("--num-executors", r.num_executors.map(|c| c.to_string()));
    let mut files = r.files.clone();
    if l.spec.is_session() {
        // Lands as a flat `driver.proto` in the driver's working directory, where the
        // runner looks for it.
        files.push(runner_proto(&cfg.runner).display().to_string());
    }
    for (flag, list) in [
        ("--jars", &r.jars),
        ("--py-files", &r.py_files),
        ("--files", &files),
        ("--archives", &r.archives),
    ] {
        if !list.is_empty() {
            a.push(flag.into());
            a.push(list.join(","));
        }
    }
    // What must not be on the command line: credential-like conf, and a session's secret.
    let mut private: BTreeMap<String, String> = BTreeMap::new();
    conf.retain(|k, v| {
        let secret = spark_properties::is_secret(k);
        if secret {
            private.insert(k.clone(), v.clone());
        }
        !secret
    });
    if let Some(link) = &l.session {
        private.insert(SECRET_ENV_CONF.into(), link.secret.clone());
    }
    let properties =
        (!private.is_empty()).then(|| spark_properties::text(spark_defaults, &private));
    if properties.is_some() {
        a.push("--properties-file".into());
        a.push(properties_file.display().to_string());
    }
    for (k, v) in conf {
        a.push("--conf".into());
        a.push(format!("{k}={v}"));
    }
    match &l.spec.kind {
        JobKind::Batch(b) => {
            if let Some(c) = &b.class_name {
                a.push("--class".into());
                a.push(c.clone());
            }
            a.push(b.file.clone());
            a.extend(b.args.iter().cloned());
        }
        JobKind::Session(_) => a.push(cfg.runner.display().to_string()),
    }

    let mut env = BTreeMap::new();
    env.insert("SPARK_HOME".into(), cfg.spark_home.display().to_string());
    let conf_dir = cfg.hadoop_conf_dir.display().to_string();
    env.insert("HADOOP_CONF_DIR".into(), conf_dir.clone());
    // spark-submit reads both; one left from the node's environment would mix clusters.
    env.insert("YARN_CONF_DIR".into(), conf_dir);
    if let YarnAuth::Simple { user } = &cfg.auth {
        env.insert("HADOOP_USER_NAME".into(), user.clone());
    }
    Submission {
        args: a,
        env,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_LOG_WAIT, DEFAULT_POLL_INTERVAL, DEFAULT_SUBMIT_TIMEOUT};
    use kindling_backend::SessionLink;
    use kindling_events::spec::{BatchSpec, JobSpec, SessionKind, SessionSpec, SparkResources};
    use kindling_events::{Attempt, JobId};

    fn cfg() -> YarnConfig {
        YarnConfig {
            name: "hadoop-east".into(),
            cluster_id: "c1".into(),
            spark_home: "/opt/spark".into(),
            hadoop_conf_dir: "/etc/hadoop/east".into(),
            resource_managers: vec!["http://rm1:8088".into()],
            queue: Some("default-q".into()),
            auth: YarnAuth::Simple {
                user: "kindling".into(),
            },
            default_conf: [
                ("spark.ui.enabled".to_string(), "false".to_string()),
                ("spark.yarn.maxAppAttempts".to_string(), "2".to_string()),
            ]
            .into(),
            logs_dir: "/data/logs".into(),
            runner: "/data/runner/kindling_runner.py".into(),
            log_server_url: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            submit_timeout: DEFAULT_SUBMIT_TIMEOUT,
            log_wait: DEFAULT_LOG_WAIT,
        }
    }

    fn batch() -> LaunchSpec {
        LaunchSpec {
            job: JobId(7),
            attempt: Attempt(2),
            driver_name: "kindling-7-2".into(),
            spec: JobSpec {
                kind: JobKind::Batch(BatchSpec {
                    file: "hdfs:///apps/job.jar".into(),
                    class_name: Some("com.example.Main".into()),
                    args: vec!["--day".into(), "1".into()],
                }),
                name: Some("nightly".into()),
                owner: Some("ann".into()),
                proxy_user: Some("ann".into()),
                resources: SparkResources {
                    driver_memory: Some("2g".into()),
                    driver_cores: Some(2),
                    executor_memory: Some("4g".into()),
                    executor_cores: Some(3),
                    num_executors: Some(5),
                    queue: Some("etl".into()),
                    jars: vec!["/a.jar".into()],
                    py_files: vec![],
                    files: vec!["/conf.yml".into()],
                    archives: vec![],
                    conf: [
                        ("spark.ui.enabled".to_string(), "true".to_string()),
                        ("spark.yarn.tags".to_string(), "team-a".to_string()),
                        ("spark.master".to_string(), "local[*]".to_string()),
                        ("kindling.cluster".to_string(), "east".to_string()),
                    ]
                    .into(),
                },
            },
            session: None,
        }
    }

    #[test]
    fn a_batch_becomes_a_cluster_mode_submission_tagged_for_finding_it_again() {
        let s = submission(&cfg(), &batch(), None, Path::new("/unused"));
        let joined = s.args.join(" ");
        assert!(
            joined.starts_with(
                "--master yarn --deploy-mode cluster --name kindling-7-2 --queue etl \
                 --proxy-user ann --driver-memory 2g --driver-cores 2 --executor-memory 4g \
                 --executor-cores 3 --num-executors 5 --jars /a.jar --files /conf.yml --conf "
            ),
            "{joined}"
        );
        assert!(
            joined.ends_with("--class com.example.Main hdfs:///apps/job.jar --day 1"),
            "{joined}"
        );
        let conf: Vec<&str> = s
            .args
            .windows(2)
            .filter(|w| w[0] == "--conf")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            conf,
            [
                "spark.ui.enabled=true",
                "spark.yarn.appMasterEnv.KINDLING_ATTEMPT=2",
                "spark.yarn.appMasterEnv.KINDLING_DRIVER=c1:kindling-7-2",
                "spark.yarn.appMasterEnv.KINDLING_JOB_ID=7",
                "spark.yarn.maxAppAttempts=2",
                "spark.yarn.submit.waitAppCompletion=false",
                "spark.yarn.tags=team-a,kindling-cluster-c1,kindling-driver-kindling-7-2",
            ]
        );
        assert_eq!(s.properties, None);
        assert_eq!(s.env["HADOOP_CONF_DIR"], "/etc/hadoop/east");
        assert_eq!(s.env["YARN_CONF_DIR"], "/etc/hadoop/east");
        assert_eq!(s.env["HADOOP_USER_NAME"], "kindling");
    }

    #[test]
    fn the_clusters_queue_and_kindlings_defaults_apply_when_the_job_says_nothing() {
        let mut c = cfg();
        c.default_conf.clear();
        let mut l = batch();
        l.spec.resources = SparkResources::default();
        l.spec.proxy_user = None;
        let s = submission(&c, &l, None, Path::new("/unused"));
        let joined = s.args.join(" ");
        assert!(joined.contains("--queue default-q"), "{joined}");
        assert!(
            joined.contains("--conf spark.yarn.maxAppAttempts=1"),
            "{joined}"
        );
        assert!(!joined.contains("--proxy-user"), "{joined}");
    }

    #[test]
    fn a_session_ships_the_runner_and_keeps_its_secret_off_the_command_line() {
        let mut l = batch();
        l.spec.kind = JobKind::Session(SessionSpec {
            kind: SessionKind::Pyspark,
            heartbeat_timeout_secs: 60,
            ttl: None,
            idle_timeout: None,
        });
        l.spec.resources = SparkResources::default();
        l.session = Some(SessionLink {
            endpoints: "node1:7001,node2:7001".into(),
            secret: " s3cr\\et".into(),
            kafka: None,
            tls: None,
        });
        let props = Path::new("/data/logs/hadoop-east/submit/kindling-7-2.properties");
        let s = submission(
            &cfg(),
            &l,
            Some("spark.yarn.archive hdfs:///spark/libs.zip"),
            props,
        );
        let joined = s.args.join(" ");
        assert!(!joined.contains("s3cr"), "{joined}");
        assert!(
            joined.contains(&format!("--properties-file {}", props.display())),
            "{joined}"
        );
        assert!(
            joined.contains("--files /data/runner/kindling/driver/v1/driver.proto"),
            "{joined}"
        );
        assert!(
            joined.contains(
                "--conf spark.yarn.appMasterEnv.KINDLING_ENDPOINTS=node1:7001,node2:7001"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("--conf spark.yarn.appMasterEnv.KINDLING_SESSION_KIND=pyspark"),
            "{joined}"
        );
        assert!(
            joined.ends_with(" /data/runner/kindling_runner.py"),
            "{joined}"
        );
        assert_eq!(
            s.properties.as_deref(),
            Some(
                "spark.yarn.archive hdfs:///spark/libs.zip\n\
                 # Added by Kindling for this driver.\n\
                 spark.yarn.appMasterEnv.KINDLING_SECRET=\\ s3cr\\\\et\n"
            )
        );
    }

    #[test]
    fn a_batch_keeps_credential_like_conf_off_the_command_line() {
        let mut l = batch();
        let conf = &mut l.spec.resources.conf;
        conf.insert("spark.hadoop.fs.s3a.secret.key".into(), "s3-SECRET".into());
        let props = Path::new("/data/x.properties");
        let s = submission(&cfg(), &l, None, props);
        let joined = s.args.join(" ");
        assert!(!joined.contains("s3-SECRET"), "{joined}");
        assert!(
            joined.contains("--properties-file /data/x.properties"),
            "{joined}"
        );
        assert_eq!(
            s.properties.as_deref(),
            Some(
                "# Added by Kindling for this driver.\nspark.hadoop.fs.s3a.secret.key=s3-SECRET\n"
            )
        );
        assert_eq!(submission(&cfg(), &batch(), None, props).properties, None);
    }
}
