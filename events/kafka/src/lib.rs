//! The `EventLog` port on Kafka: the HA cluster's event log, the same contract as the embedded
//! sled log and checked by the same conformance suite.
//!
//! This crate owns how the log lives in Kafka: one topic with exactly one partition (the
//! port promises one total order, and Kafka orders records only within a partition; spreading
//! load over partitions is the job of the per-job route topics, not of the log), records keyed
//! by job, valued by the domain's versioned codec, and a log position that *is* the record's
//! offset (offsets skip transaction markers and aborted records, which readers never
//! return). It owns nothing else: events, their encoding and the meaning of positions belong
//! to `kindling-events`; the port and its errors to `kindling-store`.
//!
//! - [`config`]: what to connect to and how the topic is created.
//! - [`kafka_log`]: [`KafkaEventLog`], wiring the parts below.
//! - `writer`: the append path (one idempotent producer, group commit, ack after delivery).
//! - [`fenced_writer`]: [`KafkaFencedWriter`], appends through a transactional producer whose
//!   `transactional.id` is the writer id, so the broker fences a deposed writer.
//! - `reader`: `read` on a small pool of partition-assigned, `read_committed` consumers.
//! - `tail`: follows the partition's end so other processes' appends advance `end`.
//! - `record`: the record format (key, value, position scheme).
//! - `topic`: creates and checks the topic.

pub mod config;
pub mod fenced_writer;
pub mod kafka_log;
pub mod metrics;
pub mod properties;
mod reader;
mod record;
mod tail;
mod topic;
mod writer;

pub use config::KafkaConfig;
pub use fenced_writer::KafkaFencedWriter;
pub use kafka_log::KafkaEventLog;
pub use properties::{check_properties, is_secret_property};
