//! The YARN backend of a registered cluster: its settings and credentials read from the
//! cluster's configuration, Spark, the runner and where logs are kept from the node.

use crate::{
    YarnAuth, YarnBackend, YarnConfig, DEFAULT_LOG_WAIT, DEFAULT_POLL_INTERVAL,
    DEFAULT_SUBMIT_TIMEOUT,
};
use kindling_backend::settings::parse_duration;
use kindling_backend::{BackendEvent, ClusterBackend, NodeContext};
use kindling_events::{Cluster, Credentials};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The backend a YARN cluster's configuration describes.
pub fn from_cluster(
    ctx: &NodeContext,
    cluster: &Cluster,
    events: mpsc::UnboundedSender<BackendEvent>,
    stop: CancellationToken,
) -> Result<Arc<dyn ClusterBackend>, String> {
    let c = &cluster.config;
    let name = &cluster.name;
    let setting = |key: &str| c.setting(key).map(str::to_string);
    let auth = match &c.credentials {
        Credentials::Keytab { principal, keytab } => YarnAuth::Kerberos {
            principal: principal.clone(),
            keytab: keytab.into(),
        },
        Credentials::None => YarnAuth::Simple {
            user: setting("user").ok_or_else(|| {
                format!("cluster {name}: connection.user is required without a keytab")
            })?,
        },
        other => {
            return Err(format!(
                "cluster {name}: {} credentials do not authenticate to YARN",
                other.kind_name()
            ))
        }
    };
    let required = |key: &str| {
        setting(key).ok_or_else(|| format!("cluster {name}: connection.{key} is not set"))
    };
    let poll = match setting("pollInterval") {
        None => DEFAULT_POLL_INTERVAL,
        Some(v) => parse_duration(&v).ok_or_else(|| {
            format!("cluster {name}: connection.pollInterval {v:?} is not a duration")
        })?,
    };
    let cfg = YarnConfig {
        name: name.clone(),
        cluster_id: ctx.kindling_id.clone(),
        spark_home: ctx.spark_home.clone(),
        hadoop_conf_dir: required("hadoopConfDir")?.into(),
        resource_managers: required("resourceManagers")?
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        queue: setting("queue"),
        auth,
        default_conf: c.spark_conf.clone(),
        logs_dir: ctx.kept_logs_dir.clone(),
        runner: ctx.runner.clone(),
        log_server_url: setting("logServerUrl"),
        poll_interval: poll,
        submit_timeout: DEFAULT_SUBMIT_TIMEOUT,
        log_wait: DEFAULT_LOG_WAIT,
    };
    let backend = YarnBackend::new(cfg, events, stop).map_err(|e| e.to_string())?;
    Ok(Arc::new(backend))
}
