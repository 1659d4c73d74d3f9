//! `kindling-load`: benchmarks that print figures. Each starts what it measures (a node
//! process on a temporary data directory, or the storage adapters in process), drives it
//! with bounded, loopback-only load, and stops it.
//!
//! - `submit`: durable batch submissions per second over HTTP, with concurrency.
//! - `statements`: warm-session statement round trip (`1+1`, POST to available) against a
//!   cold `spark-submit` of the same code.
//! - `replay`: events per second folded from the sled log into fresh sled projections.
//! - `idle-rss`: resident memory of an idle node.
//! - `failover`: leader kill to the new leader scheduling, over many kills of a 3-node cluster.
//! - `cluster-submit`: durable submissions per second through every node of a 3-node cluster
//!   on Kafka and MongoDB.
//! - `replay-kafka`: events per second folded from a Kafka log into fresh MongoDB projections.
//! - `listing`: the reads the web UI makes, timed with many jobs in the log.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod bench_cluster;
mod cluster_load;
mod failover;
mod listing;
mod node;
mod replay;
mod statements;
mod submit;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "kindling-load", about = "Kindling benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Durable batch submissions accepted per second by one node over HTTP.
    Submit {
        #[arg(long, default_value = "target/release/kindling")]
        kindling: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Run the node with `--auth basic` and submit as one of its users.
        #[arg(long, conflicts_with = "api_token")]
        basic_auth: bool,
        /// Run the node with `--auth basic` and submit with an API token issued to one of
        /// its users.
        #[arg(long)]
        api_token: bool,
    },
    /// The reads the web UI makes (job pages, filters, its files) with many jobs in the log.
    Listing {
        #[arg(long, default_value = "target/release/kindling")]
        kindling: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
    },
    /// Warm-session statement round trip against a cold spark-submit.
    Statements {
        #[arg(long, default_value = "target/release/kindling")]
        kindling: PathBuf,
        #[arg(long, default_value_t = 300)]
        statements: usize,
        #[arg(long, default_value_t = 3)]
        cold_runs: usize,
    },
    /// Replay of N events into fresh projections.
    Replay {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
    },
    /// Leader kill to the new leader scheduling again, over many kills.
    Failover {
        #[arg(long, default_value = "target/release/kindling")]
        kindling: PathBuf,
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Stop the leader with SIGTERM (it hands leadership over) instead of SIGKILL.
        #[arg(long)]
        graceful: bool,
    },
    /// Durable submissions per second through every node of a 3-node Kafka/MongoDB cluster.
    ClusterSubmit {
        #[arg(long, default_value = "target/release/kindling")]
        kindling: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        #[arg(long, default_value_t = 96)]
        concurrency: usize,
    },
    /// Replay of N events from a Kafka topic into fresh MongoDB projections.
    ReplayKafka {
        #[arg(long, default_value_t = 200_000)]
        events: usize,
    },
    /// Resident memory of an idle node.
    IdleRss {
        #[arg(long, default_value = "target/release/kindling")]
        kindling: PathBuf,
        /// How long the node idles before it is measured.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Submit {
            kindling,
            requests,
            concurrency,
            basic_auth,
            api_token,
        } => {
            let auth = match (basic_auth, api_token) {
                (_, true) => submit::SubmitAuth::ApiToken,
                (true, false) => submit::SubmitAuth::Basic,
                (false, false) => submit::SubmitAuth::None,
            };
            submit::run(&kindling, requests, concurrency, auth).await
        }
        Cmd::Listing { kindling, jobs } => listing::run(&kindling, jobs).await,
        Cmd::Statements {
            kindling,
            statements,
            cold_runs,
        } => statements::run(&kindling, statements, cold_runs).await,
        Cmd::Replay { events } => replay::run(events).await,
        Cmd::Failover {
            kindling,
            kills,
            graceful,
        } => failover::run(&kindling, kills, graceful).await,
        Cmd::ClusterSubmit {
            kindling,
            requests,
            concurrency,
        } => cluster_load::submit(&kindling, requests, concurrency).await,
        Cmd::ReplayKafka { events } => cluster_load::replay(events).await,
        Cmd::IdleRss {
            kindling,
            idle_secs,
        } => node::idle_rss(&kindling, idle_secs).await,
    }
}
