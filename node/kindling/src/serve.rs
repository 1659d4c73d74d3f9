//! `kindling serve`: the composition root. Opens storage and replays it, joins the Raft
//! cluster, builds the core, the driver gateway, the cluster registry with its backends and
//! the scheduler, serves the driver link (gRPC) and the REST API, and stops them in order
//! on SIGTERM.

use crate::config::{self, Config};
use crate::membership::{
    driver_endpoints, lifted_terms, proposed_identity, start_member, with_leader, RaftMember,
};
use crate::security::Security;
use crate::storage::{open_log, open_projections};
use crate::{factory, metrics, runner};
use anyhow::Context;
use kindling_api as api;
use kindling_core::clusters;
use kindling_events::{JobId, LogPosition, NodeId};
use kindling_gateway as gateway;
use kindling_raft::{Leadership, MemberAddrs};
use kindling_store::JobQuery;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let security = Security::open(&cfg)?;
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
    let member =
        Arc::new(start_member(&cfg, addrs, raft_listener, security.cluster_secret.clone()).await?);
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
            gateway_tls: security.gateway_tls(&cfg)?,
        },
        backend_rx,
    );
    let scheduler = tokio::spawn(scheduler.run(leadership.clone(), shutdown.clone()));

    let grpc = {
        let driver_tls = security.tls.as_ref().map(|t| t.grpc_server_config());
        let svc = kindling_proto::driver::v1::driver_link_server::DriverLinkServer::new(
            gateway::DriverService(gateway.clone()),
        );
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(5)))
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    crate::gateway_listener::incoming(
                        driver_listener,
                        driver_tls,
                        shutdown.clone(),
                    ),
                    shutdown.cancelled_owned(),
                )
                .await
        })
    };

    let gauges = tokio::spawn(crate::gauges::run(
        core.clone(),
        gateway.clone(),
        data.to_path_buf(),
        shutdown.clone(),
    ));
    let peers = security.forwarder(&cfg)?;
    let state = Arc::new(api::AppState {
        core: core.clone(),
        gateway,
        clusters,
        metrics: prometheus,
        auth: security.authenticator.clone(),
        job_rules: cfg.auth.rules.clone(),
        credentials_dir: cfg.credentials_dir.clone(),
        cluster_secret: security.cluster_secret.clone(),
        long_polls: Arc::new(tokio::sync::Semaphore::new(cfg.http.max_long_polls)),
        stream_stall: cfg.http.stream_stall,
        cluster: member.clone(),
        forwarder: peers.clone(),
        tokens: Arc::new(kindling_core::tokens::TokenBook::new(core.clone())),
    });
    let app = api::router(state, cfg.max_body_bytes);
    let http = {
        let shutdown = shutdown.clone();
        let limits = cfg.http.limits.within(crate::http_server::raise_fd_limit());
        tokio::spawn(crate::http_server::serve(
            http_listener,
            app,
            limits,
            security.tls.as_ref().map(|t| t.server_config()),
            shutdown,
        ))
    };

    if member.cluster_view().members.len() == 1 {
        // A lone member leads as soon as it has caught up: say "ready" once it schedules.
        let mut leading = core.leading();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|t| t.is_some())).await;
    }
    crate::memory::release_freed();
    tracing::info!(http = %http_addr, driver = %driver_addr, data = %data.display(), "kindling is ready");
    // One machine-readable line on stdout, for scripts and tests that start a node on port 0.
    println!(
        "{}",
        serde_json::json!({"event": "ready", "http": http_addr.to_string(), "driver": driver_addr.to_string(), "raft": raft_addr.to_string(), "node": cfg.node_id})
    );
    std::io::stdout().flush().ok();

    wait_for_signal().await;
    tracing::info!("shutting down");
    let stopped_raft = crate::handover::step_down(&member, &peers).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = http.await;
        let _ = grpc.await;
        let _ = scheduler.await;
        let _ = projector.await;
        let _ = gauges.await;
    })
    .await;
    if !stopped_raft {
        if let Err(e) = member.shutdown().await {
            tracing::warn!(error = %e, "raft member did not stop cleanly");
        }
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

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
