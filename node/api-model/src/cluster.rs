//! The JSON shapes of `/api/v1/clusters`: the request that registers or replaces a cluster,
//! checked into the domain's `ClusterConfig` with messages that name the field (its schema,
//! from the same tables, is `cluster_schema`), and the document that shows one. Credentials are references to files on the nodes; a document
//! says which kind a cluster uses, never the reference, and hides credential-like conf.

use crate::Invalid;
use kindling_backend::settings;
use kindling_events::cluster::{check_name, is_secret_key, is_secret_reference_key, redacted_conf};
use kindling_events::plan::memory_mb;
use kindling_events::spec_check::no_nul;
use kindling_events::{Capacity, Cluster, ClusterConfig, ClusterKind, Credentials};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A cluster to register (`POST`) or its new configuration (`PUT`, which replaces it whole,
/// except that omitted `credentials` keep the current ones).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterRequest {
    /// 1 to 63 lowercase letters, digits and `-`, starting with a letter. Required on POST;
    /// on PUT it may repeat the path's name.
    pub name: Option<String>,
    /// `local`, `standalone`, `kubernetes` or `yarn`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Where the cluster is: the settings of its type (`kindling_backend::settings`).
    #[serde(default)]
    pub connection: BTreeMap<String, Value>,
    pub credentials: Option<CredentialsRequest>,
    /// Spark conf applied to every job on the cluster before the job's own. Keys that look
    /// like credentials (secret, password, token, access.key) are refused.
    #[serde(default)]
    pub spark_conf: BTreeMap<String, Value>,
    #[serde(default)]
    pub capacity: CapacityRequest,
}

/// Credentials by reference: files every node can read. Secrets themselves are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialsRequest {
    /// `none`, `tokenFile` (kubernetes), `kubeconfig` (kubernetes), `clientCertificate`
    /// (kubernetes) or `keytab` (yarn).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// tokenFile, kubeconfig: the file's absolute path.
    pub path: Option<String>,
    /// kubeconfig: the context to use (default: the file's current context).
    pub context: Option<String>,
    /// clientCertificate: the PEM certificate and key files.
    pub cert: Option<String>,
    pub key: Option<String>,
    /// keytab: the principal and its keytab file.
    pub principal: Option<String>,
    pub keytab: Option<String>,
    /// Refused: secrets are never accepted inline (see `path`).
    pub token: Option<Value>,
    /// Refused: secrets are never accepted inline.
    pub password: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CapacityRequest {
    /// Most drivers running at once (no limit when absent).
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub max_drivers: Option<i64>,
    /// Most driver cores in use at once, summed over running drivers.
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub max_driver_cores: Option<i64>,
    /// Most driver memory in use at once, e.g. `64g`.
    pub max_driver_memory: Option<String>,
}

/// A cluster as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDoc {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub connection: BTreeMap<String, String>,
    pub credentials: CredentialsDoc,
    /// Values of credential-like keys read `<redacted>`.
    pub spark_conf: BTreeMap<String, String>,
    pub capacity: CapacityDoc,
    /// The node's own local backend, set by its flags: it cannot be changed here.
    pub built_in: bool,
    /// The log position of the last change of the configuration.
    pub revision: u64,
    pub registered_at: i64,
    pub updated_at: i64,
    /// Jobs on the cluster that have not ended (only in `GET /api/v1/clusters/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_jobs: Option<usize>,
    /// What its drivers take now, sized as the scheduler sizes them (only in
    /// `GET /api/v1/clusters/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<UsageDoc>,
    /// Jobs waiting to start on it (only in `GET /api/v1/clusters/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_jobs: Option<usize>,
}

/// What a cluster's running drivers take, against its [`CapacityDoc`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageDoc {
    pub drivers: u64,
    pub driver_cores: u64,
    /// In MiB, as `<n>m`.
    pub driver_memory: String,
}

/// Which kind of credentials a cluster uses; never where they are.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialsDoc {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityDoc {
    pub max_drivers: Option<u32>,
    pub max_driver_cores: Option<u32>,
    /// In MiB, as `<n>m`.
    pub max_driver_memory: Option<String>,
}

impl From<&Capacity> for CapacityDoc {
    fn from(c: &Capacity) -> Self {
        CapacityDoc {
            max_drivers: c.max_drivers,
            max_driver_cores: c.max_driver_cores,
            max_driver_memory: c.max_driver_memory_mb.map(|m| format!("{m}m")),
        }
    }
}

impl From<kindling_events::plan::Usage> for UsageDoc {
    fn from(u: kindling_events::plan::Usage) -> Self {
        UsageDoc {
            drivers: u.drivers,
            driver_cores: u.cores,
            driver_memory: format!("{}m", u.memory_mb),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterList {
    pub clusters: Vec<ClusterDoc>,
}

impl ClusterDoc {
    pub fn new(c: &Cluster, built_in: bool) -> Self {
        let cfg = &c.config;
        ClusterDoc {
            name: c.name.clone(),
            kind: cfg.kind.as_str().into(),
            connection: redacted_conf(&cfg.connection),
            credentials: CredentialsDoc {
                kind: cfg.credentials.kind_name().into(),
            },
            spark_conf: redacted_conf(&cfg.spark_conf),
            capacity: CapacityDoc::from(&cfg.capacity),
            built_in,
            revision: c.revision.0,
            registered_at: c.registered_at_ms,
            updated_at: c.updated_at_ms,
            active_jobs: None,
            in_use: None,
            queued_jobs: None,
        }
    }
}

fn bad(msg: impl Into<String>) -> Invalid {
    Invalid::new(msg)
}

/// A map of settings: every key not blank, values texts; with `scalars`, numbers and
/// booleans too, taken as the text they are written as (Spark conf).
fn strings(
    field: &str,
    map: BTreeMap<String, Value>,
    scalars: bool,
) -> Result<BTreeMap<String, String>, Invalid> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        if k.trim().is_empty() {
            return Err(bad(format!("{field} has an empty key")));
        }
        let s = match v {
            Value::String(s) => s,
            other if scalars => crate::json::conf_text(field, &k, other)?,
            other => return Err(bad(format!("{field}.{k} must be a string, got {other}"))),
        };
        no_nul(&format!("{field} key"), &k).map_err(|e| bad(e.0))?;
        no_nul(&format!("{field}.{k}"), &s).map_err(|e| bad(e.0))?;
        out.insert(k, s);
    }
    Ok(out)
}

fn limit(field: &str, v: Option<i64>) -> Result<Option<u32>, Invalid> {
    match v {
        None => Ok(None),
        Some(n) if (1..=1_000_000).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(bad(format!(
            "{field} must be between 1 and 1000000, got {n}"
        ))),
    }
}

impl CapacityRequest {
    /// The limits as the domain holds them; errors name each field under `at`
    /// (`capacity.maxDrivers`).
    pub fn into_capacity(self, at: &str) -> Result<Capacity, Invalid> {
        let max_driver_memory_mb = match &self.max_driver_memory {
            None => None,
            Some(m) => match memory_mb(m) {
                Some(mb) if (1..=1 << 40).contains(&mb) => Some(mb),
                _ => {
                    return Err(bad(format!(
                        "{at}.maxDriverMemory must be a Spark memory size like 512m or 64g, \
                         got {m:?}"
                    )))
                }
            },
        };
        Ok(Capacity {
            max_drivers: limit(&format!("{at}.maxDrivers"), self.max_drivers)?,
            max_driver_cores: limit(&format!("{at}.maxDriverCores"), self.max_driver_cores)?,
            max_driver_memory_mb,
        })
    }
}

impl CredentialsRequest {
    fn into_domain(self) -> Result<Credentials, Invalid> {
        for (field, v) in [("token", &self.token), ("password", &self.password)] {
            if v.is_some() {
                return Err(bad(format!(
                    "credentials.{field}: secrets are not accepted inline (the event log is \
                     readable by operators); put the secret in a file every node can read and \
                     give its path, e.g. {{\"type\": \"tokenFile\", \"path\": \"/etc/kindling/token\"}}"
                )));
            }
        }
        let need = |field: &str, v: Option<String>| {
            v.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                bad(format!(
                    "credentials.{field} is required with credentials of type {}",
                    self.kind.as_deref().unwrap_or_default()
                ))
            })
        };
        let kind = self.kind.clone().ok_or_else(|| {
            bad("credentials.type is required: none, tokenFile, kubeconfig, clientCertificate or keytab")
        })?;
        let given = [
            ("path", self.path.is_some()),
            ("context", self.context.is_some()),
            ("cert", self.cert.is_some()),
            ("key", self.key.is_some()),
            ("principal", self.principal.is_some()),
            ("keytab", self.keytab.is_some()),
        ];
        let fields: &[&str] = match kind.as_str() {
            "none" => &[],
            "tokenFile" => &["path"],
            "kubeconfig" => &["path", "context"],
            "clientCertificate" => &["cert", "key"],
            "keytab" => &["principal", "keytab"],
            other => {
                return Err(bad(format!(
                    "credentials.type {other:?} is unknown; use none, tokenFile, kubeconfig, \
                     clientCertificate or keytab"
                )))
            }
        };
        if let Some((f, _)) = given.iter().find(|(f, set)| *set && !fields.contains(f)) {
            return Err(bad(format!(
                "credentials.{f} does not belong to credentials of type {kind}"
            )));
        }
        for (field, v) in [("context", &self.context), ("principal", &self.principal)] {
            if let Some(v) = v {
                no_nul(&format!("credentials.{field}"), v).map_err(|e| bad(e.0))?;
            }
        }
        if self.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(bad(
                "credentials.context must not be blank; omit it for the file's current context",
            ));
        }
        let c = match kind.as_str() {
            "tokenFile" => Credentials::TokenFile {
                path: need("path", self.path)?,
            },
            "kubeconfig" => Credentials::Kubeconfig {
                path: need("path", self.path)?,
                context: self.context,
            },
            "clientCertificate" => Credentials::ClientCertificate {
                cert: need("cert", self.cert)?,
                key: need("key", self.key)?,
            },
            "keytab" => Credentials::Keytab {
                principal: need("principal", self.principal)?,
                keytab: need("keytab", self.keytab)?,
            },
            _ => Credentials::None,
        };
        Ok(c)
    }
}

impl ClusterRequest {
    /// The name and configuration the request asks for, if well formed (whether the files it
    /// names are on the node is [`settings::present`]). `path_name` is the name in the path
    /// (PUT); `current` the credentials an update keeps when it names none.
    pub fn into_config(
        self,
        path_name: Option<&str>,
        current: Option<&Credentials>,
    ) -> Result<(String, ClusterConfig), Invalid> {
        // The API refuses a rename (409) before it asks for the configuration.
        let name = match (path_name, self.name) {
            (Some(p), _) => p.to_string(),
            (None, Some(n)) => n,
            (None, None) => return Err(bad("name is required: the cluster's name, e.g. k8s-east")),
        };
        check_name(&name).map_err(|e| bad(format!("name: {e}")))?;
        let kind = match self.kind.as_deref() {
            None => {
                return Err(bad(
                    "type is required: local, standalone, kubernetes or yarn",
                ))
            }
            Some(k) => ClusterKind::parse(k).ok_or_else(|| {
                bad(format!(
                    "type {k:?} is unknown; use local, standalone, kubernetes or yarn"
                ))
            })?,
        };
        let connection = strings("connection", self.connection, false)?;
        let spark_conf = strings("sparkConf", self.spark_conf, true)?;
        if let Some(k) = spark_conf
            .keys()
            .find(|k| is_secret_key(k) && !is_secret_reference_key(k))
        {
            return Err(bad(format!(
                "sparkConf.{k} looks like a credential; secrets are not accepted inline (the \
                 event log is readable by operators): give the cluster credentials by \
                 reference, or let the driver read the secret from its environment (e.g. \
                 spark.kubernetes.driver.secretKeyRef.*)"
            )));
        }
        // A default restart policy for the cluster's batches, in the same keys a job sets.
        kindling_events::RestartPolicy::of(&spark_conf)
            .map_err(|e| bad(e.0.replacen("conf.", "sparkConf.", 2)))?;
        let credentials = match (self.credentials, current) {
            (Some(c), _) => {
                let c = c.into_domain()?;
                for (field, path) in c.files() {
                    no_nul(&format!("credentials.{field}"), path).map_err(|e| bad(e.0))?;
                }
                c
            }
            (None, Some(current)) => current.clone(),
            (None, None) => Credentials::None,
        };
        let capacity = self.capacity.into_capacity("capacity")?;
        let config = ClusterConfig {
            kind,
            connection,
            credentials,
            spark_conf,
            capacity,
        };
        settings::check(&config).map_err(bad)?;
        Ok((name, config))
    }
}
