//! The bodies that create things: Livy's `POST /batches` and `POST /sessions` field for
//! field, the native API's versions of them (the same with a `cluster`), statements and
//! completions. A create body becomes a domain [`JobSpec`] here, with messages that name the
//! field and the fix.

use crate::Invalid;
use kindling_events::spec::{
    BatchSpec, DurationSpec, JobKind, JobSpec, SessionKind, SessionSpec, SparkResources,
};
use kindling_events::spec_check::{MAX_CORES, MAX_EXECUTORS, MAX_TIMEOUT_MS};
use kindling_events::CLUSTER_CONF_KEY;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Declares a Livy create-request body: its own fields plus the fields batches and sessions
/// share; and the native API's body, the same with a `cluster` field, which converts into
/// the Livy one. (Not `#[serde(flatten)]`: that would hide the failing field's name from
/// errors.)
macro_rules! livy_request {
    ($(#[$m:meta])* $name:ident, $(#[$nm:meta])* $native:ident { $($(#[$fm:meta])* $field:ident: $ty:ty,)* }) => {
        livy_request!(@one $(#[$m])* $name { $($(#[$fm])* $field: $ty,)* });
        impl $name {
            fn common(&mut self) -> CommonFields {
                CommonFields {
                    jars: std::mem::take(&mut self.jars),
                    py_files: std::mem::take(&mut self.py_files),
                    files: std::mem::take(&mut self.files),
                    archives: std::mem::take(&mut self.archives),
                    driver_memory: self.driver_memory.take(),
                    driver_cores: self.driver_cores,
                    executor_memory: self.executor_memory.take(),
                    executor_cores: self.executor_cores,
                    num_executors: self.num_executors,
                    queue: self.queue.take(),
                    name: self.name.take(),
                    conf: std::mem::take(&mut self.conf),
                }
            }
        }
        livy_request!(@one $(#[$nm])* $native {
            /// The cluster to run on (`GET /api/v1/clusters` lists them); the default
            /// cluster, `local`, when absent. It is the job's cluster whatever
            /// `conf["kindling.cluster"]` says.
            #[schema(schema_with = crate::schemas::optional_text)]
            cluster: Option<String>,
            $($(#[$fm])* $field: $ty,)*
        });

        impl $native {
            /// The Livy body and the cluster it names.
            fn split(self) -> ($name, Option<String>) {
                let livy = $name {
                    $($field: self.$field,)*
                    jars: self.jars,
                    py_files: self.py_files,
                    files: self.files,
                    archives: self.archives,
                    driver_memory: self.driver_memory,
                    driver_cores: self.driver_cores,
                    executor_memory: self.executor_memory,
                    executor_cores: self.executor_cores,
                    num_executors: self.num_executors,
                    queue: self.queue,
                    name: self.name,
                    conf: self.conf,
                };
                (livy, self.cluster)
            }
        }

        impl CreateJob for $native {
            fn into_spec(self, caller: &Caller) -> Result<JobSpec, Invalid> {
                let (livy, cluster) = self.split();
                let mut spec = livy.into_spec(caller)?;
                // The job's cluster is `cluster` when it is given, whatever the conf says.
                if let Some(cluster) = cluster {
                    spec.resources.conf.insert(CLUSTER_CONF_KEY.into(), cluster);
                }
                Ok(spec)
            }
        }
    };
    (@one $(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Default, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
            #[serde(default)]
            #[schema(schema_with = crate::schemas::files)]
            pub jars: Vec<String>,
            #[serde(default)]
            #[schema(schema_with = crate::schemas::files)]
            pub py_files: Vec<String>,
            #[serde(default)]
            #[schema(schema_with = crate::schemas::files)]
            pub files: Vec<String>,
            #[serde(default)]
            #[schema(schema_with = crate::schemas::files)]
            pub archives: Vec<String>,
            /// e.g. `512m`, `4g` (1m to 4t; a bare number is MiB).
            #[schema(schema_with = crate::schemas::memory_size)]
            pub driver_memory: Option<String>,
            #[serde(default, deserialize_with = "crate::json::whole_number")]
            #[schema(minimum = 1, maximum = 1024)]
            pub driver_cores: Option<i64>,
            #[schema(schema_with = crate::schemas::memory_size)]
            pub executor_memory: Option<String>,
            #[serde(default, deserialize_with = "crate::json::whole_number")]
            #[schema(minimum = 1, maximum = 1024)]
            pub executor_cores: Option<i64>,
            #[serde(default, deserialize_with = "crate::json::whole_number")]
            #[schema(minimum = 1, maximum = 100000)]
            pub num_executors: Option<i64>,
            #[schema(schema_with = crate::schemas::optional_text)]
            pub queue: Option<String>,
            #[schema(schema_with = crate::schemas::job_name)]
            pub name: Option<String>,
            /// Spark configuration; scalar values are taken as strings. `kindling.cluster`
            /// names the cluster to run on.
            #[serde(default)]
            #[schema(schema_with = crate::schemas::conf)]
            pub conf: BTreeMap<String, Value>,
        }

    };
}

livy_request!(
    /// Livy's `POST /batches` body.
    CreateBatch,
    /// `POST /api/v1/batches`: Livy's batch body and the cluster to run on.
    NativeCreateBatch {
        /// The application: a `.py` file or a jar, on this node or at a URL Spark can read.
        #[schema(required = true, schema_with = crate::schemas::not_blank)]
        file: Option<String>,
        #[schema(schema_with = crate::schemas::optional_text)]
        proxy_user: Option<String>,
        #[schema(schema_with = crate::schemas::optional_text)]
        class_name: Option<String>,
        #[serde(default)]
        #[schema(schema_with = crate::schemas::args)]
        args: Vec<String>,
    }
);

livy_request!(
    /// Livy's `POST /sessions` body.
    CreateSession,
    /// `POST /api/v1/sessions`: Livy's session body and the cluster to run on.
    NativeCreateSession {
        /// `pyspark` (default; also `python`, `shared`) or `sql`.
        #[schema(schema_with = crate::schemas::session_kind)]
        kind: Option<String>,
        #[schema(schema_with = crate::schemas::optional_text)]
        proxy_user: Option<String>,
        #[serde(default, deserialize_with = "crate::json::whole_number")]
        #[schema(minimum = 0, maximum = 86400)]
        heartbeat_timeout_in_second: Option<i64>,
        /// Stop the session after this long without activity, e.g. `30m` (Livy's format:
        /// 1ms to 365d, a bare number is milliseconds).
        #[schema(schema_with = crate::schemas::timeout)]
        ttl: Option<String>,
        /// Stop the session after it has been idle this long.
        #[schema(schema_with = crate::schemas::timeout)]
        idle_timeout: Option<String>,
    }
);

/// Fields batches and sessions share.
struct CommonFields {
    jars: Vec<String>,
    py_files: Vec<String>,
    files: Vec<String>,
    archives: Vec<String>,
    driver_memory: Option<String>,
    driver_cores: Option<i64>,
    executor_memory: Option<String>,
    executor_cores: Option<i64>,
    num_executors: Option<i64>,
    queue: Option<String>,
    name: Option<String>,
    conf: BTreeMap<String, Value>,
}

/// A count field (`driverCores`, `numExecutors`) within `1..=max`.
fn count(field: &str, v: Option<i64>, max: u32) -> Result<Option<u32>, Invalid> {
    match v {
        None => Ok(None),
        Some(n) if (1..=i64::from(max)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(Invalid::new(format!(
            "{field} must be between 1 and {max}, got {n}"
        ))),
    }
}

/// Livy's time strings (`kindling_events::units`: a bare number is milliseconds).
pub fn duration(field: &str, v: &Option<String>) -> Result<Option<DurationSpec>, Invalid> {
    let Some(s) = v else { return Ok(None) };
    let d = DurationSpec::parse(s).map_err(|e| Invalid::new(format!("{field}: {e}")))?;
    if d.millis == 0 || d.millis > MAX_TIMEOUT_MS {
        return Err(Invalid::new(format!(
            "{field} must be between 1ms and 365d, got {s:?}"
        )));
    }
    Ok(Some(d))
}

impl CommonFields {
    fn resources(self) -> Result<(SparkResources, Option<String>), Invalid> {
        let mut conf = BTreeMap::new();
        for (k, v) in self.conf {
            let s = crate::json::conf_text("conf", &k, v)?;
            conf.insert(k, s);
        }
        let r = SparkResources {
            driver_memory: self.driver_memory.map(|m| m.trim().to_string()),
            driver_cores: count("driverCores", self.driver_cores, MAX_CORES)?,
            executor_memory: self.executor_memory.map(|m| m.trim().to_string()),
            executor_cores: count("executorCores", self.executor_cores, MAX_CORES)?,
            num_executors: count("numExecutors", self.num_executors, MAX_EXECUTORS)?,
            queue: self.queue,
            jars: self.jars,
            py_files: self.py_files,
            files: self.files,
            archives: self.archives,
            conf,
        };
        Ok((r, self.name))
    }
}

/// Who asks: the authenticated owner and the `doAs` query parameter.
pub struct Caller {
    pub owner: Option<String>,
    pub do_as: Option<String>,
}

/// A request that creates a job.
pub trait CreateJob {
    fn into_spec(self, caller: &Caller) -> Result<JobSpec, Invalid>;
}

impl CreateJob for CreateBatch {
    fn into_spec(mut self, caller: &Caller) -> Result<JobSpec, Invalid> {
        let common = self.common();
        let file = match self.file {
            Some(f) if !f.trim().is_empty() => f,
            _ => {
                return Err(Invalid::new(
                    "file is required: the path or URL of the application to run",
                ))
            }
        };
        let (resources, name) = common.resources()?;
        Ok(JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file,
                class_name: self.class_name,
                args: self.args,
            }),
            name,
            owner: caller.owner.clone(),
            proxy_user: caller.do_as.clone().or(self.proxy_user),
            resources,
        })
    }
}

/// Session and statement kinds: pyspark (with Livy's aliases) and sql.
pub fn session_kind(field: &str, v: Option<&str>) -> Result<SessionKind, Invalid> {
    match v.map(str::trim) {
        None | Some("pyspark" | "python" | "shared") => Ok(SessionKind::Pyspark),
        Some("sql") => Ok(SessionKind::Sql),
        Some(k @ ("spark" | "scala" | "sparkr" | "r")) => Err(Invalid::new(format!(
            "{field} {k:?} is not supported by Kindling yet; use pyspark or sql"
        ))),
        Some(k) => Err(Invalid::new(format!(
            "{field} {k:?} is unknown; use pyspark or sql"
        ))),
    }
}

impl CreateJob for CreateSession {
    fn into_spec(mut self, caller: &Caller) -> Result<JobSpec, Invalid> {
        let common = self.common();
        let kind = session_kind("kind", self.kind.as_deref())?;
        let heartbeat = match self.heartbeat_timeout_in_second {
            None => 0,
            Some(n) if (0..=86_400).contains(&n) => n as u32,
            Some(n) => {
                return Err(Invalid::new(format!(
                    "heartbeatTimeoutInSecond must be between 0 and 86400, got {n}"
                )))
            }
        };
        let ttl = duration("ttl", &self.ttl)?;
        let idle_timeout = duration("idleTimeout", &self.idle_timeout)?;
        let (resources, name) = common.resources()?;
        Ok(JobSpec {
            kind: JobKind::Session(SessionSpec {
                kind,
                heartbeat_timeout_secs: heartbeat,
                ttl,
                idle_timeout,
            }),
            name,
            owner: caller.owner.clone(),
            proxy_user: caller.do_as.clone().or(self.proxy_user),
            resources,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStatement {
    /// The code to run (not blank; at most what the link to the driver carries).
    #[schema(schema_with = crate::schemas::not_blank)]
    pub code: String,
    /// `pyspark` or `sql`; defaults to the session's kind.
    #[schema(schema_with = crate::schemas::session_kind)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    #[schema(schema_with = crate::schemas::text)]
    pub code: String,
    #[schema(schema_with = crate::schemas::session_kind)]
    pub kind: Option<String>,
    /// Offset in `code` (in characters) where completion happens; the end of `code` when
    /// absent or past it.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub cursor: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_livy() {
        assert_eq!(
            duration("ttl", &Some("10m".into()))
                .unwrap()
                .unwrap()
                .millis,
            600_000
        );
        assert_eq!(
            duration("ttl", &Some("1500".into()))
                .unwrap()
                .unwrap()
                .millis,
            1500
        );
        assert_eq!(
            duration("ttl", &Some("2h".into())).unwrap().unwrap().millis,
            7_200_000
        );
        assert!(duration("ttl", &Some("ten".into())).is_err());
        assert!(duration("ttl", &Some("5y".into())).is_err());
        assert!(duration("ttl", &Some("0s".into())).is_err());
    }

    #[test]
    fn the_cluster_field_wins_over_the_conf() {
        let body = serde_json::json!({
            "file": "/app.py",
            "cluster": "small",
            "conf": {CLUSTER_CONF_KEY: "other"}
        });
        let batch: NativeCreateBatch = serde_json::from_value(body).unwrap();
        let spec = batch
            .into_spec(&Caller {
                owner: None,
                do_as: None,
            })
            .unwrap();
        assert_eq!(spec.resources.conf[CLUSTER_CONF_KEY], "small");
    }
}
