//! The node as its users meet it: the real `kindling` binary run as processes on free ports,
//! talked to over HTTP, killed and restarted on the same data. One test binary, so the
//! harness in [`common`] is compiled once. Modules named `spark_*` start real Spark drivers
//! (the project venv's pyspark) and run one at a time (nextest's `spark` group); the others
//! use a short shell program in place of `spark-submit` where Spark is not what is checked.

mod common;

mod api;
mod auth;
mod auth_actors;
mod auth_cluster;
mod auth_ldap;
mod auth_login;
mod auth_oidc;
mod auth_tokens;
mod cluster_restarts;
mod clusters;
mod connections;
mod driver_routes;
mod elections;
mod livy_details;
mod ops_chart;
mod ops_prometheus;
mod ops_rolling;
mod queues;
mod retries;
mod schema;
mod spark_batches;
mod spark_clients;
mod spark_cluster;
mod spark_kafka_routes;
mod spark_lifetimes;
mod spark_restart;
mod spark_sessions;
mod storage;
mod stream;
mod tls;
mod ui;
