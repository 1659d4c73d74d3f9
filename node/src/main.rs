//! `kindling`: a highly available job server for Apache Spark. This is the only place that
//! wires the pieces together: storage, leadership, core, projector, scheduler, backend,
//! driver gateway and REST API.

/// sled allocates on every write; jemalloc makes replay and appends about twice as fast as
/// the system allocator (see docs/benchmarks.md).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod api;
mod backend;
mod clock;
mod config;
mod core;
mod error;
mod gateway;
mod metrics;
mod projector;
mod runner;
mod scheduler;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, ServeArgs};
use kindling_events::{JobId, LogPosition, NodeId};
use kindling_raft::{Leadership, SingleNode};
use kindling_store::{EventLog, JobQuery, ProjectionStore, SledEventLog, SledProjections};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KINDLING_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
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
                .block_on(serve(cfg))
        }
    }
}

/// The node's secret, from which session secrets derive; created on first start.
fn node_key(data: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join("node.key");
    if let Ok(k) = std::fs::read(&path) {
        if k.len() >= 32 {
            return Ok(k);
        }
    }
    let key: [u8; 32] = rand::random();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(&key)?;
    f.sync_all()?;
    Ok(key.to_vec())
}

async fn open_log(cfg: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(match &cfg.log {
        config::LogConfig::Sled => Arc::new(
            SledEventLog::open(&cfg.data_dir.join("log")).context("cannot open the event log")?,
        ),
        config::LogConfig::Kafka {
            brokers,
            topic,
            replication,
        } => {
            let mut k = kindling_store_kafka::KafkaConfig::new(brokers.clone(), topic.clone());
            k.replication_factor = *replication;
            k.client_id = format!("kindling-node-{}", cfg.node_id);
            Arc::new(
                kindling_store_kafka::KafkaEventLog::open(k)
                    .await
                    .with_context(|| {
                        format!("cannot open the event log topic {topic} on {brokers}")
                    })?,
            )
        }
    })
}

async fn open_projections(cfg: &Config) -> anyhow::Result<Arc<dyn ProjectionStore>> {
    Ok(match &cfg.projections {
        config::ProjectionConfig::Sled => Arc::new(
            SledProjections::open(&cfg.data_dir.join("projections"))
                .context("cannot open the projections")?,
        ),
        config::ProjectionConfig::Mongo { uri, database } => Arc::new(
            kindling_store_mongo::MongoProjections::open(&kindling_store_mongo::MongoConfig {
                uri: uri.clone(),
                database: database.clone(),
            })
            .await
            .with_context(|| {
                format!("cannot open the projections in MongoDB database {database}")
            })?,
        ),
    })
}

/// The cluster's id, created on first start. It scopes what this cluster leaves on shared
/// machines (driver process tags).
fn cluster_id(data: &std::path::Path) -> anyhow::Result<String> {
    let path = data.join("cluster.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = hex::encode(rand::random::<[u8; 8]>());
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let prometheus = metrics::install()?;
    let shutdown = CancellationToken::new();

    let log = open_log(&cfg).await?;
    let projections = open_projections(&cfg).await?;
    let (projected_tx, projected) = tokio::sync::watch::channel(LogPosition(0));
    let projector = tokio::spawn(projector::run(
        log.clone(),
        projections.clone(),
        projected_tx,
        shutdown.clone(),
    ));
    // Replay whatever the projections have not seen before answering anything.
    let started = std::time::Instant::now();
    let end = log.end();
    let mut p = projected.clone();
    while *p.borrow_and_update() < end {
        p.changed()
            .await
            .context("the projector stopped during replay")?;
    }
    tracing::info!(
        events = end.0,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "projections caught up with the log"
    );

    let max_id = projections
        .jobs(&JobQuery {
            include_deleted: true,
            limit: usize::MAX,
            ..Default::default()
        })
        .await?
        .items
        .last()
        .map(|j| j.id.0 + 1)
        .unwrap_or(0);
    let leader = Arc::new(SingleNode::open(
        &data.join("raft"),
        NodeId(cfg.node_id),
        JobId(max_id),
    )?);
    let core = Arc::new(
        core::Core::new(
            NodeId(cfg.node_id),
            log.clone(),
            projections.clone(),
            leader.clone(),
            Arc::new(clock::SystemClock),
            projected,
        )
        .await?,
    );

    let driver_listener = tokio::net::TcpListener::bind(cfg.driver_listen)
        .await
        .with_context(|| format!("cannot listen for drivers on {}", cfg.driver_listen))?;
    let driver_addr = driver_listener.local_addr()?;
    let http_listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let http_addr = http_listener.local_addr()?;

    let heartbeat_interval = (cfg.driver_heartbeat_timeout / 5).max(Duration::from_millis(200));
    let gateway = Arc::new(gateway::Gateway::new(core.clone(), heartbeat_interval));
    let runner = runner::install(&data.join("runner")).context("cannot write the Python runner")?;
    let (backend_tx, backend_rx) = tokio::sync::mpsc::unbounded_channel();
    let backend: Arc<dyn backend::ClusterBackend> = Arc::new(backend::local::LocalBackend::new(
        backend::local::LocalConfig {
            spark_home: cfg.spark_home.clone(),
            python: cfg.python.clone(),
            master: cfg.local_master.clone(),
            drivers_dir: data.join("drivers"),
            runner,
            default_conf: cfg.spark_conf.clone(),
            cluster_id: cluster_id(data)?,
        },
        backend_tx,
    ));
    let scheduler = scheduler::Scheduler::new(
        core.clone(),
        backend.clone(),
        gateway.clone(),
        scheduler::SchedulerConfig {
            max_drivers: cfg.max_drivers,
            driver_endpoints: cfg
                .driver_advertise
                .clone()
                .unwrap_or_else(|| driver_addr.to_string()),
            heartbeat_timeout: cfg.driver_heartbeat_timeout,
            recovery_grace: cfg.recovery_grace,
            secret_key: node_key(data)?,
        },
        backend_rx,
    );
    let scheduler = tokio::spawn(scheduler.run(leader.watch(), shutdown.clone()));

    let grpc = {
        let svc = kindling_proto::driver::v1::driver_link_server::DriverLinkServer::new(
            gateway::DriverService(gateway.clone()),
        );
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(5)))
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    // Statements and results are small messages: without TCP_NODELAY each
                    // waits out a delayed ACK (40 ms).
                    tokio_stream::StreamExt::map(
                        tokio_stream::wrappers::TcpListenerStream::new(driver_listener),
                        |conn| {
                            if let Ok(c) = &conn {
                                let _ = c.set_nodelay(true);
                            }
                            conn
                        },
                    ),
                    shutdown.cancelled_owned(),
                )
                .await
        })
    };

    let state = Arc::new(api::AppState {
        core: core.clone(),
        gateway,
        backend,
        metrics: prometheus,
        trusted_user_header: cfg.trusted_user_header.clone(),
        leadership: leader.clone(),
        http_url: format!("http://{http_addr}"),
    });
    let app = api::router(state, cfg.max_body_bytes);
    let http = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            use axum::serve::ListenerExt;
            let listener = http_listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        })
    };

    tracing::info!(http = %http_addr, driver = %driver_addr, data = %data.display(), "kindling is ready");
    // One machine-readable line on stdout, for scripts and tests that start a node on port 0.
    println!(
        "{}",
        serde_json::json!({"event": "ready", "http": http_addr.to_string(), "driver": driver_addr.to_string(), "node": cfg.node_id})
    );
    std::io::stdout().flush().ok();

    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = http.await;
        let _ = grpc.await;
        let _ = scheduler.await;
        let _ = projector.await;
    })
    .await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
