//! The standalone backend's settings: where the master answers, what every driver is
//! launched with, and how often watched drivers are polled.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    /// The master's REST submission server, e.g. `http://127.0.0.1:6066`.
    pub rest_url: String,
    /// The master's web UI, e.g. `http://127.0.0.1:8080`; its `/json/` lists drivers and workers.
    pub web_ui_url: String,
    /// Drivers are tagged `<cluster>:<driver name>`, so two Kindling clusters sharing a Spark
    /// cluster never mistake each other's drivers for their own.
    pub cluster_id: String,
    /// Spark conf applied to every job before the job's own.
    pub default_conf: BTreeMap<String, String>,
    /// Python on the workers, for drivers and executors (`spark.pyspark.python`).
    pub python: String,
    /// The session runner (`kindling_runner.py`): a path on every worker, or a URL.
    pub runner: String,
    /// The runner's `driver.proto`: a path on every worker, or a URL. Shipped as the session
    /// driver's `appResource`, so its file name must stay `driver.proto`.
    pub proto: String,
    pub poll_interval: Duration,
}
