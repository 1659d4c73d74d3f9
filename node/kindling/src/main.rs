//! `kindling`: a highly available job server for Apache Spark. This is the only place that
//! wires the pieces together: storage, leadership, core, projector, scheduler, backend,
//! driver gateway and REST API.

/// sled allocates on every write; jemalloc makes replay and appends about twice as fast as
/// the system allocator (see docs/benchmarks.md).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod config;
mod factory;
mod metrics;
mod runner;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, ServeArgs};
use kindling_api as api;
use kindling_core::{clusters, LeaderState, MemberError};
use kindling_events::{JobId, LogPosition, NodeId};
use kindling_gateway as gateway;
use kindling_raft::{
    ClusterConfig, ClusterIdentity, ClusterMember, IdAllocator, LeaderCheck, Leadership,
    MemberAddrs,
};
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
                // openraft logs every election and replication hiccup at info.
                .unwrap_or_else(|_| "info,openraft=warn".into()),
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

/// The identity this node proposes if the cluster has none yet: what a data directory of an
/// earlier, single-node Kindling holds (`cluster.id`, `node.key`), so its drivers and
/// session secrets stay valid, otherwise fresh random values. `term_base` lifts Raft's terms
/// above every scheduler term the projections have seen.
fn proposed_identity(data: &std::path::Path, term_base: u64) -> ClusterIdentity {
    let cluster_id = std::fs::read_to_string(data.join("cluster.id"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()));
    let key = std::fs::read(data.join("node.key"))
        .ok()
        .filter(|k| k.len() >= 32)
        .unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
    ClusterIdentity {
        cluster_id,
        key,
        term_base,
    }
}

/// Leadership as the rest of the node sees it: Raft's, with terms lifted by `base`.
fn lifted_terms(
    mut raft: tokio::sync::watch::Receiver<kindling_raft::LeaderState>,
    base: u64,
) -> tokio::sync::watch::Receiver<LeaderState> {
    let lift = move |s: kindling_raft::LeaderState| LeaderState {
        term: kindling_events::Term(s.term.0 + base),
        leader: s.leader,
        is_leader: s.is_leader,
    };
    let (tx, rx) = tokio::sync::watch::channel(lift(*raft.borrow_and_update()));
    tokio::spawn(async move {
        while raft.changed().await.is_ok() {
            if tx.send(lift(*raft.borrow_and_update())).is_err() {
                return;
            }
        }
        // The member stopped: nobody leads as far as this node knows.
        tx.send_modify(|s| s.is_leader = false);
    });
    rx
}

/// Starts this node's Raft member and makes it part of a cluster: the one it belongs to
/// already (a restart), the one `join` names, or a new one of its own.
async fn start_member(
    cfg: &Config,
    addrs: MemberAddrs,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<ClusterMember> {
    let config = ClusterConfig::new(
        NodeId(cfg.node_id),
        addrs,
        cfg.data_dir.join("raft-cluster"),
    );
    let member = ClusterMember::start(config, listener)
        .await
        .context("cannot start the raft member")?;
    if cfg.join.is_empty() {
        member
            .bootstrap()
            .await
            .context("cannot bootstrap the cluster")?;
        return Ok(member);
    }
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(200);
    loop {
        match member.join(&cfg.join).await {
            Ok(()) => return Ok(member),
            Err(e) if started.elapsed() < Duration::from_secs(120) => {
                tracing::warn!(error = %e, peers = ?cfg.join, "cannot join the cluster yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot join the cluster at {:?}", cfg.join))
            }
        }
    }
}

/// Retries a request that needs the Raft leader while the cluster elects one.
async fn with_leader<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kindling_raft::Result<T>>,
{
    let started = std::time::Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && started.elapsed() < Duration::from_secs(60) => {
                tracing::info!(error = %e, "{what}: waiting for a leader");
            }
            Err(e) => return Err(e).with_context(|| format!("cannot {what}")),
        }
    }
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
            tail_wait,
            ..
        } => {
            let mut k = kindling_store_kafka::KafkaConfig::new(brokers.clone(), topic.clone());
            k.replication_factor = *replication;
            k.tail_fetch_wait = *tail_wait;
            k.client_id = format!("kindling-node-{}", cfg.node_id);
            // A node started while its broker is down, restarting or too slow to answer in
            // time waits for it rather than exiting: with no log it can serve nothing, and
            // once the broker answers it goes on as any node would. SIGTERM still stops it.
            let what = format!("open the event log topic {topic} on {brokers}");
            Arc::new(
                until_ok(&what, || {
                    kindling_store_kafka::KafkaEventLog::open(k.clone())
                })
                .await,
            )
        }
    })
}

/// The first pause after a failed start-up step on the broker; each next pause doubles, up to
/// `BROKER_BACKOFF_MAX`.
const BROKER_BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BROKER_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs a start-up step on the broker until it succeeds, warning after each failure: a node
/// whose broker is down or slow waits for it rather than exiting.
async fn until_ok<T, E, F, Fut>(what: &str, mut step: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = BROKER_BACKOFF_FIRST;
    let mut attempt = 1u32;
    loop {
        match step().await {
            Ok(v) => return v,
            Err(e) => tracing::warn!(
                error = %e,
                attempt,
                retry_in_ms = backoff.as_millis() as u64,
                "cannot {what} yet; retrying"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BROKER_BACKOFF_MAX);
        attempt += 1;
    }
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

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let prometheus = metrics::install()?;
    let shutdown = CancellationToken::new();

    let log = open_log(&cfg).await?;
    let projections = open_projections(&cfg).await?;
    let (projected_tx, projected) = tokio::sync::watch::channel(LogPosition(0));
    let terms = Arc::new(kindling_core::leader_terms::LeaderTerms::default());
    let projector = tokio::spawn(kindling_core::projector::run(
        log.clone(),
        projections.clone(),
        projected_tx,
        terms.clone(),
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

    let known = projections
        .jobs(&JobQuery {
            include_deleted: true,
            limit: usize::MAX,
            ..Default::default()
        })
        .await?
        .items;
    let max_id = known.last().map(|j| j.id.0 + 1).unwrap_or(0);
    // The newest term any leader acted in: the projections' leader fence, which the replay
    // has brought to the log's end (a leader that only took over left its marker there), or
    // the jobs' own (projections kept before the fence was). A new cluster on this log (its
    // Raft state gone) lifts its terms above it, or its leaders would count as out of date.
    let max_term = known
        .iter()
        .map(|j| j.max_term.0)
        .max()
        .unwrap_or(0)
        .max(projections.fence().await?.newest().0);

    let driver_listener = tokio::net::TcpListener::bind(cfg.driver_listen)
        .await
        .with_context(|| format!("cannot listen for drivers on {}", cfg.driver_listen))?;
    let driver_addr = driver_listener.local_addr()?;
    let http_listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let http_addr = http_listener.local_addr()?;
    let raft_listener = tokio::net::TcpListener::bind(cfg.raft_listen)
        .await
        .with_context(|| format!("cannot listen for raft peers on {}", cfg.raft_listen))?;
    let raft_addr = raft_listener.local_addr()?;

    let addrs = MemberAddrs::new(
        cfg.raft_advertise
            .clone()
            .unwrap_or_else(|| raft_addr.to_string()),
        cfg.http_advertise
            .clone()
            .unwrap_or_else(|| http_addr.to_string()),
    )
    .with_driver(
        cfg.driver_advertise
            .clone()
            .unwrap_or_else(|| driver_addr.to_string()),
    );
    let member = Arc::new(start_member(&cfg, addrs, raft_listener).await?);
    let identity = with_leader("agree on the cluster's identity", || {
        member.identity(proposed_identity(data, max_term))
    })
    .await?;
    with_leader("raise the job id floor", || {
        member.ensure_id_floor(JobId(max_id))
    })
    .await?;
    // For operators and scripts: which cluster's drivers and pods are this node's.
    std::fs::write(data.join("cluster.id"), &identity.cluster_id)
        .with_context(|| format!("cannot write {}", data.join("cluster.id").display()))?;
    let leadership = lifted_terms(Leadership::watch(member.as_ref()), identity.term_base);
    tracing::info!(
        cluster = %identity.cluster_id,
        node = cfg.node_id,
        raft = %raft_addr,
        "member of the cluster"
    );

    // With a shared log (Kafka), a job created on another node a moment ago may not have
    // reached this node yet; with the embedded log only this node writes.
    let arrival_wait = match cfg.log {
        config::LogConfig::Sled => Duration::ZERO,
        config::LogConfig::Kafka { .. } => Duration::from_secs(3),
    };
    let core = Arc::new(
        kindling_core::Core::new(
            NodeId(cfg.node_id),
            kindling_core::Storage {
                log: log.clone(),
                projections: projections.clone(),
                projected,
                writer_id: format!("kindling-leader-{}", identity.cluster_id),
                fenced_writes: !matches!(
                    cfg.log,
                    config::LogConfig::Kafka {
                        transactions: false,
                        ..
                    }
                ),
                terms,
            },
            Arc::new(RaftMember(member.clone())),
            Arc::new(kindling_core::SystemClock),
            leadership.clone(),
            arrival_wait,
        )
        .await?,
    );

    let heartbeat_interval = (cfg.driver_heartbeat_timeout / 5).max(Duration::from_millis(200));
    let routes = match &cfg.driver_route {
        config::DriverRouteConfig::Grpc => None,
        config::DriverRouteConfig::Kafka {
            brokers,
            prefix,
            replication,
        } => {
            let routes = gateway::kafka_route::KafkaRoutes::start(
                gateway::kafka_route::RouteConfig {
                    brokers: brokers.clone(),
                    prefix: prefix.clone(),
                    replication: *replication,
                    client_id: format!("kindling-node-{}", cfg.node_id),
                },
                shutdown.clone(),
            )?;
            tracing::info!(%brokers, %prefix, "session drivers use kafka routes");
            Some(routes)
        }
    };
    let gateway = gateway::Gateway::new(
        core.clone(),
        heartbeat_interval,
        {
            let member = member.clone();
            Box::new(move || {
                let view = member.cluster_view();
                view.leader_member()
                    .map(|m| m.driver_addr.clone())
                    .filter(|a| !a.is_empty())
            })
        },
        routes,
    );
    let runner = runner::install(&data.join("runner")).context("cannot write the Python runner")?;
    let (backend_tx, backend_rx) = tokio::sync::mpsc::unbounded_channel();
    let clusters = Arc::new(wire_clusters(
        &cfg,
        &identity.cluster_id,
        runner,
        core.clone(),
        backend_tx,
        shutdown.clone(),
    ));
    let scheduler = kindling_core::scheduler::Scheduler::new(
        core.clone(),
        log.clone(),
        clusters.catalog.builtin().clone(),
        clusters.backends.clone(),
        gateway.clone(),
        kindling_core::scheduler::SchedulerConfig {
            driver_endpoints: {
                let member = member.clone();
                Arc::new(move || driver_endpoints(&member.cluster_view()))
            },
            heartbeat_timeout: cfg.driver_heartbeat_timeout,
            recovery_grace: cfg.recovery_grace,
            secret_key: identity.key.clone(),
        },
        backend_rx,
    );
    let scheduler = tokio::spawn(scheduler.run(leadership.clone(), shutdown.clone()));

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
        clusters,
        metrics: prometheus,
        trusted_user_header: cfg.trusted_user_header.clone(),
        cluster: member.clone(),
        forwarder: api::forward::Forwarder::new(cfg.max_body_bytes),
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

    if member.cluster_view().members.len() == 1 {
        // A lone member leads as soon as it has caught up: say "ready" once it schedules.
        let mut leading = core.leading();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|t| t.is_some())).await;
    }
    tracing::info!(http = %http_addr, driver = %driver_addr, data = %data.display(), "kindling is ready");
    // One machine-readable line on stdout, for scripts and tests that start a node on port 0.
    println!(
        "{}",
        serde_json::json!({"event": "ready", "http": http_addr.to_string(), "driver": driver_addr.to_string(), "raft": raft_addr.to_string(), "node": cfg.node_id})
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
    if let Err(e) = member.shutdown().await {
        tracing::warn!(error = %e, "raft member did not stop cleanly");
    }
    Ok(())
}

/// The cluster registry: the built-in `local` cluster from the node's flags (the local
/// backend, as `kindling serve` always ran it), the registered ones from the log, and one
/// backend per cluster built on first use.
fn wire_clusters(
    cfg: &Config,
    kindling_id: &str,
    runner: std::path::PathBuf,
    core: Arc<kindling_core::Core>,
    events: tokio::sync::mpsc::UnboundedSender<kindling_backend::BackendEvent>,
    shutdown: CancellationToken,
) -> clusters::Clusters {
    use kindling_events::{Capacity, Cluster, ClusterConfig, DEFAULT_CLUSTER};
    let builtin = Cluster {
        name: DEFAULT_CLUSTER.into(),
        config: ClusterConfig {
            connection: [("master".to_string(), cfg.local_master.clone())].into(),
            spark_conf: cfg.spark_conf.clone(),
            capacity: Capacity {
                max_drivers: Some(u32::try_from(cfg.max_drivers).unwrap_or(u32::MAX)),
                ..Capacity::default()
            },
            ..ClusterConfig::local()
        },
        revision: LogPosition(0),
        registered_at_ms: 0,
        updated_at_ms: 0,
    };
    let ctx = kindling_backend::NodeContext {
        kindling_id: kindling_id.to_string(),
        spark_home: cfg.spark_home.clone(),
        python: cfg.python.clone(),
        local_master: cfg.local_master.clone(),
        drivers_dir: cfg.drivers_dir.clone(),
        runner,
        kept_logs_dir: cfg.data_dir.join("kubernetes-logs"),
    };
    let backends = Arc::new(kindling_backend::Backends::new(
        Arc::new(factory::NodeBackends(ctx)),
        events,
        shutdown,
    ));
    let catalog = Arc::new(clusters::catalog::Catalog::new(builtin, core.clone()));
    clusters::Clusters::new(catalog, backends, core)
}

/// The Raft member as the core asks it: job ids and confirmation of leadership.
struct RaftMember(Arc<ClusterMember>);

fn member_error(e: kindling_raft::RaftError) -> MemberError {
    if e.is_retryable() {
        MemberError::no_leader(e.to_string())
    } else {
        MemberError::failed(e.to_string())
    }
}

#[async_trait::async_trait]
impl kindling_core::Member for RaftMember {
    async fn next_job_id(&self) -> Result<JobId, MemberError> {
        IdAllocator::next_job_id(self.0.as_ref())
            .await
            .map_err(member_error)
    }

    async fn confirm_leadership(&self) -> Result<(), MemberError> {
        LeaderCheck::confirm_leadership(self.0.as_ref())
            .await
            .map_err(member_error)
    }
}

/// The driver gateways of every member, the leader's first: a session driver tries them in
/// order until one accepts it (only the leader does).
fn driver_endpoints(view: &kindling_raft::ClusterView) -> String {
    let mut members: Vec<_> = view
        .members
        .iter()
        .filter(|m| !m.driver_addr.is_empty())
        .collect();
    members.sort_by_key(|m| (!m.leader, m.id));
    members
        .iter()
        .map(|m| m.driver_addr.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
