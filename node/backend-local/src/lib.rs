//! The local backend: each driver is a `spark-submit --master local[N]` child process in its
//! own process group, under a small `sh` wrapper that records the exit code in a file, so a
//! node that restarts while the driver runs can still learn how it ended. Output goes to a
//! file the node tails for the application id and serves through `/log`.
//!
//! A driver is found again by the `KINDLING_DRIVER=<cluster>:<name>` variable in its
//! environment. Credential-like conf reaches it through a private properties file, never
//! its command line.

mod app_id;
mod backend;
mod config;
mod from_cluster;
mod process;
mod submit;

pub use backend::LocalBackend;
pub use config::LocalConfig;
pub use from_cluster::from_cluster;
