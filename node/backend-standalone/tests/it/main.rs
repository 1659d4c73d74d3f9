//! The standalone backend against a real Spark standalone cluster ([`cluster`]: a master with
//! its REST submission server and one-core workers, started from the project venv's pyspark
//! and killed, with everything they started, when a test ends), and the `ClusterBackend`
//! conformance suite on it ([`conformance`]). Drivers run on the workers in cluster mode.
//! Waits poll observable state against deadlines.

mod cluster;
mod conformance;

use cluster::{free_port, Cluster};
use kindling_backend::{BackendEvent, ClusterBackend, Found, LaunchSpec, SessionLink};
use kindling_backend_standalone::{StandaloneBackend, StandaloneConfig, EXIT_FAILED, EXIT_KILLED};
use kindling_events::spec::{BatchSpec, JobKind, JobSpec, SessionKind, SessionSpec};
use kindling_events::{Attempt, JobId};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

/// A whole driver log, as the tests read it.
const ALL: kindling_backend::LogWindow = kindling_backend::LogWindow::Range {
    from: 0,
    size: kindling_backend::MAX_LOG_LINES,
};

/// A cold PySpark driver on this cluster takes 10-15 s to start on 2 cores.
const DRIVER: Duration = Duration::from_secs(90);

/// A backend and the events it reported so far.
struct Watcher {
    backend: StandaloneBackend,
    events: UnboundedReceiver<BackendEvent>,
    seen: Vec<BackendEvent>,
    shutdown: CancellationToken,
}

impl Watcher {
    fn new(cfg: StandaloneConfig) -> Watcher {
        let (tx, events) = unbounded_channel();
        let shutdown = CancellationToken::new();
        Watcher {
            backend: StandaloneBackend::new(cfg, tx, shutdown.clone()),
            events,
            seen: vec![],
            shutdown,
        }
    }

    /// Waits for the event `pick` recognises among those reported so far and to come.
    async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&BackendEvent) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + DRIVER;
        loop {
            if let Some(found) = self.seen.iter().find_map(&pick) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.seen.push(ev),
                _ => panic!("no {what} within {DRIVER:?}; events: {:?}", self.seen),
            }
        }
    }

    async fn exit_of(&mut self, job: u64) -> Option<i32> {
        self.wait_for(&format!("exit of job {job}"), |ev| match ev {
            BackendEvent::Exited {
                job: j, exit_code, ..
            } if j.0 == job => Some(*exit_code),
            _ => None,
        })
        .await
    }

    async fn app_of(&mut self, job: u64) -> (String, Option<String>) {
        self.wait_for(&format!("application id of job {job}"), |ev| match ev {
            BackendEvent::AppIdentified {
                job: j,
                app_id,
                spark_ui_url,
                ..
            } if j.0 == job => Some((app_id.clone(), spark_ui_url.clone())),
            _ => None,
        })
        .await
    }

    /// Polls the driver's log until a line contains `needle`; returns the log.
    async fn log_containing(&self, name: &str, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + DRIVER;
        loop {
            let lines = self.backend.log(name, ALL).await.map(|s| s.lines).unwrap();
            if lines.iter().any(|l| l.contains(needle)) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not in the log of {name}:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn batch(job: u64, file: &Path, args: &[&str]) -> LaunchSpec {
    LaunchSpec {
        job: JobId(job),
        attempt: Attempt(1),
        driver_name: kindling_backend::driver_name(JobId(job), Attempt(1)),
        spec: JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: file.display().to_string(),
                class_name: None,
                args: args.iter().map(|a| a.to_string()).collect(),
            }),
            name: None,
            owner: None,
            proxy_user: None,
            resources: Default::default(),
        },
        session: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_standalone_batches_report_exit_codes_app_ids_and_logs() {
    let cluster = Cluster::start(2).await;
    let mut w = Watcher::new(cluster.config());
    let ok = cluster.write(
        "apps/sum.py",
        "import sys\n\
         from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.getOrCreate()\n\
         n = spark.sparkContext.parallelize(range(1, int(sys.argv[1]) + 1), 2).sum()\n\
         print('kindling-result=%d' % n)\n\
         spark.stop()\n",
    );
    let spec = batch(1, &ok, &["100"]);
    let driver_id = w.backend.launch(spec.clone()).await.unwrap();
    assert!(driver_id.starts_with("driver-"), "{driver_id}");
    assert_eq!(w.exit_of(1).await, Some(0));
    // The app registered with the master: executors ran on the other worker.
    let (app_id, ui) = w.app_of(1).await;
    assert!(app_id.starts_with("app-"), "{app_id}");
    assert!(
        ui.as_deref()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{ui:?}"
    );
    let lines = w
        .log_containing("kindling-1-1", "kindling-result=5050")
        .await;
    assert!(lines.iter().any(|l| l == "stderr: "), "{lines:?}");

    // A re-issued launch finds the driver instead of submitting a second one.
    w.seen.clear();
    assert_eq!(w.backend.launch(spec).await.unwrap(), driver_id);
    assert_eq!(cluster.driver_count().await, 1);
    assert_eq!(w.exit_of(1).await, Some(0));

    let fail = cluster.write(
        "apps/fail.py",
        "import sys\nprint('about to fail', flush=True)\nsys.exit(3)\n",
    );
    w.backend.launch(batch(2, &fail, &[])).await.unwrap();
    assert_eq!(w.exit_of(2).await, Some(EXIT_FAILED));
    w.log_containing("kindling-2-1", "about to fail").await;
    assert_eq!(
        w.backend
            .find(JobId(2), Attempt(1), "kindling-2-1")
            .await
            .unwrap(),
        Found::Ended {
            exit_code: Some(EXIT_FAILED)
        }
    );
    assert_eq!(
        w.backend
            .find(JobId(3), Attempt(1), "kindling-3-1")
            .await
            .unwrap(),
        Found::Never
    );
    w.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_standalone_session_driver_is_found_after_a_restart_and_killed() {
    let cluster = Cluster::start(2).await;
    // The runner and its proto in different directories: the proto reaches the driver's
    // working directory as the submission's appResource.
    let runner = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runner/kindling_runner.py"),
    )
    .unwrap();
    cluster.write("runner/kindling_runner.py", &runner);
    cluster.write("proto/driver.proto", kindling_proto::DRIVER_PROTO);
    // No node listens there: the runner starts, then keeps trying to reach one.
    let endpoints = format!("127.0.0.1:{}", free_port());
    let spec = LaunchSpec {
        job: JobId(5),
        attempt: Attempt(1),
        driver_name: "kindling-5-1".into(),
        spec: JobSpec {
            kind: JobKind::Session(SessionSpec {
                kind: SessionKind::Pyspark,
                heartbeat_timeout_secs: 60,
                ttl: None,
                idle_timeout: None,
            }),
            name: None,
            owner: None,
            proxy_user: None,
            resources: Default::default(),
        },
        session: Some(SessionLink {
            endpoints: endpoints.clone(),
            secret: "s3cret".into(),
            kafka: None,
            tls: None,
        }),
    };

    let mut first = Watcher::new(cluster.config());
    let driver_id = first.backend.launch(spec.clone()).await.unwrap();
    let (app_id, _) = first.app_of(5).await;
    let ready = format!(
        "kindling-runner: spark application {app_id} ready; job 5 attempt 1, endpoints {endpoints}"
    );
    first.log_containing("kindling-5-1", &ready).await;

    // The node restarts: a fresh backend knows nothing but the driver's name.
    first.shutdown.cancel();
    drop(first);
    let mut second = Watcher::new(cluster.config());
    assert_eq!(
        second
            .backend
            .find(JobId(5), Attempt(1), "kindling-5-1")
            .await
            .unwrap(),
        Found::Running {
            driver_id: driver_id.clone()
        }
    );
    assert_eq!(second.backend.launch(spec).await.unwrap(), driver_id);
    assert_eq!(cluster.driver_count().await, 1);

    second.backend.kill("kindling-5-1").await.unwrap();
    assert_eq!(second.exit_of(5).await, Some(EXIT_KILLED));
    assert_eq!(
        cluster.status(&driver_id).await.unwrap()["driverState"],
        "KILLED"
    );
    second.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_standalone_a_lost_worker_ends_or_relaunches_its_driver() {
    let mut cluster = Cluster::start(3).await;
    let mut w = Watcher::new(cluster.config());
    let slow = cluster.write(
        "apps/slow.py",
        "import time\n\
         from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.getOrCreate()\n\
         print('started', flush=True)\n\
         time.sleep(600)\n",
    );

    // Unsupervised, the master marks the driver ERROR as soon as its worker disconnects.
    let driver_id = w.backend.launch(batch(9, &slow, &[])).await.unwrap();
    w.app_of(9).await;
    w.log_containing("kindling-9-1", "started").await;
    cluster.kill_worker_of(&driver_id).await;
    assert_eq!(w.exit_of(9).await, None);
    assert_eq!(
        cluster.status(&driver_id).await.unwrap()["driverState"],
        "ERROR"
    );
    let text = w
        .backend
        .log("kindling-9-1", ALL)
        .await
        .map(|s| s.lines)
        .unwrap()
        .join("\n");
    assert!(text.contains("which does not answer"), "{text}");
    assert!(text.contains("ERROR"), "{text}");

    // Supervised, the master marks the id RELAUNCHING and submits the driver again under a
    // new id, on a worker that is left; the backend follows it there.
    let mut spec = batch(10, &slow, &[]);
    spec.spec
        .resources
        .conf
        .insert("spark.driver.supervise".into(), "true".into());
    let first_id = w.backend.launch(spec).await.unwrap();
    let (first_app, _) = w.app_of(10).await;
    cluster.kill_worker_of(&first_id).await;
    w.seen.clear();
    let (second_app, _) = w.app_of(10).await;
    assert_ne!(first_app, second_app);
    assert_eq!(
        cluster.status(&first_id).await.unwrap()["driverState"],
        "RELAUNCHING"
    );
    assert_eq!(cluster.driver_count().await, 3);
    w.backend.kill("kindling-10-1").await.unwrap();
    assert_eq!(w.exit_of(10).await, Some(EXIT_KILLED));
    w.shutdown.cancel();
}
