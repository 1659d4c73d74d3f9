//! Where Kindling keeps its events and the projections built from them.
//!
//! Two ports, each a narrow trait with one conformance suite that every adapter passes:
//! - [`EventLog`]: durable, totally ordered appends; reads from a position; a watch on the end;
//!   [`FencedWriter`]s that a newer writer with the same id deposes.
//! - [`ProjectionStore`]: job, statement and history documents and the cluster registry,
//!   folded from the log, each storing the log position it reflects, written together with
//!   the store's checkpoint.
//!
//! The embedded adapters on sled live here ([`sled_log`], [`sled_projections`]); the Kafka and
//! MongoDB adapters of the HA cluster implement the same traits and run the same suites
//! (enable the `conformance` feature to reach them from another crate).

pub mod error;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod projections;
pub mod replay;
pub mod sled_log;
pub mod sled_projections;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::{Result, StoreError};
pub use log::{EventLog, FencedWriter};
pub use projections::{JobQuery, KindFilter, Page, ProjectionStore};
pub use replay::{catch_up, REPLAY_BATCH};
pub use sled_log::SledEventLog;
pub use sled_projections::SledProjections;
