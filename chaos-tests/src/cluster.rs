//! A real Kindling cluster as processes: N `kindling` nodes, each in its own network
//! namespace with its own data directory and Mongo database, every link between them and to
//! the broker and the Mongo server through a proxy, plus one spare node that starts only at
//! the end, on an empty projection database, to check that a fresh replay matches.
//!
//! The nodes follow the HA contract of `kindling serve` (issue 3): `--node-id`, `--listen`,
//! `--driver-listen`, `--raft-listen`, `--raft-advertise`, `--join`, `--drivers-dir`, Kafka
//! event log, MongoDB projections, and one JSON `ready` line on stdout. Every member holds
//! the run's cluster secret (`--cluster-secret-file`), so the Raft calls and forwarded
//! requests the faults hit are signed, as in production.

mod leadership;

pub use leadership::{agreed, leader_of, view, ClusterView};

use crate::ledger;
use crate::netns::{self, Netns};
pub use crate::node_process::{check_kindling, kill_drivers, NodeProc, CLUSTER_FLAGS};
use crate::proxy::{self, LinkMode, Proxy};
use crate::serve_args::secret_file;
pub use crate::serve_args::serve_args;
use crate::services::{self, Binaries, Service};
use crate::topology::{End, Link, NodePorts, Topology};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nodes: usize,
    pub kindling: PathBuf,
    /// Everything of the run lives here: logs, data, ledgers.
    pub dir: PathBuf,
    /// A real Spark home for sessions and Spark batches (the project's pyspark), if any.
    pub real_spark: Option<PathBuf>,
    pub max_drivers: usize,
    pub heartbeat_timeout_secs: u64,
    pub recovery_grace_secs: u64,
    /// `KINDLING_LOG` of the nodes.
    pub log_filter: String,
    /// The broker's log on S3 (SeaweedFS), so that it survives a broker restart; else in
    /// memory (see [`services::kafka`] for why that is the default).
    pub broker_on_s3: bool,
    /// The nodes' `--kafka-tail-wait-ms`: how often an idle node's log follower fetches.
    /// tansu lists the whole log on every fetch, so over a long run the followers' polling is
    /// most of the broker's work; a longer wait spares it, at the cost of cross-node reads
    /// waiting up to that long for others' writes.
    pub tail_wait: Duration,
}

pub struct Cluster {
    pub cfg: ClusterConfig,
    pub topo: Topology,
    /// Node ids of the cluster proper (the spare is `spare`).
    pub members: Vec<u64>,
    pub spare: u64,
    pub ledger: PathBuf,
    pub statement_ledger: PathBuf,
    pub app: PathBuf,
    /// The real Spark batch program.
    pub spark_app: PathBuf,
    pub drivers_dir: PathBuf,
    nodes: BTreeMap<u64, NodeProc>,
    proxies: HashMap<Link, Proxy>,
    pub s3: Option<Service>,
    pub kafka: Service,
    pub mongo: Service,
    /// Dropped last: the nodes and proxies live in them.
    _namespaces: Vec<Arc<Netns>>,
}

/// Runs blocking work (process starts, waits) from async code.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Cluster {
    /// Starts the services, the proxies and the N nodes, and waits until they form one
    /// cluster with a leader. Needs a multi-threaded tokio runtime.
    pub async fn start(cfg: ClusterConfig) -> Result<Cluster> {
        check_kindling(&cfg.kindling)?;
        netns::remove_stale();
        let bins = Binaries::find()?;
        std::fs::create_dir_all(&cfg.dir)?;
        let svc_dir = cfg.dir.join("services");
        std::fs::create_dir_all(&svc_dir)?;
        let (s3, kafka, mongo) = blocking(|| -> Result<_> {
            let s3 = if cfg.broker_on_s3 {
                Some(services::s3(&bins, &svc_dir)?)
            } else {
                None
            };
            let kafka = services::kafka(&bins, &svc_dir, s3.as_ref())?;
            let mongo = services::mongo(&bins, &svc_dir)?;
            Ok((s3, kafka, mongo))
        })?;

        // Ports for every node and the spare, held until all are chosen so they differ.
        let total = cfg.nodes as u64 + 1;
        let mut held = vec![];
        let mut http_listeners = HashMap::new();
        let mut nodes = vec![];
        for id in 1..=total {
            let mut take = || -> Result<u16> {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                let p = l.local_addr()?.port();
                held.push(l);
                Ok(p)
            };
            let (driver, raft) = (take()?, take()?);
            let http_l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let http = http_l.local_addr()?.port();
            http_listeners.insert(id, http_l);
            nodes.push(NodePorts {
                id,
                http,
                driver,
                raft,
            });
        }
        drop(held);
        let topo = Topology {
            nodes,
            kafka: kafka.addr,
            mongo: mongo.addr,
        };
        std::fs::write(
            cfg.dir.join("topology.json"),
            serde_json::to_string_pretty(&topo)?,
        )?;

        // Several clusters may run in one process (tests): number them.
        static CLUSTERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut namespaces = BTreeMap::new();
        for id in 1..=total {
            namespaces.insert(id, Netns::create(&format!("{seq}n{id}"))?);
        }
        let mut proxies = HashMap::new();
        for spec in topo.links() {
            let listener = match spec.link.from {
                End::Client => {
                    let End::Node(id) = spec.link.to else {
                        unreachable!("clients only reach nodes")
                    };
                    http_listeners
                        .remove(&id)
                        .context("one client link per node")?
                }
                End::Node(id) => namespaces[&id].bind(spec.listen).with_context(|| {
                    format!("cannot bind {} in node {id}'s namespace", spec.listen)
                })?,
                _ => unreachable!("dependencies open no links"),
            };
            let dial = match spec.link.to {
                End::Node(id) => namespaces[&id].dial(spec.target),
                _ => proxy::dial_addr(spec.target),
            };
            let name = format!(
                "{:?}->{:?}/{:?}",
                spec.link.from, spec.link.to, spec.link.service
            );
            proxies.insert(spec.link, Proxy::spawn(&name, listener, dial)?);
        }

        let ledger_path = cfg.dir.join("ledger.tsv");
        let statement_ledger = cfg.dir.join("statements.txt");
        std::fs::write(&statement_ledger, "")?;
        let spark_home =
            ledger::create_spark_home(&cfg.dir, &ledger_path, cfg.real_spark.as_deref())?;
        let drivers_dir = cfg.dir.join("drivers");
        std::fs::create_dir_all(&drivers_dir)?;

        // The members prove this secret on every Raft call and forwarded request, so the
        // faults run against the signed links a production cluster has.
        let mut secret = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut secret)?;
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(secret_file(&cfg), secret + "\n")?;

        let members: Vec<u64> = (1..=cfg.nodes as u64).collect();
        let mut procs = BTreeMap::new();
        for p in &topo.nodes {
            let dir = cfg.dir.join(format!("n{}", p.id));
            std::fs::create_dir_all(&dir)?;
            let args = serve_args(&cfg, &topo, p, &dir, &drivers_dir, &spark_home);
            std::fs::write(dir.join("args.txt"), args.join(" ") + "\n")?;
            procs.insert(
                p.id,
                NodeProc {
                    id: p.id,
                    ports: *p,
                    dir,
                    args,
                    child: None,
                    paused: false,
                    ns: namespaces[&p.id].clone(),
                },
            );
        }
        let spare = total;
        let app = ledger::app_path(&cfg.dir);
        let spark_app = ledger::spark_app_path(&cfg.dir);
        let mut cluster = Cluster {
            cfg,
            topo,
            members,
            spare,
            ledger: ledger_path,
            statement_ledger,
            app,
            spark_app,
            drivers_dir,
            nodes: procs,
            proxies,
            s3,
            kafka,
            mongo,
            _namespaces: namespaces.into_values().collect(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        cluster.start_node(1)?;
        cluster
            .wait_for(&http, Duration::from_secs(60), |views| {
                views.get(&1).is_some_and(|v| v.leader_id == Some(1))
            })
            .await
            .context("node 1 did not become the leader of a new cluster")?;
        for id in 2..=cluster.cfg.nodes as u64 {
            cluster.start_node(id)?;
        }
        cluster.wait_agreed(&http, Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    pub fn node(&self, id: u64) -> &NodeProc {
        &self.nodes[&id]
    }

    /// `http://127.0.0.1:<port>` of each member, as clients reach them.
    pub fn client_urls(&self) -> Vec<(u64, String)> {
        self.members
            .iter()
            .map(|id| (*id, format!("http://{}", self.nodes[id].ports.http_addr())))
            .collect()
    }

    pub fn url(&self, id: u64) -> String {
        format!("http://{}", self.nodes[&id].ports.http_addr())
    }

    pub fn start_node(&mut self, id: u64) -> Result<()> {
        let kindling = self.cfg.kindling.clone();
        let filter = self.cfg.log_filter.clone();
        let node = self.nodes.get_mut(&id).context("no such node")?;
        blocking(|| node.start(&kindling, &filter))
    }

    pub fn kill9(&mut self, id: u64) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.kill9();
        }
    }

    /// kill -9 (if running) and start again on the same ports and directories.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        self.kill9(id);
        self.start_node(id)
    }

    pub fn pause(&mut self, id: u64) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.signal(libc::SIGSTOP);
            n.paused = n.running();
        }
    }

    pub fn resume(&mut self, id: u64) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.signal(libc::SIGCONT);
            n.paused = false;
        }
    }

    pub fn set_links(&self, links: &[Link], mode: LinkMode) {
        for l in links {
            if let Some(p) = self.proxies.get(l) {
                p.set(mode);
            }
        }
    }

    /// What each proxy has carried so far, by name.
    pub fn proxy_stats(&self) -> Vec<crate::proxy::ProxyStats> {
        let mut v: Vec<_> = self.proxies.values().map(|p| p.stats()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn links(&self) -> Vec<Link> {
        let mut v: Vec<Link> = self.proxies.keys().copied().collect();
        v.sort();
        v
    }

    /// Every link back to pass, every stopped dependency started again, then every paused
    /// node continued and every stopped node started (a node starts only once its log is up).
    pub fn heal_all(&mut self) -> Result<()> {
        self.set_links(&self.links(), LinkMode::Pass);
        blocking(|| -> Result<()> {
            if !self.mongo.running() {
                self.mongo.start()?;
            }
            if !self.kafka.running() {
                self.kafka.start()?;
            }
            Ok(())
        })?;
        for id in self.members.clone() {
            let n = &self.nodes[&id];
            if n.paused {
                self.resume(id);
            }
            if !self.nodes[&id].running() {
                self.start_node(id)?;
            }
        }
        Ok(())
    }

    /// Starts the spare node on an empty data directory and database; it joins the
    /// cluster and replays the log into fresh projections.
    pub async fn start_spare(&mut self, http: &reqwest::Client) -> Result<String> {
        let spare = self.spare;
        let join: Vec<String> = self
            .members
            .iter()
            .map(|id| self.nodes[id].ports.raft_addr().to_string())
            .collect();
        let n = self.nodes.get_mut(&spare).context("no spare")?;
        n.args.push("--join".into());
        n.args.push(join.join(","));
        self.start_node(spare)?;
        let url = self.url(spare);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while view(http, &url).await.and_then(|v| v.leader_id).is_none() {
            if tokio::time::Instant::now() > deadline {
                bail!("the spare node did not learn the leader within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(url)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            n.kill9();
        }
        kill_drivers(&self.drivers_dir);
    }
}
