//! The `spark-submit` command line of a driver: the job's resources, files and conf as
//! `spark-submit` flags, with the event log turned on so the application id can be learned.

use crate::LocalBackend;
use kindling_backend::spark_properties as properties;
use kindling_backend::LaunchSpec;
use kindling_events::spec::JobKind;
use std::collections::BTreeMap;

/// The properties file of a driver with credential-like conf, in its directory.
pub const PROPERTIES_FILE: &str = "spark-secrets.properties";

impl LocalBackend {
    /// The `spark-submit` argument list for a job, and the text of the properties file it
    /// names, if the job has credential-like conf (see [`properties`]).
    pub fn submit_args(&self, l: &LaunchSpec) -> (Vec<String>, Option<String>) {
        let r = &l.spec.resources;
        let mut a: Vec<String> = vec![
            "--master".into(),
            self.cfg.master.clone(),
            "--deploy-mode".into(),
            "client".into(),
            "--name".into(),
            l.spec.name.clone().unwrap_or_else(|| l.driver_name.clone()),
        ];
        let mut opt = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v.clone());
            }
        };
        opt("--driver-memory", &r.driver_memory);
        opt("--executor-memory", &r.executor_memory);
        opt("--driver-cores", &r.driver_cores.map(|c| c.to_string()));
        opt("--executor-cores", &r.executor_cores.map(|c| c.to_string()));
        opt("--num-executors", &r.num_executors.map(|c| c.to_string()));
        opt("--queue", &r.queue);
        for (flag, list) in [
            ("--jars", &r.jars),
            ("--py-files", &r.py_files),
            ("--files", &r.files),
            ("--archives", &r.archives),
        ] {
            if !list.is_empty() {
                a.push(flag.into());
                a.push(list.join(","));
            }
        }
        let mut conf = self.cfg.default_conf.clone();
        let dir = self.dir(&l.driver_name);
        if !r.conf.contains_key("spark.eventLog.enabled") {
            // Spark names the event log after the application id: that is how a local
            // driver, which never prints its id, tells us what it is.
            conf.insert("spark.eventLog.enabled".into(), "true".into());
            conf.insert(
                "spark.eventLog.dir".into(),
                format!("file://{}", dir.join("eventlog").display()),
            );
        }
        conf.extend(r.conf.clone());
        let mut secrets = BTreeMap::new();
        for (k, v) in conf {
            if k.starts_with("kindling.") {
                continue;
            }
            if properties::is_secret(&k) {
                secrets.insert(k, v);
                continue;
            }
            a.push("--conf".into());
            a.push(format!("{k}={v}"));
        }
        let properties = (!secrets.is_empty()).then(|| {
            let defaults = properties::spark_defaults(&self.cfg.spark_home);
            a.push("--properties-file".into());
            a.push(dir.join(PROPERTIES_FILE).display().to_string());
            properties::text(defaults.as_deref(), &secrets)
        });
        match &l.spec.kind {
            JobKind::Batch(b) => {
                if let Some(c) = &b.class_name {
                    a.push("--class".into());
                    a.push(c.clone());
                }
                a.push(b.file.clone());
                a.extend(b.args.iter().cloned());
            }
            JobKind::Session(_) => a.push(self.cfg.runner.display().to_string()),
        }
        (a, properties)
    }
}

#[cfg(test)]
mod tests {
    use crate::{LocalBackend, LocalConfig};
    use kindling_backend::LaunchSpec;
    use kindling_events::spec::{BatchSpec, JobKind, JobSpec, SparkResources};
    use kindling_events::{Attempt, JobId};
    use tokio::sync::mpsc;

    fn backend() -> LocalBackend {
        let (tx, _rx) = mpsc::unbounded_channel();
        LocalBackend::new(
            LocalConfig {
                spark_home: "/spark".into(),
                python: "/venv/bin/python".into(),
                master: "local[3]".into(),
                drivers_dir: "/data/drivers".into(),
                runner: "/data/runner/kindling_runner.py".into(),
                default_conf: [("spark.ui.enabled".to_string(), "false".to_string())].into(),
                cluster_id: "c1".into(),
            },
            tx,
        )
    }

    #[test]
    fn request_fields_map_to_spark_submit() {
        let spec = JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: "/apps/job.jar".into(),
                class_name: Some("com.example.Main".into()),
                args: vec!["--day".into(), "1".into()],
            }),
            name: Some("nightly".into()),
            owner: None,
            proxy_user: Some("ann".into()),
            resources: SparkResources {
                driver_memory: Some("2g".into()),
                driver_cores: Some(2),
                executor_memory: Some("4g".into()),
                executor_cores: Some(3),
                num_executors: Some(5),
                queue: Some("etl".into()),
                jars: vec!["/a.jar".into(), "/b.jar".into()],
                py_files: vec!["/deps.zip".into()],
                files: vec!["/conf.yml".into()],
                archives: vec!["/env.tgz#env".into()],
                conf: [
                    ("spark.ui.enabled".to_string(), "true".to_string()),
                    ("kindling.cluster".to_string(), "default".to_string()),
                    (
                        "spark.hadoop.fs.s3a.secret.key".to_string(),
                        "s3-SECRET".to_string(),
                    ),
                ]
                .into(),
            },
        };
        let (args, properties) = backend().submit_args(&LaunchSpec {
            job: JobId(7),
            attempt: Attempt(1),
            driver_name: "kindling-7-1".into(),
            spec,
            session: None,
        });
        let joined = args.join(" ");
        for expected in [
            "--master local[3] --deploy-mode client --name nightly",
            "--driver-memory 2g",
            "--executor-memory 4g",
            "--driver-cores 2",
            "--executor-cores 3",
            "--num-executors 5",
            "--queue etl",
            "--jars /a.jar,/b.jar",
            "--py-files /deps.zip",
            "--files /conf.yml",
            "--archives /env.tgz#env",
            "--conf spark.eventLog.dir=file:///data/drivers/kindling-7-1/eventlog",
            "--class com.example.Main /apps/job.jar --day 1",
        ] {
            assert!(
                joined.contains(expected),
                "{expected:?} missing from {joined}"
            );
        }
        // The job's conf wins over the node's default; Kindling's own keys stay out of Spark.
        assert!(joined.contains("--conf spark.ui.enabled=true"));
        assert!(!joined.contains("spark.ui.enabled=false"));
        assert!(!joined.contains("kindling.cluster"));
        assert!(
            joined.ends_with("/apps/job.jar --day 1"),
            "application args come last"
        );
        // A credential goes to the private properties file, not the command line.
        assert!(!joined.contains("s3-SECRET"), "{joined}");
        assert!(joined
            .contains("--properties-file /data/drivers/kindling-7-1/spark-secrets.properties"));
        assert_eq!(
            properties.as_deref(),
            Some(
                "# Added by Kindling for this driver.\nspark.hadoop.fs.s3a.secret.key=s3-SECRET\n"
            )
        );
    }
}
