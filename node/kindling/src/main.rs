//! `kindling`: a highly available job server for Apache Spark. This crate is the only place
//! that wires the pieces together (`serve`): storage, leadership, core, projector,
//! scheduler, backends, driver gateway and REST API. Here: the command line.

mod config;
mod factory;
mod gateway_listener;
mod gauges;
mod handover;
mod http_server;
mod membership;
mod memory;
mod metrics;
mod runner;
mod security;
mod serve;
mod storage;
mod tls;
mod users;

use clap::{Parser, Subcommand};
use config::ServeArgs;

#[derive(Parser)]
#[command(
    name = "kindling",
    version,
    about = "A highly available job server for Apache Spark"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a node: REST API, scheduler, driver gateway.
    Serve(Box<ServeArgs>),
    /// Manage the users file of `--auth basic`.
    #[command(subcommand)]
    Users(users::UsersCmd),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KINDLING_LOG")
                // openraft logs every election and replication hiccup at info.
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::Users(cmd) => {
            if let Err(e) = users::run(cmd) {
                eprintln!("kindling: {e:#}");
                std::process::exit(2);
            }
            Ok(())
        }
        Cmd::Serve(args) => {
            let cfg = match args.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("kindling: {e:#}");
                    std::process::exit(2);
                }
            };
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(serve::serve(cfg))
        }
    }
}
