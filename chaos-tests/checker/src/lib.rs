//! The pure parts of Kindling's chaos testing: what clients saw ([`history`]), what the launch
//! ledger recorded ([`ledger`]), what every node serves and what became of each fault
//! ([`records`]), the seeded [`rng`] and fault [`schedule`], and the [`checker`]: one function
//! per invariant over all of it, with a [`summary`] for people. No process, socket or file is
//! touched here: the real-cluster harness (`kindling-chaos`) and the core's deterministic
//! simulation both hand their observations to the same checkers.

pub mod checker;
pub mod history;
pub mod ledger;
pub mod records;
pub mod rng;
pub mod schedule;
pub mod summary;
