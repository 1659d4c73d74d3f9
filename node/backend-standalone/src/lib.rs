//! The Spark standalone backend: drivers run on the cluster's workers (cluster mode), submitted
//! through the master's REST submission server (`spark.master.rest.enabled=true`, port 6066:
//! `POST /v1/submissions/create`, `GET /v1/submissions/status/<id>`,
//! `POST /v1/submissions/kill/<id>`). It owns the conversation with one master; it never runs
//! Spark on the node and keeps nothing on disk: what it must find again it finds on the cluster.
//!
//! **PySpark in cluster mode.** `spark-submit --deploy-mode cluster` still refuses Python apps
//! on standalone, but Spark 4.3's REST server accepts `mainClass =
//! org.apache.spark.deploy.SparkSubmit` (it then adds `-c spark.app.name=…` to the arguments;
//! verified in its bytecode and against a real master). The worker starts the driver JVM as
//! `DriverWrapper <worker> <local copy of appResource> SparkSubmit <appArgs>`, so `appArgs` is an
//! ordinary `spark-submit --master spark://… --deploy-mode client … <app> <args>` command run
//! *on the worker*, which runs Python apps and jars alike. The worker first copies
//! `appResource` into the driver's working directory and puts that copy where `{{USER_JAR}}`
//! stands in the arguments: a batch's file is submitted as `{{USER_JAR}}`. A session's
//! `appResource` is the runner's `driver.proto`, so it lands in the driver's working directory,
//! where the runner looks for a flat `driver.proto`; the runner itself is the application. (Files
//! passed with `--files` do not help: in client mode they land in Spark's `userFiles-*`
//! temporary directory, not in the working directory.) So the runner and the proto must be at a
//! path every worker can read, or at a URL they can fetch. The SparkSubmit inside the driver
//! reads `--master` from its arguments only (the `spark.master` system property the server sets
//! is ignored, and the app would silently run in `local[*]`), so the backend passes the master's
//! RPC URL, read from the master's `/json/`.
//!
//! **Finding a driver again.** The master's `/json/` lists drivers with id, state, worker and
//! main class only; a driver's properties are nowhere in the master's answers. They are in the
//! first line of the driver's `stderr` on its worker (`Launch Command: … "-Dspark.kindling.driver=
//! <cluster>:<name>" …`), read through the worker's `/log/` page. A driver still queued on the
//! master, or on a worker that does not answer, cannot be identified: `find` then says it cannot
//! tell yet rather than claiming the launch never happened. Ended drivers that cannot be read
//! are skipped: relaunching over one of them can never leave two drivers running.
//!
//! **States.** See [`driver_phase`]: the standalone master records no exit code, only the state.

mod backend;
mod config;
mod from_cluster;
mod locate;
mod logs;
mod master;
mod phase;
mod submission;
mod watch;

pub use backend::StandaloneBackend;
pub use config::StandaloneConfig;
pub use from_cluster::from_cluster;
pub use logs::{app_in, launch_tag, log_page};
pub use phase::{driver_phase, DriverPhase, EXIT_FAILED, EXIT_KILLED};
pub use submission::{submission, CreateSubmission, TAG_PROPERTY};
