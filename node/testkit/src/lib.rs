//! What the node's crates share in their tests, compiled once: the Kubernetes API server
//! FAKE ([`kube_fake`]: no real API server runs on the development machines), the real
//! Kafka-compatible broker and MongoDB wire server started on free loopback ports
//! ([`services`]), a real OpenLDAP directory ([`ldap`]), and Spark homes ([`spark`]: the project venv's real pyspark, and a short
//! shell program standing in for `spark-submit` where Spark itself is not what a test
//! checks). Nothing here is used outside tests.

pub mod kube_fake;
pub mod ldap;
pub mod services;
pub mod spark;
