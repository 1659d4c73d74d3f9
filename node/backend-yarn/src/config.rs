//! The configuration of one YARN cluster, and what is checked about it before the backend
//! starts: everything here is local (paths, URL shapes, the authentication method); nothing
//! talks to the cluster. Spark conf values that look like credentials never reach a log line:
//! [`YarnConfig`]'s `Debug` redacts them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How often watched applications are polled, unless configured.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long one `spark-submit` may take, unless configured: it returns once YARN accepted
/// the application (`spark.yarn.submit.waitAppCompletion=false`), after uploading the job's
/// local files to the cluster's staging directory.
pub const DEFAULT_SUBMIT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the end of an application waits for its log to be copied, unless configured.
pub const DEFAULT_LOG_WAIT: Duration = Duration::from_secs(30);
/// YARN refuses application tags longer than this (`YarnConfiguration.APPLICATION_MAX_TAG_LENGTH`).
pub const MAX_TAG_LENGTH: usize = 100;

/// One YARN cluster Kindling launches drivers on. One backend instance per cluster.
#[derive(Clone)]
pub struct YarnConfig {
    /// Kindling's name for this YARN cluster (the cluster registry's): every error and log
    /// line about the cluster names it.
    pub name: String,
    /// The Kindling cluster's id. Applications carry it as the tag
    /// `kindling-cluster-<id>`, so two Kindling clusters sharing a YARN cluster never take
    /// each other's applications for their own. Letters, digits, `-`, `_` and `.` only.
    pub cluster_id: String,
    /// The Spark installation whose `bin/spark-submit` submits to this cluster.
    pub spark_home: PathBuf,
    /// The cluster's client configuration (`core-site.xml`, `yarn-site.xml`,
    /// `hdfs-site.xml`), given to `spark-submit` as `HADOOP_CONF_DIR` (and `YARN_CONF_DIR`).
    pub hadoop_conf_dir: PathBuf,
    /// The ResourceManagers' web addresses (`yarn.resourcemanager.webapp.address`), e.g.
    /// `http://rm1.example.com:8088`. With HA, all of them: they are tried in order, and a
    /// standby's redirect to the active one is followed.
    pub resource_managers: Vec<String>,
    /// The YARN queue of jobs that name none.
    pub queue: Option<String>,
    pub auth: YarnAuth,
    /// Spark conf applied to every job before the job's own.
    pub default_conf: BTreeMap<String, String>,
    /// Where driver logs are copied (`<logs_dir>/<name>/`), with each driver's
    /// `spark-submit` output and how it ended.
    pub logs_dir: PathBuf,
    /// The session runner (`kindling_runner.py`) on this node, with
    /// `kindling/driver/v1/driver.proto` beside it (as the node installs it); `spark-submit`
    /// uploads both.
    pub runner: PathBuf,
    /// The cluster's `yarn.log.server.url` (e.g. `http://jhs.example.com:19888/jobhistory/logs`).
    /// When set, an ended driver's log is read from the aggregated copy there once YARN has
    /// aggregated it; otherwise through the NodeManager's link, which redirects there itself.
    pub log_server_url: Option<String>,
    pub poll_interval: Duration,
    pub submit_timeout: Duration,
    /// How long the report of an application's end waits for its log to be copied
    /// (aggregation to finish, the log server to answer).
    pub log_wait: Duration,
}

/// How the backend identifies itself to the ResourceManager (REST) and to YARN
/// (`spark-submit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YarnAuth {
    /// Hadoop's simple authentication: REST requests carry `user.name=<user>`, and
    /// `spark-submit` runs with `HADOOP_USER_NAME=<user>`, so the applications Kindling
    /// submits are that user's and that user may kill them.
    Simple { user: String },
    /// Kerberos (SPNEGO for REST, a keytab for `spark-submit`). Not supported yet: the
    /// backend refuses the configuration with a clear error.
    Kerberos { principal: String, keytab: PathBuf },
}

impl YarnAuth {
    /// The user applications are submitted as and REST requests are made for.
    pub fn user(&self) -> &str {
        match self {
            YarnAuth::Simple { user } => user,
            YarnAuth::Kerberos { principal, .. } => principal,
        }
    }
}

/// Whether a Spark property holds a credential (Spark's own `spark.redaction.regex` default:
/// `(?i)secret|password|token|access[.]key`).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "token", "access.key"]
        .iter()
        .any(|w| k.contains(w))
}

impl fmt::Debug for YarnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conf: BTreeMap<&str, &str> = self
            .default_conf
            .iter()
            .map(|(k, v)| {
                let v = if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("YarnConfig")
            .field("name", &self.name)
            .field("cluster_id", &self.cluster_id)
            .field("spark_home", &self.spark_home)
            .field("hadoop_conf_dir", &self.hadoop_conf_dir)
            .field("resource_managers", &self.resource_managers)
            .field("queue", &self.queue)
            .field("auth", &self.auth)
            .field("default_conf", &conf)
            .field("logs_dir", &self.logs_dir)
            .field("runner", &self.runner)
            .field("log_server_url", &self.log_server_url)
            .field("poll_interval", &self.poll_interval)
            .field("submit_timeout", &self.submit_timeout)
            .field("log_wait", &self.log_wait)
            .finish()
    }
}

impl YarnConfig {
    /// The tag every application of this Kindling cluster carries (YARN lowercases tags).
    pub fn cluster_tag(&self) -> String {
        format!("kindling-cluster-{}", self.cluster_id.to_ascii_lowercase())
    }

    /// The tag of one driver's application.
    pub fn driver_tag(&self, driver_name: &str) -> String {
        format!("kindling-driver-{}", driver_name.to_ascii_lowercase())
    }

    /// The ResourceManager URLs without trailing slashes.
    pub fn rm_urls(&self) -> Vec<String> {
        self.resource_managers
            .iter()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .collect()
    }

    /// Checks what can be checked without the cluster. The message names the cluster and
    /// says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err("a YARN cluster needs a name".into());
        }
        let id = &self.cluster_id;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "cluster {name}: the cluster id {id:?} must be letters, digits, '-', '_' or '.' \
                 (it becomes a YARN application tag)"
            ));
        }
        if self.cluster_tag().len() > MAX_TAG_LENGTH {
            return Err(format!(
                "cluster {name}: the cluster id {id:?} is too long for a YARN application tag \
                 ({MAX_TAG_LENGTH} characters at most, with the prefix kindling-cluster-)"
            ));
        }
        match &self.auth {
            YarnAuth::Simple { user } if user.trim().is_empty() => {
                return Err(format!(
                    "cluster {name}: simple authentication needs a user name (user.name)"
                ))
            }
            YarnAuth::Simple { .. } => {}
            YarnAuth::Kerberos { .. } => {
                return Err(format!(
                    "cluster {name}: Kerberos (SPNEGO) authentication to YARN is not supported \
                     yet; use simple authentication (a user.name) on a cluster without Kerberos"
                ))
            }
        }
        if self.resource_managers.is_empty() {
            return Err(format!(
                "cluster {name}: no ResourceManager URL (e.g. http://rm1.example.com:8088)"
            ));
        }
        let urls = self
            .rm_urls()
            .into_iter()
            .map(|u| ("ResourceManager", u))
            .chain(
                self.log_server_url
                    .iter()
                    .map(|u| ("log server", u.clone())),
            );
        for (what, url) in urls {
            match reqwest::Url::parse(&url) {
                Ok(u) if u.scheme() == "http" && u.host().is_some() => {}
                Ok(u) if u.scheme() == "https" => {
                    return Err(format!(
                    "cluster {name}: the {what} URL {url} uses https, which this build does not \
                         support yet (its HTTP client has no TLS); use the http address"
                ))
                }
                _ => {
                    return Err(format!(
                        "cluster {name}: the {what} URL {url:?} is not an http:// URL such as \
                         http://rm1.example.com:8088"
                    ))
                }
            }
        }
        if !self.hadoop_conf_dir.is_dir() {
            return Err(format!(
                "cluster {name}: HADOOP_CONF_DIR {} is not a directory (it holds the cluster's \
                 core-site.xml and yarn-site.xml)",
                self.hadoop_conf_dir.display()
            ));
        }
        let submit = self.spark_home.join("bin/spark-submit");
        if !submit.is_file() {
            return Err(format!(
                "cluster {name}: {} does not exist (spark_home must be a Spark installation)",
                submit.display()
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(format!(
                "cluster {name}: the poll interval must be above zero"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid configuration on real directories (a fake `spark-submit` file).
    fn cfg(dir: &std::path::Path) -> YarnConfig {
        std::fs::create_dir_all(dir.join("spark/bin")).unwrap();
        std::fs::write(dir.join("spark/bin/spark-submit"), "").unwrap();
        std::fs::create_dir_all(dir.join("hadoop-conf")).unwrap();
        YarnConfig {
            name: "hadoop-east".into(),
            cluster_id: "c1".into(),
            spark_home: dir.join("spark"),
            hadoop_conf_dir: dir.join("hadoop-conf"),
            resource_managers: vec!["http://rm1.example.com:8088/".into()],
            queue: None,
            auth: YarnAuth::Simple {
                user: "alice".into(),
            },
            default_conf: BTreeMap::new(),
            logs_dir: dir.join("logs"),
            runner: dir.join("runner/kindling_runner.py"),
            log_server_url: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            submit_timeout: DEFAULT_SUBMIT_TIMEOUT,
            log_wait: DEFAULT_LOG_WAIT,
        }
    }

    fn refused(c: &YarnConfig, words: &[&str]) {
        let e = c.validate().unwrap_err();
        assert!(e.contains("cluster hadoop-east"), "{e}");
        for w in words {
            assert!(e.contains(w), "{w:?} missing from {e}");
        }
    }

    #[test]
    fn a_valid_configuration_passes_and_normalises_urls_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.cluster_id = "Prod.East_1".into();
        c.validate().unwrap();
        assert_eq!(c.rm_urls(), ["http://rm1.example.com:8088"]);
        assert_eq!(c.cluster_tag(), "kindling-cluster-prod.east_1");
        assert_eq!(c.driver_tag("kindling-7-1"), "kindling-driver-kindling-7-1");
    }

    #[test]
    fn kerberos_is_refused_as_not_supported_yet() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.auth = YarnAuth::Kerberos {
            principal: "kindling@EXAMPLE.COM".into(),
            keytab: "/etc/security/kindling.keytab".into(),
        };
        refused(&c, &["Kerberos", "not supported yet"]);
    }

    #[test]
    fn bad_urls_ids_and_paths_are_refused_with_what_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.resource_managers = vec!["https://rm1.example.com:8090".into()];
        refused(&c, &["https", "not support"]);
        c.resource_managers = vec!["rm1.example.com:8088".into()];
        refused(&c, &["not an http:// URL"]);
        c.resource_managers = vec![];
        refused(&c, &["no ResourceManager URL"]);

        let mut c = cfg(dir.path());
        c.cluster_id = "a,b".into();
        refused(&c, &["cluster id", "tag"]);
        c.cluster_id = "x".repeat(90);
        refused(&c, &["too long"]);

        let mut c = cfg(dir.path());
        c.auth = YarnAuth::Simple { user: " ".into() };
        refused(&c, &["user name"]);

        let mut c = cfg(dir.path());
        c.hadoop_conf_dir = dir.path().join("missing");
        refused(&c, &["HADOOP_CONF_DIR", "missing"]);
        let mut c = cfg(dir.path());
        c.spark_home = dir.path().join("nospark");
        refused(&c, &["nospark/bin/spark-submit"]);
        let mut c = cfg(dir.path());
        c.log_server_url = Some("https://jhs:19890/jobhistory/logs".into());
        refused(&c, &["log server URL"]);
    }

    #[test]
    fn debug_output_never_shows_secret_conf() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.default_conf
            .insert("spark.hadoop.fs.s3a.secret.key".into(), "s3cr3t-key".into());
        c.default_conf
            .insert("spark.yarn.queue".into(), "etl".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-key"), "{shown}");
        assert!(shown.contains("\"spark.yarn.queue\": \"etl\""), "{shown}");
    }
}
