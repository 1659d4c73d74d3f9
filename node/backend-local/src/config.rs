//! The local backend's settings: where Spark and Python are, the master URL drivers run
//! with, and where each driver's files are kept.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub spark_home: PathBuf,
    pub python: PathBuf,
    pub master: String,
    /// Where each driver's directory (log, exit code, event log) lives.
    pub drivers_dir: PathBuf,
    /// The Python runner for sessions (`kindling_runner.py`, with its proto beside it).
    pub runner: PathBuf,
    /// Spark conf applied to every job before the job's own.
    pub default_conf: BTreeMap<String, String>,
    /// The cluster's id: drivers are tagged `<cluster>:<driver name>`, so two clusters on one
    /// machine never mistake each other's drivers for their own.
    pub cluster_id: String,
}
