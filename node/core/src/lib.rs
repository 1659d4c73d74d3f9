//! The core of a Kindling node: the command side (commands decided on the write model and
//! appended durably, on the leader behind its fenced writer), the read barrier, the projector
//! that folds the log into the projections, the cluster registry's catalog and commands, and
//! the scheduler. It talks to the world only through ports: the event log and projections
//! (`kindling-store`), cluster backends (`kindling-backend`), session drivers
//! ([`DriverLinks`]) and the Raft member ([`Member`]). It knows no HTTP, gRPC, Kafka or
//! Kubernetes.

pub mod clock;
pub mod clusters;
mod core;
pub mod driver_links;
pub mod driver_secret;
pub mod error;
pub mod error_code;
pub mod job_gauges;
pub mod leader;
pub mod leader_terms;
pub mod leadership;
pub mod metrics;
pub mod projector;
pub mod read_barrier;
pub mod reads;
pub mod scheduler;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod test_log;
pub mod tokens;
pub mod write_model;

pub use crate::core::{Core, Storage};
pub use clock::{Clock, SystemClock};
pub use driver_links::DriverLinks;
pub use error::{Error, Result};
pub use error_code::ErrorCode;
pub use leadership::{LeaderState, Member, MemberError};
pub use reads::Reads;
