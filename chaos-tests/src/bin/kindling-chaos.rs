//! `kindling-chaos`: runs a real Kindling cluster under a seeded fault schedule and checks
//! its invariants (see docs/chaos.md).
//!
//! - `run --seed N --duration D`: one run; prints its seed first and a summary table, ends
//!   with `violations: N`, exits 1 when N > 0 (2 when the harness itself failed) and keeps
//!   every log of a failing run.
//! - `schedule --seed N --duration D`: prints the schedule a run would follow.
//! - `check --run-dir DIR`: re-runs the checkers on a kept run.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};
use kindling_chaos::duration;
use kindling_chaos::run::{self, RunConfig};
use kindling_chaos::schedule::{self, Nemesis};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kindling-chaos",
    about = "Kindling under faults, invariants checked"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct Shape {
    /// Same seed, same fault schedule and same workload choices.
    #[arg(long)]
    seed: u64,
    /// How long the workload and the faults last: 90s, 3m, 1h.
    #[arg(long, value_parser = duration::parse)]
    duration: Duration,
    /// Cluster members (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Nemeses to draw from, comma-separated: kill-leader, kill-follower, kill-any, pause,
    /// partition, cut-broker, cut-mongo, restart-broker, restart-mongo. Default: all, but
    /// restart-broker only with --broker-s3.
    #[arg(long, value_delimiter = ',', value_parser = parse_nemesis)]
    nemeses: Vec<Nemesis>,
    /// Shortest SIGSTOP pause; keep it above the cluster's election timeout.
    #[arg(long, value_parser = duration::parse, default_value = "3s")]
    min_pause: Duration,
    /// Keep the broker's log on S3 (SeaweedFS, ops/dev/install-s3) so that it survives a
    /// broker restart. tansu 0.6 on S3 slows down as the log grows (every fetch lists the
    /// log's objects): keep such runs short, or the broker, not Kindling, is what is measured.
    #[arg(long)]
    broker_s3: bool,
}

fn parse_nemesis(s: &str) -> Result<Nemesis, String> {
    Nemesis::parse(s).ok_or_else(|| {
        let all: Vec<_> = Nemesis::ALL.iter().map(|n| n.as_str()).collect();
        format!("unknown nemesis {s:?}; use one of {}", all.join(", "))
    })
}

#[derive(Subcommand)]
enum Cmd {
    /// One chaos run.
    Run {
        #[command(flatten)]
        shape: Shape,
        /// The kindling binary.
        #[arg(long, default_value = "target/debug/kindling")]
        kindling: PathBuf,
        /// Where logs, data and results go (default: a new directory under the system's
        /// temporary directory, removed after a run without violations).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Keep the run directory even when the run passes.
        #[arg(long)]
        keep: bool,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Batch-client operations per second, over all clients.
        #[arg(long, default_value_t = 6.0)]
        rate: f64,
        /// Real Spark sessions (default: one if ops/dev/install-spark has run).
        #[arg(long)]
        sessions: Option<usize>,
        /// Real Spark batches spread over the run (default: one if ops/dev/install-spark has
        /// run).
        #[arg(long)]
        spark_batches: Option<usize>,
        /// How long jobs may take to end once the faults stop.
        #[arg(long, value_parser = duration::parse, default_value = "120s")]
        settle: Duration,
        /// The cluster must serve again this soon after the last fault (invariant 7).
        #[arg(long, value_parser = duration::parse, default_value = "30s")]
        recovery_bound: Duration,
        /// Most drivers at once per node.
        #[arg(long, default_value_t = 8)]
        max_drivers: usize,
        /// KINDLING_LOG of the nodes.
        #[arg(long, default_value = "info")]
        log: String,
        /// How long an idle node's log follower waits per fetch. tansu lists its whole log
        /// on every fetch: for hour-long runs, 400ms or more keeps the broker from being what
        /// is measured.
        #[arg(long, value_parser = duration::parse, default_value = "100ms")]
        kafka_tail_wait: Duration,
    },
    /// Print the fault schedule of a seed.
    Schedule {
        #[command(flatten)]
        shape: Shape,
    },
    /// Re-run the checkers on a kept run directory.
    Check {
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn nemeses(v: Vec<Nemesis>, broker_s3: bool) -> Vec<Nemesis> {
    match (v.is_empty(), broker_s3) {
        (false, _) => v,
        (true, true) => Nemesis::ALL.to_vec(),
        (true, false) => Nemesis::without_broker_restart(),
    }
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Schedule { shape } => {
            println!("seed {}", shape.seed);
            let mut s =
                schedule::ScheduleConfig::new(shape.nodes, shape.duration.as_millis() as u64);
            s.nemeses = nemeses(shape.nemeses, shape.broker_s3);
            s.min_pause_ms = shape.min_pause.as_millis() as u64;
            // Written, not printed: a reader that stops early (`| head`) ends the listing
            // instead of a panic on the broken pipe.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for f in schedule::schedule(shape.seed, &s) {
                let line = writeln!(
                    out,
                    "{:>8.1} s  hold {:>5.1} s  {}",
                    f.at_ms as f64 / 1000.0,
                    f.hold_ms as f64 / 1000.0,
                    serde_json::to_string(&f.action).unwrap_or_default()
                );
                if line.is_err() {
                    break;
                }
            }
            0
        }
        Cmd::Check { run_dir, seed } => match run::recheck(&run_dir, seed) {
            Ok(o) => {
                print!("{}", o.summary);
                i32::from(!o.violations.is_empty())
            }
            Err(e) => {
                eprintln!("kindling-chaos: {e:#}");
                2
            }
        },
        Cmd::Run {
            shape,
            kindling,
            run_dir,
            keep,
            clients,
            rate,
            sessions,
            spark_batches,
            settle,
            recovery_bound,
            max_drivers,
            log,
            kafka_tail_wait,
        } => {
            println!("seed {}", shape.seed);
            let temporary = run_dir.is_none();
            let dir = run_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "kindling-chaos-{}-{}",
                    shape.seed,
                    std::process::id()
                ))
            });
            let mut cfg = RunConfig::new(shape.seed, shape.duration, kindling, dir.clone());
            cfg.nodes = shape.nodes;
            cfg.nemeses = nemeses(shape.nemeses, shape.broker_s3);
            cfg.broker_on_s3 = shape.broker_s3;
            cfg.min_pause = shape.min_pause;
            cfg.clients = clients;
            cfg.rate = rate;
            cfg.sessions = sessions;
            cfg.spark_batches = spark_batches;
            cfg.settle = settle;
            cfg.recovery_bound = recovery_bound;
            cfg.max_drivers = max_drivers;
            cfg.log_filter = log;
            cfg.tail_wait = kafka_tail_wait;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            match rt.block_on(until_interrupted(run::run(cfg))) {
                Ok(o) => {
                    // The summary repeats the seed; the first line printed above is the one
                    // that survives a crash.
                    let failed = !o.violations.is_empty();
                    if failed || keep || !temporary {
                        println!("run directory: {}", o.dir.display());
                    }
                    print!(
                        "{}",
                        o.summary
                            .split_once('\n')
                            .map(|x| x.1)
                            .unwrap_or(&o.summary)
                    );
                    if !(failed || keep || !temporary) {
                        let _ = std::fs::remove_dir_all(&o.dir);
                    }
                    i32::from(failed)
                }
                Err(e) => {
                    eprintln!("kindling-chaos: the run could not complete: {e:#}");
                    eprintln!("logs kept in {}", dir.display());
                    2
                }
            }
        }
    };
    std::process::exit(code);
}

/// Runs `run` until it ends or the harness gets SIGINT or SIGTERM. On a signal the run is
/// dropped, and with it the cluster, whose nodes, broker and Mongo server are killed and
/// whose namespaces are removed: an interrupted run leaves nothing running behind it.
async fn until_interrupted<T>(run: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted (SIGINT)"),
        _ = term.recv() => anyhow::bail!("interrupted (SIGTERM)"),
    }
}
