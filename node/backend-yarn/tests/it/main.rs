//! The YARN backend against a recorded-response FAKE of a YARN cluster's HTTP side
//! ([`yarn_fake`], answering with `tests/fixtures/yarn/`) and a stand-in `spark-submit`: no YARN
//! can run on the development machines. The stand-in is a shell script in a temporary
//! SPARK_HOME: it records its command line, environment and properties file, prints what
//! `spark-submit --master yarn --deploy-mode cluster` prints, and "submits" by leaving the
//! application id where the fake takes it in. Tests script each application's life through
//! the fake. docs/yarn.md says how to check the backend against a real cluster.
//! Waits are on observable state with deadlines; nothing sleeps to synchronise. The
//! `ClusterBackend` conformance suite runs on the fake too ([`conformance`]).

mod conformance;
mod yarn_fake;

use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, Found, LaunchSpec, SessionLink,
};
use kindling_backend_yarn::{YarnAuth, YarnBackend, YarnConfig};
use kindling_events::spec::{
    BatchSpec, JobKind, JobSpec, SessionKind, SessionSpec, SparkResources,
};
use kindling_events::{Attempt, JobId};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::CancellationToken;
use yarn_fake::{fixtures_dir, RmFake};

/// A whole driver log, as the tests read it.
const ALL: kindling_backend::LogWindow = kindling_backend::LogWindow::Range {
    from: 0,
    size: kindling_backend::MAX_LOG_LINES,
};

const DEADLINE: Duration = Duration::from_secs(20);
const USER: &str = "alice";

/// The stand-in `spark-submit`. `@FIXTURES@` is replaced by the fixtures' directory.
const STAND_IN: &str = r#"#!/bin/sh
# A stand-in for spark-submit in YARN cluster mode, for tests (no YARN runs here). It records
# its command line, environment and properties file, "submits" by leaving the application id
# where the ResourceManager fake takes it in, and prints what spark-submit prints.
home=$(cd "$(dirname "$0")/.." && pwd)
calls="$home/submissions"
mkdir -p "$calls"
# A number per run; mkdir is atomic, so runs at the same time get different ones.
n=1
while ! mkdir "$calls/$n.run" 2>/dev/null; do n=$((n + 1)); done
id=$(printf '%04d' "$n")
app="application_1700000000000_$id"
printf '%s\0' "$@" > "$calls/$id.args"
printf 'HADOOP_CONF_DIR=%s\nYARN_CONF_DIR=%s\nHADOOP_USER_NAME=%s\nSPARK_HOME=%s\n' \
  "$HADOOP_CONF_DIR" "$YARN_CONF_DIR" "$HADOOP_USER_NAME" "$SPARK_HOME" > "$calls/$id.env"
prev=
for a in "$@"; do
  if [ "$prev" = --properties-file ]; then
    cp "$a" "$calls/$id.properties"
    stat -c %a "$a" > "$calls/$id.properties-mode"
  fi
  prev=$a
done
mode=$(cat "$home/mode" 2>/dev/null || echo submitted)
if [ "$mode" = race ]; then
  # Two launches of one driver at once: neither submits before both have started.
  i=0
  while [ "$(ls -d "$calls"/*.run | wc -l)" -lt 2 ] && [ "$i" -lt 400 ]; do
    sleep 0.05; i=$((i + 1))
  done
  mode=submitted
fi
case "$mode" in
  submitted)
    echo "$app" > "$calls/$id.app.tmp"
    mv "$calls/$id.app.tmp" "$calls/$id.app"
    sed "s/application_1700000000000_0001/$app/g" "@FIXTURES@/spark-submit-submitted.txt" >&2
    exit 0 ;;
  unknown-queue)
    # YARN takes the application in and rejects it at once: it stays, FAILED.
    printf '%s\napp-rejected\n' "$app" > "$calls/$id.app.tmp"
    mv "$calls/$id.app.tmp" "$calls/$id.app"
    sed "s/application_1700000000000_0001/$app/g" "@FIXTURES@/spark-submit-$mode.txt" >&2
    exit 1 ;;
  *)
    sed "s/application_1700000000000_0001/$app/g" "@FIXTURES@/spark-submit-$mode.txt" >&2
    exit 1 ;;
esac
"#;

/// One run of the stand-in.
#[derive(Debug)]
struct Call {
    args: Vec<String>,
    env: HashMap<String, String>,
    properties: Option<String>,
    properties_mode: Option<String>,
}

/// A YARN cluster (the fake), a stand-in Spark home, and a configuration for both.
struct Yarn {
    fake: RmFake,
    cfg: YarnConfig,
    home: PathBuf,
    _dir: tempfile::TempDir,
}

impl Yarn {
    async fn new() -> Yarn {
        Self::with_rms(1).await
    }

    async fn with_rms(rms: usize) -> Yarn {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("spark");
        std::fs::create_dir_all(home.join("bin")).unwrap();
        // Installed by another process: a file this process has open for writing cannot be
        // executed ("Text file busy") while another test's child, forked in that moment, holds
        // the descriptor until it execs.
        let text = dir.path().join("spark-submit.txt");
        let fixtures = fixtures_dir().display().to_string();
        std::fs::write(&text, STAND_IN.replace("@FIXTURES@", &fixtures)).unwrap();
        let installed = std::process::Command::new("install")
            .arg("-m")
            .arg("755")
            .arg(&text)
            .arg(home.join("bin/spark-submit"))
            .status()
            .unwrap();
        assert!(installed.success());
        let conf = dir.path().join("hadoop-conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("yarn-site.xml"),
            "<configuration><property><name>yarn.resourcemanager.hostname</name>\
             <value>rm1.example.com</value></property></configuration>\n",
        )
        .unwrap();
        let runner = dir.path().join("runner/kindling_runner.py");
        std::fs::create_dir_all(runner.parent().unwrap().join("kindling/driver/v1")).unwrap();
        std::fs::write(&runner, "# the session runner\n").unwrap();
        let fake = RmFake::start(rms, &home.join("submissions")).await;
        let cfg = YarnConfig {
            name: "hadoop-east".into(),
            cluster_id: "test".into(),
            spark_home: home.clone(),
            hadoop_conf_dir: conf,
            resource_managers: fake.rm_urls.clone(),
            queue: None,
            auth: YarnAuth::Simple { user: USER.into() },
            default_conf: [("spark.executor.instances", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            logs_dir: dir.path().join("logs"),
            runner,
            log_server_url: None,
            poll_interval: Duration::from_millis(50),
            submit_timeout: Duration::from_secs(30),
            log_wait: Duration::from_secs(5),
        };
        Yarn {
            fake,
            cfg,
            home,
            _dir: dir,
        }
    }

    fn backend(&self) -> Watcher {
        Watcher::new(self.cfg.clone())
    }

    /// What the stand-in does on its next runs: `submitted`, `unknown-queue`, `race`.
    fn mode(&self, mode: &str) {
        std::fs::write(self.home.join("mode"), mode).unwrap();
    }

    /// The stand-in's runs so far, in order.
    fn calls(&self) -> Vec<Call> {
        let dir = self.home.join("submissions");
        let mut n = 1;
        let mut calls = vec![];
        loop {
            let base = dir.join(format!("{n:04}"));
            let Ok(args) = std::fs::read(base.with_extension("args")) else {
                return calls;
            };
            let read = |ext: &str| std::fs::read_to_string(base.with_extension(ext)).ok();
            calls.push(Call {
                args: String::from_utf8_lossy(&args)
                    .split('\0')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
                env: read("env")
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                properties: read("properties"),
                properties_mode: read("properties-mode").map(|m| m.trim().to_string()),
            });
            n += 1;
        }
    }

    /// Requests to any ResourceManager for this path.
    fn rm_requests(&self, method: &str, path: &str) -> Vec<yarn_fake::Recorded> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.server.starts_with("rm") && r.method == method && r.path == path)
            .collect()
    }

    /// Waits until `check` holds.
    async fn until(&self, what: &str, check: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !check() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within {DEADLINE:?}: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A URL where nothing listens.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A backend and the events it reported so far.
struct Watcher {
    backend: YarnBackend,
    events: UnboundedReceiver<BackendEvent>,
    seen: Vec<BackendEvent>,
    shutdown: CancellationToken,
    deadline: Duration,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Watcher {
    fn new(cfg: YarnConfig) -> Watcher {
        let (tx, events) = unbounded_channel();
        let shutdown = CancellationToken::new();
        Watcher {
            backend: YarnBackend::new(cfg, tx, shutdown.clone()).unwrap(),
            events,
            seen: vec![],
            shutdown,
            deadline: DEADLINE,
        }
    }

    async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&BackendEvent) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + self.deadline;
        loop {
            if let Some(found) = self.seen.iter().find_map(&pick) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.seen.push(ev),
                _ => panic!(
                    "no {what} within {:?}; events: {:?}",
                    self.deadline, self.seen
                ),
            }
        }
    }

    /// The events received so far, without waiting.
    fn drain(&mut self) -> &[BackendEvent] {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
        &self.seen
    }

    async fn exit_of(&mut self, job: JobId) -> Option<i32> {
        self.wait_for(&format!("exit of job {}", job.0), |ev| match ev {
            BackendEvent::Exited {
                job: j, exit_code, ..
            } if *j == job => Some(*exit_code),
            _ => None,
        })
        .await
    }

    async fn app_of(&mut self, job: JobId) -> (String, Option<String>) {
        self.wait_for(&format!("application id of job {}", job.0), |ev| match ev {
            BackendEvent::AppIdentified {
                job: j,
                app_id,
                spark_ui_url,
                ..
            } if *j == job => Some((app_id.clone(), spark_ui_url.clone())),
            _ => None,
        })
        .await
    }

    async fn launch(&self, spec: LaunchSpec) -> String {
        self.backend.launch(spec).await.unwrap()
    }

    fn end_of(&self, name: &str) -> String {
        self.backend.end_of(name).unwrap_or_default()
    }
}

fn batch(job: JobId, args: &[&str]) -> LaunchSpec {
    LaunchSpec {
        job,
        attempt: Attempt(1),
        driver_name: kindling_backend::driver_name(job, Attempt(1)),
        spec: JobSpec {
            kind: JobKind::Batch(BatchSpec {
                file: "hdfs:///apps/pi.py".into(),
                class_name: None,
                args: args.iter().map(|a| a.to_string()).collect(),
            }),
            name: Some("nightly".into()),
            owner: Some(USER.into()),
            proxy_user: None,
            resources: SparkResources {
                driver_memory: Some("1g".into()),
                ..Default::default()
            },
        },
        session: None,
    }
}

fn session(job: JobId) -> LaunchSpec {
    let mut l = batch(job, &[]);
    l.spec.kind = JobKind::Session(SessionSpec {
        kind: SessionKind::Pyspark,
        heartbeat_timeout_secs: 60,
        ttl: None,
        idle_timeout: None,
    });
    l.session = Some(SessionLink {
        endpoints: "kindling-0:7001,kindling-1:7001".into(),
        secret: "the-session-secret".into(),
        kafka: None,
        tls: None,
    });
    l
}

fn app_id(seq: u32) -> String {
    format!("application_1700000000000_{seq:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_submits_in_yarn_cluster_mode_with_the_clusters_hadoop_conf_and_tags() {
    let y = Yarn::new().await;
    let w = y.backend();
    let mut l = batch(JobId(7), &["--day", "2024-11-13"]);
    l.spec.resources.queue = Some("etl".into());
    l.spec
        .resources
        .conf
        .insert("kindling.cluster".into(), "east".into());
    let id = w.launch(l).await;
    assert_eq!(id, app_id(1));

    let calls = y.calls();
    assert_eq!(calls.len(), 1);
    let expected: Vec<&str> = vec![
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--name",
        "kindling-7-1",
        "--queue",
        "etl",
        "--driver-memory",
        "1g",
        "--conf",
        "spark.executor.instances=2",
        "--conf",
        "spark.yarn.appMasterEnv.KINDLING_ATTEMPT=1",
        "--conf",
        "spark.yarn.appMasterEnv.KINDLING_DRIVER=test:kindling-7-1",
        "--conf",
        "spark.yarn.appMasterEnv.KINDLING_JOB_ID=7",
        "--conf",
        "spark.yarn.maxAppAttempts=1",
        "--conf",
        "spark.yarn.submit.waitAppCompletion=false",
        "--conf",
        "spark.yarn.tags=kindling-cluster-test,kindling-driver-kindling-7-1",
        "hdfs:///apps/pi.py",
        "--day",
        "2024-11-13",
    ];
    assert_eq!(calls[0].args, expected);
    let env = &calls[0].env;
    let conf_dir = y.cfg.hadoop_conf_dir.display().to_string();
    assert_eq!(env["HADOOP_CONF_DIR"], conf_dir);
    assert_eq!(env["YARN_CONF_DIR"], conf_dir);
    assert_eq!(env["HADOOP_USER_NAME"], USER);
    assert_eq!(env["SPARK_HOME"], y.home.display().to_string());
    assert_eq!(calls[0].properties, None, "a batch has no properties file");

    // Before submitting, the launch asked the ResourceManager for the driver's tag.
    let lookups = y.rm_requests("GET", "/ws/v1/cluster/apps");
    assert_eq!(
        lookups[0].query.get("applicationTags").map(String::as_str),
        Some("kindling-driver-kindling-7-1")
    );
    assert_eq!(
        lookups[0].query.get("user.name").map(String::as_str),
        Some(USER)
    );

    // YARN has the application with both tags, in the job's queue, named after the driver.
    let app = y.fake.app(&id).unwrap();
    assert_eq!(
        app.tags,
        ["kindling-cluster-test", "kindling-driver-kindling-7-1"]
    );
    assert_eq!(
        (app.queue.as_str(), app.name.as_str()),
        ("etl", "kindling-7-1")
    );

    // What spark-submit printed opens the driver's log.
    let log = w
        .backend
        .log("kindling-7-1", ALL)
        .await
        .map(|s| s.lines)
        .unwrap();
    assert_eq!(log[0], "kindling: spark-submit output:");
    assert!(
        log.iter()
            .any(|l| l.ends_with(&format!("INFO YarnClientImpl: Submitted application {id}"))),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_gets_its_secret_through_a_private_properties_file() {
    let y = Yarn::new().await;
    std::fs::create_dir_all(y.home.join("conf")).unwrap();
    std::fs::write(
        y.home.join("conf/spark-defaults.conf"),
        "spark.yarn.archive hdfs:///spark/spark-libs.zip\n",
    )
    .unwrap();
    let w = y.backend();
    w.launch(session(JobId(8))).await;
    let call = &y.calls()[0];
    let args = call.args.join(" ");
    assert!(!args.contains("the-session-secret"), "{args}");
    assert!(
        !call.env.values().any(|v| v.contains("the-session-secret")),
        "{:?}",
        call.env
    );
    let props_at = call
        .args
        .windows(2)
        .find(|a| a[0] == "--properties-file")
        .map(|a| PathBuf::from(&a[1]))
        .expect("a properties file");
    assert_eq!(
        call.properties.as_deref(),
        Some(
            "spark.yarn.archive hdfs:///spark/spark-libs.zip\n\
             # Added by Kindling for this driver.\n\
             spark.yarn.appMasterEnv.KINDLING_SECRET=the-session-secret\n"
        )
    );
    assert_eq!(call.properties_mode.as_deref(), Some("600"));
    assert!(
        !props_at.exists(),
        "the properties file goes with the submission"
    );

    let runner = y.cfg.runner.display().to_string();
    let proto = y
        .cfg
        .runner
        .parent()
        .unwrap()
        .join("kindling/driver/v1/driver.proto");
    assert!(
        args.contains(&format!("--files {}", proto.display())),
        "{args}"
    );
    for conf in [
        "spark.yarn.appMasterEnv.KINDLING_ENDPOINTS=kindling-0:7001,kindling-1:7001",
        "spark.yarn.appMasterEnv.KINDLING_SESSION_KIND=pyspark",
        "spark.yarn.appMasterEnv.KINDLING_JOB_ID=8",
    ] {
        assert!(
            args.contains(&format!("--conf {conf}")),
            "{conf} missing: {args}"
        );
    }
    assert_eq!(call.args.last(), Some(&runner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_launch_finds_the_application_by_tag_instead_of_submitting_again() {
    let y = Yarn::new().await;
    let w = y.backend();
    let l = batch(JobId(1), &[]);
    let first = w.launch(l.clone()).await;
    // A new leader re-issues the launch, with a new backend instance; then the old one does.
    let w2 = y.backend();
    assert_eq!(w2.launch(l.clone()).await, first);
    assert_eq!(w.launch(l).await, first);
    assert_eq!(y.calls().len(), 1, "spark-submit ran once");

    // Two launches of one driver at once on one node: the second waits for the first.
    let l = batch(JobId(5), &[]);
    let (a, b) = tokio::join!(w.backend.launch(l.clone()), w.backend.launch(l));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(y.calls().len(), 2, "spark-submit ran once for it");

    // Another Kindling cluster's application of a driver with the same name is not this one.
    let other = y.fake.add_app(
        50,
        "bob",
        &["kindling-cluster-other", "kindling-driver-kindling-2-1"],
        "app-running",
    );
    let mine = w.launch(batch(JobId(2), &[])).await;
    assert_ne!(mine, other);
    assert_eq!(y.calls().len(), 3);
    let stranger = y.fake.add_app(
        51,
        "bob",
        &["kindling-cluster-other", "kindling-driver-kindling-3-1"],
        "app-running",
    );
    assert_eq!(
        w.backend
            .find(JobId(3), Attempt(1), "kindling-3-1")
            .await
            .unwrap(),
        Found::Never
    );
    // Nor is it ever killed by this cluster's backend.
    w.backend.kill("kindling-3-1").await.unwrap();
    assert!(y
        .rm_requests("PUT", &format!("/ws/v1/cluster/apps/{stranger}/state"))
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_launches_of_one_driver_keep_the_first_application() {
    let y = Yarn::new().await;
    y.mode("race");
    let (w1, w2) = (y.backend(), y.backend());
    let l = batch(JobId(4), &[]);
    let (a, b) = tokio::join!(w1.backend.launch(l.clone()), w2.backend.launch(l));
    assert_eq!(
        y.calls().len(),
        2,
        "both submitted before either looked again"
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both launches settle on one application");
    // It is the one YARN accepted first; the launch that submitted the other killed it.
    let other = if a == app_id(1) { app_id(2) } else { app_id(1) };
    let started = |id: &str| y.fake.report(id).unwrap()["startedTime"].as_u64().unwrap();
    assert!(
        (started(&a), a.as_str()) < (started(&other), other.as_str()),
        "{a} was not accepted first"
    );
    let kills = |id: &str| y.rm_requests("PUT", &format!("/ws/v1/cluster/apps/{id}/state"));
    assert_eq!(kills(&other).len(), 1);
    assert!(kills(&a).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_states_map_to_exits_and_yarn_reasons() {
    let y = Yarn::new().await;
    let mut w = y.backend();
    // (recorded final report, whether it ran first, exit code, how the end reads)
    let cases = [
        (
            "app-finished-succeeded",
            true,
            Some(0),
            "FINISHED/SUCCEEDED (exit code 0)",
        ),
        (
            "app-finished-failed",
            true,
            Some(3),
            "FINISHED/FAILED (exit code 3): User application exited with status 3",
        ),
        (
            "app-finished-exception",
            true,
            Some(1),
            "FINISHED/FAILED (exit code 1): User class threw exception: \
             java.lang.IllegalArgumentException: requirement failed: no input for day 2024-11-13",
        ),
        (
            "app-failed",
            true,
            Some(13),
            "FAILED/FAILED (exit code 13): Application {app} failed 1 times (global limit =2; \
             local limit is =1) due to AM Container for appattempt_{seq}_000001 exited with  \
             exitCode: 13",
        ),
        (
            "app-failed-memory",
            false,
            None,
            "FAILED/FAILED: Application {app} failed 1 times",
        ),
        (
            "app-killed",
            true,
            Some(143),
            "KILLED/KILLED (exit code 143): Application {app} was killed by user alice",
        ),
    ];
    for (n, (fixture, ran, exit, reads)) in cases.into_iter().enumerate() {
        let job = JobId(n as u64 + 1);
        let id = w.launch(batch(job, &[])).await;
        let name = kindling_backend::driver_name(job, Attempt(1));
        if ran {
            y.fake.set(&id, "app-running");
            let (app, ui) = w.app_of(job).await;
            assert_eq!(app, id);
            assert_eq!(ui, Some(format!("{}/proxy/{id}/", y.fake.rm_urls[0])));
        }
        y.fake.set(&id, fixture);
        assert_eq!(w.exit_of(job).await, exit, "{fixture}");
        // A driver that failed before running still has its application id reported.
        assert_eq!(w.app_of(job).await.0, id, "{fixture}");
        let reads = reads
            .replace("{app}", &id)
            .replace("{seq}", id.trim_start_matches("application_"));
        let end = w.end_of(&name);
        assert!(
            end.starts_with(&format!("kindling: YARN application {id} ended: {reads}")),
            "{fixture}: {end}"
        );
    }
    let exits = w
        .drain()
        .iter()
        .filter(|e| matches!(e, BackendEvent::Exited { .. }))
        .count();
    assert_eq!(exits, cases.len(), "one exit per driver: {:?}", w.seen);

    // The whole of YARN's diagnostics (here a stack trace) is in the kept log.
    let log = w
        .backend
        .log("kindling-3-1", ALL)
        .await
        .map(|s| s.lines)
        .unwrap();
    assert!(
        log.iter()
            .any(|l| l == "\tat com.example.Nightly$.main(Nightly.scala:21)"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_puts_the_killed_state_and_follows_the_202_until_the_end() {
    let y = Yarn::new().await;
    let mut w = y.backend();
    let job = JobId(1);
    let id = w.launch(batch(job, &[])).await;
    y.fake.set(&id, "app-running");
    w.app_of(job).await;

    w.backend.kill("kindling-1-1").await.unwrap();
    let puts = y.rm_requests("PUT", &format!("/ws/v1/cluster/apps/{id}/state"));
    assert_eq!(puts.len(), 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&puts[0].body).unwrap(),
        json!({ "state": "KILLED" })
    );
    assert_eq!(
        puts[0].query.get("user.name").map(String::as_str),
        Some(USER)
    );
    assert_eq!(w.exit_of(job).await, Some(143));
    assert!(
        w.end_of("kindling-1-1").contains(&format!(
            "ended: KILLED/KILLED (exit code 143): Application {id} was killed by user alice"
        )),
        "{}",
        w.end_of("kindling-1-1")
    );
    // After the 202 the backend followed the application's state.
    y.until("the killed application's state is read", || {
        !y.rm_requests("GET", &format!("/ws/v1/cluster/apps/{id}/state"))
            .is_empty()
    })
    .await;

    // Killing what has ended (200 with the final state) or was never launched is no error.
    w.backend.kill("kindling-1-1").await.unwrap();
    w.backend.kill("kindling-99-1").await.unwrap();
    assert_eq!(
        y.fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_the_resource_manager_forgot_ends_with_an_unknown_exit() {
    let y = Yarn::new().await;
    let mut w = y.backend();
    let job = JobId(1);
    let id = w.launch(batch(job, &[])).await;
    y.fake.set(&id, "app-running");
    w.app_of(job).await;
    y.fake.forget(&id);
    // Killing it is no error: the ResourceManager answers 404 (or, once its end was
    // reported, nothing carries the driver's tag any more).
    w.backend.kill("kindling-1-1").await.unwrap();
    assert_eq!(w.exit_of(job).await, None);
    let report = format!("/ws/v1/cluster/apps/{id}");
    let not_found = y
        .fake
        .requests()
        .iter()
        .filter(|r| r.path == report)
        .count();
    assert!(not_found >= 3, "polled {not_found} times");
    assert_eq!(
        w.end_of("kindling-1-1"),
        format!(
            "kindling: YARN application {id} ended: UNKNOWN: the ResourceManager no longer knows \
             application {id} (restarted without recovery, or it dropped the completed application)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_after_a_restart_tells_running_from_ended_from_never() {
    let y = Yarn::new().await;
    let (runs, ended, never) = (JobId(1), JobId(2), JobId(3));
    let (runs_name, ended_name) = ("kindling-1-1", "kindling-2-1");
    let (runs_id, ended_id) = {
        let mut w = y.backend();
        let r = w.launch(batch(runs, &[])).await;
        let e = w.launch(batch(ended, &[])).await;
        y.fake.set(&r, "app-running");
        y.fake.set(&e, "app-finished-failed");
        w.app_of(runs).await;
        assert_eq!(w.exit_of(ended).await, Some(3));
        (r, e)
        // The node dies here.
    };
    let mut w = y.backend();
    assert_eq!(
        w.backend.find(runs, Attempt(1), runs_name).await.unwrap(),
        Found::Running {
            driver_id: runs_id.clone()
        }
    );
    assert_eq!(
        w.backend.find(ended, Attempt(1), ended_name).await.unwrap(),
        Found::Ended { exit_code: Some(3) }
    );
    assert!(w.end_of(ended_name).contains(&ended_id));
    assert_eq!(
        w.backend
            .find(never, Attempt(1), "kindling-3-1")
            .await
            .unwrap(),
        Found::Never
    );
    // The new instance watches what it found.
    assert_eq!(w.app_of(runs).await.0, runs_id);
    y.fake.set(&runs_id, "app-finished-succeeded");
    assert_eq!(w.exit_of(runs).await, Some(0));
    assert_eq!(y.calls().len(), 2, "nothing was submitted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_read_live_then_copied_through_the_aggregated_log_link_and_kept() {
    let y = Yarn::new().await;
    let mut w = y.backend();
    let job = JobId(1);
    let name = "kindling-1-1";
    let id = w.launch(batch(job, &[])).await;
    y.fake.set(&id, "app-running");
    w.app_of(job).await;
    let container = format!(
        "container_{}_01_000001",
        id.trim_start_matches("application_")
    );

    // While it runs: the NodeManager's pages, read on demand.
    let live = w.backend.log(name, ALL).await.map(|s| s.lines).unwrap();
    let has = |lines: &[String], text: &str| lines.iter().any(|l| l.contains(text));
    assert!(has(
        &live,
        "INFO ApplicationMaster: Waiting for spark context initialization..."
    ));
    assert!(
        has(&live, "with custom resources: <memory:1408, vCores:1>"),
        "HTML unescaped: {live:?}"
    );
    assert!(has(&live, "Reading input for 2024-11-13"));
    assert!(!has(&live, "Final app status"), "{live:?}");
    assert!(!y
        .cfg
        .logs_dir
        .join("hadoop-east")
        .join(format!("{name}.log"))
        .exists());

    // It ends, and YARN has aggregated the logs: the NodeManager redirects to the log server.
    y.fake.aggregate(&id);
    y.fake.set(&id, "app-finished-succeeded");
    assert_eq!(w.exit_of(job).await, Some(0));
    let kept = w.backend.log(name, ALL).await.map(|s| s.lines).unwrap();
    assert!(has(&kept, "Pi is roughly 3.141592"), "{kept:?}");
    assert!(has(
        &kept,
        "INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0"
    ));
    let from_server = format!(
        "kindling: stderr of the driver's container {container} ({}/jobhistory/logs/nm1.example.com:45454/{container}/{container}/{USER}/stderr?start=0):",
        y.fake.jhs_url
    );
    assert!(kept.contains(&from_server), "{kept:?}");
    assert_eq!(
        kept.last().unwrap(),
        &format!("kindling: YARN application {id} ended: FINISHED/SUCCEEDED (exit code 0)")
    );
    assert!(!y.fake.requests_to("nm").is_empty() && !y.fake.requests_to("jhs").is_empty());

    // Kept on the node: reading it again asks the cluster nothing.
    let asked = y.fake.requests().len();
    assert_eq!(
        w.backend.log(name, ALL).await.map(|s| s.lines).unwrap(),
        kept
    );
    assert_eq!(y.fake.requests().len(), asked);
    assert!(y
        .cfg
        .logs_dir
        .join("hadoop-east")
        .join(format!("{name}.log"))
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_log_server_the_end_waits_for_aggregation_and_reads_the_aggregated_copy() {
    let mut y = Yarn::new().await;
    y.cfg.log_server_url = Some(format!("{}/jobhistory/logs", y.fake.jhs_url));
    y.cfg.log_wait = DEADLINE;
    let mut w = y.backend();
    let job = JobId(1);
    let id = w.launch(batch(job, &[])).await;
    y.fake.set(&id, "app-running");
    w.app_of(job).await;

    // It ended; YARN is still aggregating its logs.
    y.fake.set(&id, "app-finished-succeeded");
    y.fake
        .patch(&id, json!({ "logAggregationStatus": "RUNNING" }));
    let report = format!("/ws/v1/cluster/apps/{id}");
    let reads = y.rm_requests("GET", &report).len();
    y.until("the end was seen and the report read again twice", || {
        y.rm_requests("GET", &report).len() >= reads + 3
    })
    .await;
    assert!(
        !w.drain()
            .iter()
            .any(|e| matches!(e, BackendEvent::Exited { .. })),
        "the end waits for the log: {:?}",
        w.seen
    );
    assert!(y.fake.requests_to("jhs").is_empty());

    y.fake.aggregate(&id);
    assert_eq!(w.exit_of(job).await, Some(0));
    let kept = w
        .backend
        .log("kindling-1-1", ALL)
        .await
        .map(|s| s.lines)
        .unwrap();
    assert!(kept
        .iter()
        .any(|l| l.contains("Final app status: SUCCEEDED")));
    // Straight from the log server, through the attempt's node and container.
    assert!(!y
        .rm_requests("GET", &format!("/ws/v1/cluster/apps/{id}/appattempts"))
        .is_empty());
    assert!(
        y.fake.requests_to("nm").is_empty(),
        "{:?}",
        y.fake.requests_to("nm")
    );
    assert_eq!(y.fake.requests_to("jhs").len(), 2, "stdout and stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_redirects_are_followed_and_a_dead_url_fails_over_to_the_next() {
    let mut y = Yarn::with_rms(2).await;
    let (rm0, rm1) = (y.fake.rm_urls[0].clone(), y.fake.rm_urls[1].clone());
    // The standby first: it redirects to the active one.
    y.cfg.resource_managers = vec![rm1.clone(), rm0.clone()];
    let mut w = y.backend();
    let job = JobId(1);
    let id = w.launch(batch(job, &[])).await;
    let to_standby = y.fake.requests_to("rm1");
    let to_active = y.fake.requests_to("rm0");
    assert_eq!(to_standby[0].path, "/ws/v1/cluster/apps");
    assert_eq!(to_active[0].path, "/ws/v1/cluster/apps");
    assert_eq!(to_active[0].query, to_standby[0].query, "the same request");
    // The active one is asked first from then on.
    let standby_asked = y.fake.requests_to("rm1").len();
    assert_eq!(
        w.backend
            .find(JobId(5), Attempt(1), "kindling-5-1")
            .await
            .unwrap(),
        Found::Never
    );
    assert_eq!(y.fake.requests_to("rm1").len(), standby_asked);

    // Failover: rm1 becomes active; the backend follows rm0's redirect.
    y.fake.fail_over_to(1);
    y.fake.set(&id, "app-running");
    w.app_of(job).await;
    // A poll of rm0 in flight across the failover may have reported the application running:
    // then the backend's next poll is the one that must reach rm1.
    let report = format!("/ws/v1/cluster/apps/{id}");
    y.until("the backend asks the new active ResourceManager", || {
        y.fake.requests_to("rm1").iter().any(|r| r.path == report)
    })
    .await;

    // A first URL where nothing listens: the next one answers.
    y.cfg.resource_managers = vec![dead_url(), rm1.clone()];
    let w2 = y.backend();
    assert_eq!(
        w2.backend
            .find(job, Attempt(1), "kindling-1-1")
            .await
            .unwrap(),
        Found::Running { driver_id: id }
    );

    // During an election no ResourceManager is active: a clear error, not a guess.
    y.fake.no_active();
    match w2.backend.find(JobId(9), Attempt(1), "kindling-9-1").await {
        Err(BackendError::Io(m)) => {
            assert!(m.contains("cluster hadoop-east"), "{m}");
            assert!(m.contains("standby, no active ResourceManager"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_resource_manager_is_a_clear_error_naming_the_cluster() {
    let mut y = Yarn::new().await;
    let (a, b) = (dead_url(), dead_url());
    y.cfg.resource_managers = vec![a.clone(), b.clone()];
    let w = y.backend();
    match w.backend.launch(batch(JobId(1), &[])).await {
        Err(BackendError::LaunchFailed(m)) => {
            assert!(m.contains("cluster hadoop-east"), "{m}");
            assert!(m.contains("no ResourceManager answers"), "{m}");
            assert!(m.contains(&a) && m.contains(&b), "{m}");
            assert!(m.contains("onnection refused"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(y.calls().is_empty(), "spark-submit did not run");
    for result in [
        w.backend
            .find(JobId(1), Attempt(1), "kindling-1-1")
            .await
            .map(|_| ()),
        w.backend.kill("kindling-1-1").await,
    ] {
        match result {
            Err(BackendError::Io(m)) => assert!(m.contains("cluster hadoop-east"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    let log = w
        .backend
        .log("kindling-1-1", ALL)
        .await
        .map(|s| s.lines)
        .unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains("cannot ask the ResourceManager") && l.contains(&a)),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_submit_failing_before_an_application_id_is_a_clear_launch_error() {
    let y = Yarn::new().await;
    y.mode("unknown-queue");
    let w = y.backend();
    let mut l = batch(JobId(1), &[]);
    l.spec.resources.queue = Some("nosuchqueue".into());
    // YARN took the application in and rejected it; spark-submit printed no id.
    match w.backend.launch(l).await {
        Err(BackendError::LaunchFailed(m)) => {
            assert!(
                m.contains(&format!(
                    "cluster hadoop-east: YARN rejected application {} (FAILED): Application {} \
                     submitted by user alice to unknown queue: nosuchqueue",
                    app_id(1),
                    app_id(1)
                )),
                "{m}"
            );
            assert!(m.contains("kindling-1-1.submit.log"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(y.calls().len(), 1);
    // After the failure the ResourceManager was asked whether the application exists anyway.
    let lookups = y.rm_requests("GET", "/ws/v1/cluster/apps");
    assert_eq!(lookups.len(), 2, "{lookups:?}");

    // What the real spark-submit printed when the ResourceManager's RPC port did not answer:
    // no application at all.
    y.mode("rm-unreachable");
    match w.backend.launch(batch(JobId(3), &[])).await {
        Err(BackendError::LaunchFailed(m)) => assert!(
            m.contains(
                "exited with code 1 before YARN accepted an application: Exception in thread \
                 \"main\" java.net.ConnectException: Call From vm/127.0.0.1 to localhost:1 failed \
                 on connection exception"
            ),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(y.calls().len(), 2);
    assert_eq!(y.fake.apps().len(), 1, "only the rejected application");

    // A local file that does not exist fails before spark-submit runs.
    y.mode("submitted");
    let mut l = batch(JobId(4), &[]);
    if let JobKind::Batch(b) = &mut l.spec.kind {
        b.file = "/nonexistent/job.py".into();
    }
    match w.backend.launch(l).await {
        Err(BackendError::LaunchFailed(m)) => {
            assert!(
                m.contains("/nonexistent/job.py does not exist on this node"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(y.calls().len(), 2, "spark-submit did not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_the_backend_cannot_use_is_refused_before_anything_runs() {
    let y = Yarn::new().await;
    let (tx, _rx) = unbounded_channel();
    let mut cfg = y.cfg.clone();
    cfg.auth = YarnAuth::Kerberos {
        principal: "kindling/node1@EXAMPLE.COM".into(),
        keytab: "/etc/security/keytabs/kindling.keytab".into(),
    };
    match YarnBackend::new(cfg, tx.clone(), CancellationToken::new()) {
        Err(BackendError::Io(m)) => {
            assert!(m.contains("cluster hadoop-east"), "{m}");
            assert!(
                m.contains("Kerberos") && m.contains("not supported yet"),
                "{m}"
            );
        }
        Ok(_) => panic!("Kerberos was accepted"),
        Err(other) => panic!("{other:?}"),
    }
    let mut cfg = y.cfg.clone();
    cfg.hadoop_conf_dir = Path::new("/nonexistent/hadoop-conf").to_path_buf();
    assert!(matches!(
        YarnBackend::new(cfg, tx, CancellationToken::new()),
        Err(BackendError::Io(m)) if m.contains("HADOOP_CONF_DIR /nonexistent/hadoop-conf")
    ));
    assert!(y.fake.requests().is_empty());
}

/// The backend against a real YARN cluster, with the real `spark-submit`; skipped unless
/// `KINDLING_YARN_RM` is set (see docs/yarn.md). It runs Spark's own SparkPi from the Spark
/// installation's examples: once to the end, once killed while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_real_cluster() {
    let Ok(rms) = std::env::var("KINDLING_YARN_RM") else {
        eprintln!("skipped: set KINDLING_YARN_RM (and docs/yarn.md's other variables) to run against a real cluster");
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} must be set"));
    let spark_home = PathBuf::from(var("KINDLING_YARN_SPARK_HOME"));
    let examples = std::fs::read_dir(spark_home.join("examples/jars"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.display().to_string().contains("spark-examples"))
        .expect("the Spark installation has its examples jar");
    let dir = tempfile::tempdir().unwrap();
    let cfg = YarnConfig {
        name: "real".into(),
        // Each run's applications apart from earlier runs'.
        cluster_id: format!("test-{}", rand::random::<u32>()),
        spark_home,
        hadoop_conf_dir: var("KINDLING_YARN_HADOOP_CONF_DIR").into(),
        resource_managers: rms.split(',').map(str::to_string).collect(),
        queue: std::env::var("KINDLING_YARN_QUEUE").ok(),
        auth: YarnAuth::Simple {
            user: var("KINDLING_YARN_USER"),
        },
        default_conf: Default::default(),
        logs_dir: dir.path().to_path_buf(),
        runner: dir.path().join("runner/kindling_runner.py"),
        log_server_url: std::env::var("KINDLING_YARN_LOG_SERVER").ok(),
        poll_interval: Duration::from_secs(1),
        submit_timeout: Duration::from_secs(300),
        log_wait: Duration::from_secs(120),
    };
    let pi = |job: u64, slices: &str| {
        let mut l = batch(JobId(job), &[slices]);
        if let JobKind::Batch(b) = &mut l.spec.kind {
            b.file = examples.display().to_string();
            b.class_name = Some("org.apache.spark.examples.SparkPi".into());
        }
        l
    };
    let mut w = Watcher::new(cfg.clone());
    w.deadline = Duration::from_secs(600);
    let id = w.launch(pi(1, "10")).await;
    assert!(id.starts_with("application_"), "{id}");
    // Re-issued: the same application, found by its tag.
    assert_eq!(w.launch(pi(1, "10")).await, id);
    assert_eq!(w.exit_of(JobId(1)).await, Some(0));
    assert!(w.end_of("kindling-1-1").contains("FINISHED/SUCCEEDED"));
    let log = w
        .backend
        .log("kindling-1-1", ALL)
        .await
        .map(|s| s.lines)
        .unwrap();
    assert!(log.iter().any(|l| l.contains("Pi is roughly")), "{log:?}");

    let long = pi(2, "200000");
    w.launch(long).await;
    w.app_of(JobId(2)).await;
    w.backend.kill("kindling-2-1").await.unwrap();
    assert_eq!(w.exit_of(JobId(2)).await, Some(143));
    assert!(w.end_of("kindling-2-1").contains("KILLED/KILLED"));

    // Another node finds both ended.
    let other = Watcher::new(cfg);
    for (job, exit) in [(1, Some(0)), (2, Some(143))] {
        let name = kindling_backend::driver_name(JobId(job), Attempt(1));
        assert_eq!(
            other
                .backend
                .find(JobId(job), Attempt(1), &name)
                .await
                .unwrap(),
            Found::Ended { exit_code: exit }
        );
    }
}
