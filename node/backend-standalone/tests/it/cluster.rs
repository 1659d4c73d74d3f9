//! A real Spark standalone cluster for the tests: a master with its REST submission server and
//! workers, started from the project venv's pyspark as processes on free ports, in process
//! groups of their own, and killed with everything they started when the cluster is dropped.
//! Waits poll observable state against deadlines.

use kindling_backend_standalone::StandaloneConfig;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the master and workers may take to start.
const READY: Duration = Duration::from_secs(60);

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `spark-class <args>` in its own process group, so that the drivers, executors and
/// Python workers it starts can be killed with it.
fn spawn(
    dir: &Path,
    spark_home: &Path,
    name: &str,
    args: &[String],
    env: &[(&str, String)],
) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut cmd = Command::new(spark_home.join("bin/spark-class"));
    cmd.args(args)
        .env("SPARK_HOME", spark_home)
        // Drivers inherit the worker's environment: keep everything on loopback.
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

struct Worker {
    child: Child,
    web_ui_port: u16,
}

pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    master: Child,
    workers: Vec<Worker>,
    rest_url: String,
    web_ui_url: String,
    http: reqwest::Client,
}

impl Cluster {
    pub(crate) async fn start(workers: usize) -> Cluster {
        let spark_home = kindling_testkit::spark::real_spark_home();
        let dir = tempfile::tempdir().unwrap();
        let (port, web_ui, rest) = (free_port(), free_port(), free_port());
        let spawn = |name: &str, args: &[String], env: &[(&str, String)]| {
            spawn(dir.path(), &spark_home, name, args, env)
        };
        let master = spawn(
            "master",
            &[
                "org.apache.spark.deploy.master.Master".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--webui-port".into(),
                web_ui.to_string(),
            ],
            &[(
                "SPARK_MASTER_OPTS",
                format!("-Dspark.master.rest.enabled=true -Dspark.master.rest.port={rest}"),
            )],
        );
        let wanted = workers;
        let mut workers = vec![];
        for n in 1..=wanted {
            let web_ui_port = free_port();
            let child = spawn(
                &format!("worker{n}"),
                &[
                    "org.apache.spark.deploy.worker.Worker".into(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--cores".into(),
                    "1".into(),
                    "--memory".into(),
                    "1g".into(),
                    "--webui-port".into(),
                    web_ui_port.to_string(),
                    format!("spark://127.0.0.1:{port}"),
                ],
                &[(
                    "SPARK_WORKER_DIR",
                    dir.path().join(format!("work{n}")).display().to_string(),
                )],
            );
            workers.push(Worker { child, web_ui_port });
        }
        let cluster = Cluster {
            master,
            workers,
            rest_url: format!("http://127.0.0.1:{rest}"),
            web_ui_url: format!("http://127.0.0.1:{web_ui}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            dir,
        };
        let deadline = Instant::now() + READY;
        loop {
            let alive = cluster.master_json().await.ok().map(|j| {
                j["workers"]
                    .as_array()
                    .map(|ws| ws.iter().filter(|w| w["state"] == "ALIVE").count())
                    .unwrap_or(0)
            });
            let rest_up = cluster.status("driver-none").await.is_ok();
            if alive == Some(wanted) && rest_up {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "the standalone cluster did not start; logs in {}",
                cluster.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(crate) async fn master_json(&self) -> reqwest::Result<Value> {
        let url = format!("{}/json/", self.web_ui_url);
        self.http.get(url).send().await?.json().await
    }

    pub(crate) async fn status(&self, driver_id: &str) -> reqwest::Result<Value> {
        let url = format!("{}/v1/submissions/status/{driver_id}", self.rest_url);
        self.http.get(url).send().await?.json().await
    }

    pub(crate) async fn driver_count(&self) -> usize {
        let j = self.master_json().await.unwrap();
        ["activedrivers", "completeddrivers"]
            .iter()
            .map(|k| j[k].as_array().map(Vec::len).unwrap_or(0))
            .sum()
    }

    /// kill -9 the worker that runs the driver.
    pub(crate) async fn kill_worker_of(&mut self, driver_id: &str) {
        let status = self.status(driver_id).await.unwrap();
        let worker_id = status["workerId"].as_str().unwrap().to_string();
        let json = self.master_json().await.unwrap();
        let web_ui = json["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == worker_id.as_str())
            .map(|x| x["webuiaddress"].as_str().unwrap().to_string())
            .unwrap();
        let worker = self
            .workers
            .iter_mut()
            .find(|x| web_ui.ends_with(&format!(":{}", x.web_ui_port)))
            .unwrap();
        worker.child.kill().unwrap();
        worker.child.wait().unwrap();
    }

    pub(crate) fn config(&self) -> StandaloneConfig {
        let python = kindling_testkit::spark::venv()
            .join("bin/python")
            .display()
            .to_string();
        StandaloneConfig {
            rest_url: self.rest_url.clone(),
            web_ui_url: self.web_ui_url.clone(),
            cluster_id: "test-cluster".into(),
            default_conf: [
                ("spark.driver.memory", "512m"),
                ("spark.executor.memory", "512m"),
                ("spark.ui.showConsoleProgress", "false"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            python,
            runner: self
                .dir
                .path()
                .join("runner/kindling_runner.py")
                .display()
                .to_string(),
            proto: self
                .dir
                .path()
                .join("proto/driver.proto")
                .display()
                .to_string(),
            poll_interval: Duration::from_millis(500),
        }
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children = self
            .workers
            .iter_mut()
            .map(|w| &mut w.child)
            .chain([&mut self.master]);
        for child in children {
            // SAFETY: kills the process group this test created for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}
