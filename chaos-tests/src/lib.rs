//! The chaos harness of Kindling: it runs a real cluster as processes (N `kindling` nodes,
//! the Kafka-compatible broker on S3 storage, the MongoDB wire server), drives a workload of
//! concurrent clients through random nodes, injects faults on a seeded schedule (kill -9,
//! SIGSTOP, network partitions, broker and Mongo restarts), then checks invariants over what
//! the clients saw, what the launch ledger recorded and what every node serves after healing.
//!
//! Pure parts (the schedule, the checkers, the ledger and history formats) are the
//! `kindling-chaos-checker` crate, unit-tested on synthetic data; the rest ([`cluster`],
//! [`proxy`], [`netns`], [`services`], [`nemesis`], [`workload`], [`run`]) starts and signals
//! processes and sockets on this machine only: loopback addresses, inside network namespaces
//! this harness creates.
//! The harness is test tooling behind a binary and cargo tests, so its orchestration
//! reports errors with `anyhow`; formats with their own failure modes have typed errors.

// The pure parts live in `kindling-chaos-checker`; the harness reads them under these names.
pub use kindling_chaos_checker::{checker, history, rng, schedule, summary};
pub use kindling_testkit::services;

pub mod cluster;
pub mod collect;
pub mod duration;
pub mod ledger;
pub mod nemesis;
pub mod netns;
pub mod node_process;
pub mod proxy;
pub mod recorder;
pub mod run;
pub mod serve_args;
pub mod topology;
pub mod workload;
