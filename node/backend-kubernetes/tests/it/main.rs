//! The Kubernetes backend, driven through the real `kube` client against the Kubernetes API
//! server FAKE of `kindling_testkit::kube_fake` (no real API server runs on the development machines),
//! where the tests play the kubelet. With `KINDLING_K8S_KUBECONFIG=<kubeconfig>` the same
//! tests run against that real cluster instead (see docs/kubernetes.md): the driver pods then
//! run a small shell program in place of Spark (`busybox` by default), which does what the
//! fake's control calls would have done; tests that need what only the fake can do (break a
//! watch, compact the history, evict a pod, two API servers) say so and stop early there.
//! Waits are on observable state with deadlines; nothing sleeps to synchronise. The
//! `ClusterBackend` conformance suite runs on the fake too ([`conformance`]).

mod conformance;

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kindling_backend::{
    BackendError, BackendEvent, ClusterBackend, Found, LaunchSpec, SessionLink,
};
use kindling_backend_kubernetes::pod::{
    secret_name, service_name, DRIVER_CONTAINER, LABEL_ATTEMPT, LABEL_CLUSTER, LABEL_JOB,
};
use kindling_backend_kubernetes::state::EXIT_KILLED;
use kindling_backend_kubernetes::{
    KubeAuth, KubernetesBackend, KubernetesConfig, PodRetention, IN_CLUSTER_MASTER,
};
use kindling_events::spec::{BatchSpec, JobKind, JobSpec, SessionKind, SessionSpec};
use kindling_events::{Attempt, JobId};
use kindling_testkit::kube_fake::KubeFake;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

/// A whole driver log, as the tests read it.
const ALL: kindling_backend::LogWindow = kindling_backend::LogWindow::Range {
    from: 0,
    size: kindling_backend::MAX_LOG_LINES,
};

const NS: &str = "spark-jobs";

/// What the driver container runs against a real cluster, in place of Spark's entrypoint: it
/// prints each `echo=<text>` argument, then exits as `exit=<code>` says, eats memory until
/// killed with `oom`, or else runs until stopped (exiting 143 on SIGTERM, as a JVM does).
const REAL_DRIVER: &str = r#"for a in "$@"; do case "$a" in echo=*) echo "${a#echo=}" ;; esac; done
for a in "$@"; do case "$a" in oom) tail /dev/zero ;; exit=*) exit "${a#exit=}" ;; esac; done
trap 'exit 143' TERM
sleep 3600 & wait $!"#;

/// Where the tests run: the fake (default) or a real cluster.
struct Cluster {
    fake: Option<KubeFake>,
    cfg: KubernetesConfig,
    /// For the tests' own reads, with the same credentials as the backend.
    pods: Api<Pod>,
    services: Api<Service>,
    secrets: Api<Secret>,
    /// Job ids of this run start here (a real namespace may hold earlier runs' pods).
    job_base: u64,
    deadline: Duration,
    _logs: tempfile::TempDir,
}

fn real_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("KINDLING_K8S_KUBECONFIG").map(PathBuf::from)
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn base_config(name: &str, logs: &tempfile::TempDir) -> KubernetesConfig {
    KubernetesConfig {
        name: name.into(),
        cluster_id: "test".into(),
        api_server: None,
        namespace: NS.into(),
        auth: KubeAuth::BearerToken(String::new()),
        ca_file: None,
        image: "apache/spark:4.0.0-python3".into(),
        image_pull_policy: None,
        service_account: "spark".into(),
        driver_command: None,
        default_conf: [("spark.executor.instances", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        runner: "local:///opt/kindling/kindling_runner.py".into(),
        retention: PodRetention::Keep,
        logs_dir: logs.path().to_path_buf(),
        in_cluster_master: IN_CLUSTER_MASTER.into(),
    }
}

impl Cluster {
    async fn new() -> Cluster {
        Self::with_token("east", Some("token-east")).await
    }

    /// The fake with this bearer token (or a real cluster, whose kubeconfig decides).
    async fn with_token(name: &str, token: Option<&str>) -> Cluster {
        let logs = tempfile::tempdir().unwrap();
        let mut cfg = base_config(name, &logs);
        let fake = match real_kubeconfig() {
            Some(path) => {
                cfg.auth = KubeAuth::Kubeconfig {
                    path,
                    context: std::env::var("KINDLING_K8S_CONTEXT").ok(),
                };
                cfg.namespace = env_or("KINDLING_K8S_NAMESPACE", "kindling-test");
                cfg.service_account = env_or("KINDLING_K8S_SERVICE_ACCOUNT", "default");
                cfg.image = env_or("KINDLING_K8S_IMAGE", "busybox:1.36");
                cfg.image_pull_policy = Some("IfNotPresent".into());
                cfg.driver_command = Some(vec![
                    "sh".into(),
                    "-c".into(),
                    REAL_DRIVER.into(),
                    "kindling-driver".into(),
                ]);
                // Each run's drivers apart from earlier runs' in the same namespace.
                cfg.cluster_id = format!("test-{}", rand::random::<u32>());
                None
            }
            None => {
                let fake = KubeFake::start(token).await;
                cfg.api_server = Some(fake.url.clone());
                cfg.auth = KubeAuth::BearerToken(token.unwrap_or("").into());
                Some(fake)
            }
        };
        let client = client_for(&cfg).await;
        Cluster {
            pods: Api::namespaced(client.clone(), &cfg.namespace),
            services: Api::namespaced(client.clone(), &cfg.namespace),
            secrets: Api::namespaced(client, &cfg.namespace),
            job_base: if fake.is_some() {
                0
            } else {
                u64::from(rand::random::<u16>()) * 1000
            },
            deadline: if fake.is_some() {
                Duration::from_secs(20)
            } else {
                Duration::from_secs(180)
            },
            fake,
            cfg,
            _logs: logs,
        }
    }

    fn job(&self, n: u64) -> JobId {
        JobId(self.job_base + n)
    }

    async fn backend(&self) -> Watcher {
        Watcher::new(self.cfg.clone(), self.deadline).await
    }

    /// The fake, or `None` (with a note) on a real cluster.
    fn fake_only(&self, why: &str) -> Option<&KubeFake> {
        if self.fake.is_none() {
            eprintln!("skipped on a real cluster: {why}");
        }
        self.fake.as_ref()
    }

    async fn pod(&self, name: &str) -> Option<Pod> {
        self.pods.get_opt(name).await.unwrap()
    }

    async fn pods_of(&self, job: JobId) -> Vec<Pod> {
        let lp = ListParams::default().labels(&format!(
            "{LABEL_CLUSTER}={},{LABEL_JOB}={}",
            self.cfg.cluster_id, job.0
        ));
        self.pods.list(&lp).await.unwrap().items
    }

    /// Waits until `check` holds, polling the API.
    async fn until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + self.deadline;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "not within {:?}: {what}",
                self.deadline
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The kubelet's part: on the fake, the test plays it; on a real cluster the pod's
    // program does the same by itself.
    fn run(&self, name: &str) {
        if let Some(f) = &self.fake {
            f.run(NS, name);
        }
    }

    fn print(&self, name: &str, line: &str) {
        if let Some(f) = &self.fake {
            f.log(NS, name, line);
        }
    }

    fn exit(&self, name: &str, code: i32, reason: &str) {
        if let Some(f) = &self.fake {
            f.terminate(NS, name, code, reason);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.fake.is_some() {
            return;
        }
        // Leave nothing behind on a real cluster.
        let pods = self.pods.clone();
        let selector = format!("{LABEL_CLUSTER}={}", self.cfg.cluster_id);
        let cleanup = async move {
            let lp = ListParams::default().labels(&selector);
            let _ = pods.delete_collection(&DeleteParams::default(), &lp).await;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tokio::task::block_in_place(|| handle.block_on(cleanup));
        }
    }
}

async fn client_for(cfg: &KubernetesConfig) -> kube::Client {
    // The same construction as the backend's, through a backend-independent path: a fresh
    // kubeconfig-based client for real clusters, a token client for the fake.
    let config = match &cfg.auth {
        KubeAuth::Kubeconfig { path, context } => {
            let kc = kube::config::Kubeconfig::read_from(path).unwrap();
            let options = kube::config::KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .unwrap()
        }
        KubeAuth::BearerToken(token) => {
            let mut c = kube::Config::new(cfg.api_server.clone().unwrap().parse().unwrap());
            c.auth_info.token = Some(token.clone().into());
            c
        }
        KubeAuth::ClientCertificate { .. } | KubeAuth::TokenFile(_) | KubeAuth::Anonymous => {
            unreachable!("the tests use a token or a kubeconfig")
        }
    };
    kube::Client::try_from(config).unwrap()
}

/// A backend and the events it reported so far.
struct Watcher {
    backend: KubernetesBackend,
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
    async fn new(cfg: KubernetesConfig, deadline: Duration) -> Watcher {
        let (tx, events) = unbounded_channel();
        let shutdown = CancellationToken::new();
        Watcher {
            backend: KubernetesBackend::new(cfg, tx, shutdown.clone())
                .await
                .unwrap(),
            events,
            seen: vec![],
            shutdown,
            deadline,
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

    fn app_reported(&self, job: JobId) -> bool {
        self.seen
            .iter()
            .any(|ev| matches!(ev, BackendEvent::AppIdentified { job: j, .. } if *j == job))
    }

    async fn launch(&self, spec: LaunchSpec) -> String {
        self.backend.launch(spec).await.unwrap()
    }

    /// The kept end of a driver: "kindling: driver pod <ns>/<name> ended: <reason> ...".
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
                file: "local:///opt/app/job.py".into(),
                class_name: None,
                args: args.iter().map(|a| a.to_string()).collect(),
            }),
            name: Some("nightly".into()),
            owner: Some("alice".into()),
            proxy_user: None,
            resources: kindling_events::spec::SparkResources {
                driver_memory: Some("512m".into()),
                driver_cores: Some(1),
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
        endpoints: "kindling-0.kindling:7001,kindling-1.kindling:7001".into(),
        secret: "the-session-secret".into(),
        kafka: None,
        tls: None,
    });
    l
}

fn env_of(pod: &Pod) -> serde_json::Value {
    let c = &pod.spec.as_ref().unwrap().containers[0];
    serde_json::to_value(c.env.clone().unwrap_or_default()).unwrap()
}

fn env_value<'a>(env: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    env.as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {env}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_creates_a_labelled_driver_pod_with_its_service_and_secret() {
    let c = Cluster::new().await;
    let w = c.backend().await;
    let job = c.job(7);
    let l = batch(job, &["--day", "1", "exit=0"]);
    let name = l.driver_name.clone();
    let id = w.launch(l).await;
    assert_eq!(id, format!("{}/{name}", c.cfg.namespace));

    let pod = c.pod(&name).await.expect("the driver pod exists");
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels[LABEL_CLUSTER], c.cfg.cluster_id);
    assert_eq!(labels[LABEL_JOB], job.0.to_string());
    assert_eq!(labels[LABEL_ATTEMPT], "1");
    assert_eq!(labels["spark-role"], "driver");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "kindling");
    let spec = pod.spec.clone().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some(c.cfg.service_account.as_str())
    );
    let container = &spec.containers[0];
    assert_eq!(container.name, DRIVER_CONTAINER);
    assert_eq!(container.image.as_deref(), Some(c.cfg.image.as_str()));
    assert_eq!(container.command, c.cfg.driver_command);
    let args = container.args.clone().unwrap();
    assert_eq!(args[0], "driver");
    let conf = |kv: &str| args.windows(2).any(|w| w[0] == "--conf" && w[1] == kv);
    let ns = &c.cfg.namespace;
    for kv in [
        format!("spark.master={IN_CLUSTER_MASTER}"),
        "spark.kubernetes.submitInDriver=true".into(),
        format!("spark.kubernetes.driver.pod.name={name}"),
        format!("spark.kubernetes.namespace={ns}"),
        format!("spark.driver.host={name}-svc.{ns}.svc"),
        format!("spark.kubernetes.container.image={}", c.cfg.image),
        "spark.app.name=nightly".into(),
        "spark.driver.memory=512m".into(),
        "spark.executor.instances=1".into(),
        format!("spark.kubernetes.executor.label.{LABEL_JOB}={}", job.0),
    ] {
        assert!(conf(&kv), "--conf {kv} missing from {args:?}");
    }
    assert_eq!(
        &args[args.len() - 4..],
        ["local:///opt/app/job.py", "--day", "1", "exit=0"]
    );
    let env = env_of(&pod);
    assert_eq!(
        env_value(&env, "KINDLING_JOB_ID")["value"],
        job.0.to_string()
    );
    assert_eq!(env_value(&env, "SPARK_USER")["value"], "alice");
    assert_eq!(
        env_value(&env, "SPARK_DRIVER_BIND_ADDRESS")["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    // 512 MiB of heap and Spark's minimum overhead for a Python driver.
    let resources = serde_json::to_value(container.resources.clone().unwrap()).unwrap();
    assert_eq!(resources["limits"]["memory"], "896Mi");
    assert_eq!(resources["requests"]["cpu"], "1");

    // The headless service, owned by the pod.
    let svc = c.services.get(&service_name(&name)).await.unwrap();
    let svc_spec = svc.spec.clone().unwrap();
    assert_eq!(svc_spec.cluster_ip.as_deref(), Some("None"));
    let owners = svc.metadata.owner_references.clone().unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "Pod");
    assert_eq!(owners[0].name, name);
    assert_eq!(Some(&owners[0].uid), pod.metadata.uid.as_ref());
    assert_eq!(
        svc_spec.selector.unwrap()["spark-app-selector"],
        labels["spark-app-selector"]
    );
    assert!(
        c.secrets
            .get_opt(&secret_name(&name))
            .await
            .unwrap()
            .is_none(),
        "a batch has no secret"
    );

    // A session with a credential in its conf: both are in a Secret owned by the pod, not
    // values in the pod spec.
    let mut s = session(c.job(8));
    s.spec
        .resources
        .conf
        .insert("spark.hadoop.fs.s3a.secret.key".into(), "s3-s3cret".into());
    let sname = s.driver_name.clone();
    w.launch(s).await;
    let spod = c.pod(&sname).await.unwrap();
    let env = env_of(&spod);
    assert_eq!(
        env_value(&env, "KINDLING_SECRET")["valueFrom"]["secretKeyRef"]["name"],
        secret_name(&sname)
    );
    assert_eq!(
        env_value(&env, "KINDLING_ENDPOINTS")["value"],
        "kindling-0.kindling:7001,kindling-1.kindling:7001"
    );
    assert_eq!(env_value(&env, "KINDLING_SESSION_KIND")["value"], "pyspark");
    let spec_text = serde_json::to_string(&spod).unwrap();
    assert!(!spec_text.contains("the-session-secret"), "{spec_text}");
    assert!(!spec_text.contains("s3-s3cret"), "{spec_text}");
    let sspec = spod.spec.clone().unwrap();
    let mount = &sspec.containers[0].volume_mounts.as_ref().unwrap()[0];
    let volume = &sspec.volumes.as_ref().unwrap()[0];
    assert_eq!(mount.name, volume.name);
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some(secret_name(&sname).as_str())
    );
    let sargs = spod.spec.unwrap().containers[0].args.clone().unwrap();
    let properties = format!("{}/spark.properties", mount.mount_path);
    assert!(
        sargs
            .windows(2)
            .any(|w| w[0] == "--properties-file" && w[1] == properties),
        "{sargs:?}"
    );
    assert_eq!(
        sargs.last().map(String::as_str),
        Some(c.cfg.runner.as_str())
    );
    let secret = c.secrets.get(&secret_name(&sname)).await.unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["secret"].0, b"the-session-secret".to_vec());
    let props = String::from_utf8(data["spark.properties"].0.clone()).unwrap();
    assert!(
        props.contains("spark.hadoop.fs.s3a.secret.key=s3-s3cret"),
        "{props}"
    );
    let owners = secret.metadata.owner_references.unwrap();
    assert_eq!(Some(&owners[0].uid), spod.metadata.uid.as_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reissued_launch_finds_the_existing_pod_instead_of_starting_another() {
    let c = Cluster::new().await;
    let w = c.backend().await;
    let job = c.job(1);
    let l = batch(job, &[]);
    let first = w.launch(l.clone()).await;
    // A new leader re-issues the launch, with a new backend instance.
    let w2 = c.backend().await;
    assert_eq!(w2.launch(l.clone()).await, first);
    assert_eq!(w.launch(l).await, first);
    assert_eq!(c.pods_of(job).await.len(), 1);
    if let Some(fake) = &c.fake {
        let creates = fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/pods"))
            .count();
        assert_eq!(creates, 3, "each launch tried to create, two got 409");
    }

    // A pod of that name that is not this attempt's driver is not taken for it.
    let other = c.job(2);
    let stranger: Pod = serde_json::from_value(json!({
        "metadata": { "name": kindling_backend::driver_name(other, Attempt(1)) },
        "spec": { "containers": [{ "name": "x", "image": c.cfg.image, "command": ["sleep", "60"] }] },
    }))
    .unwrap();
    c.pods
        .create(&PostParams::default(), &stranger)
        .await
        .unwrap();
    match w.backend.launch(batch(other, &[])).await {
        Err(BackendError::LaunchFailed(m)) => {
            assert!(
                m.contains("is not the driver") && m.contains("cluster east"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.backend
            .find(
                other,
                Attempt(1),
                &kindling_backend::driver_name(other, Attempt(1))
            )
            .await,
        Err(BackendError::Io(_))
    ));
    if c.fake.is_none() {
        let _ = c
            .pods
            .delete(
                &kindling_backend::driver_name(other, Attempt(1)),
                &DeleteParams::default(),
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminations_map_to_exits_with_kubernetes_reasons() {
    let c = Cluster::new().await;
    let mut w = c.backend().await;
    // (job, args, what the kubelet reports, exit code, reason)
    let ran = [
        (c.job(1), "exit=0", 0, "Completed"),
        (c.job(2), "exit=3", 3, "Error"),
        (c.job(3), "oom", 137, "OOMKilled"),
    ];
    for (job, arg, code, reason) in ran {
        let name = w.launch(batch(job, &[arg])).await;
        let name = name.rsplit('/').next().unwrap().to_string();
        c.run(&name);
        let (app_id, ui) = w.app_of(job).await;
        assert!(app_id.starts_with("spark-"), "{app_id}");
        assert_eq!(
            ui,
            Some(format!("http://{name}-svc.{}.svc:4040", c.cfg.namespace))
        );
        c.exit(&name, code, reason);
        assert_eq!(w.exit_of(job).await, Some(code), "{reason}");
        let end = w.end_of(&name);
        assert!(
            end.contains(&format!("ended: {reason} (exit code {code})")),
            "{end}"
        );
    }

    // An image that cannot be pulled: the driver never runs.
    let bad = c.job(4);
    let mut l = batch(bad, &["exit=0"]);
    l.spec.resources.conf.insert(
        "spark.kubernetes.driver.container.image".into(),
        "kindling.invalid/no-such-image:0".into(),
    );
    let name = l.driver_name.clone();
    w.launch(l).await;
    if let Some(f) = &c.fake {
        f.waiting(
            NS,
            &name,
            "ErrImagePull",
            "pull access denied for kindling.invalid/no-such-image",
        );
    }
    assert_eq!(w.exit_of(bad).await, None);
    let end = w.end_of(&name);
    assert!(
        end.contains("ended: ErrImagePull") || end.contains("ended: ImagePullBackOff"),
        "{end}"
    );
    assert!(
        !w.app_reported(bad),
        "a driver that never ran has no application"
    );

    let Some(f) = c.fake_only("eviction, back-off states and crash loops cannot be provoked")
    else {
        return;
    };
    let evicted = c.job(5);
    let name = w.launch(batch(evicted, &[])).await;
    let name = name.rsplit('/').next().unwrap().to_string();
    f.run(NS, &name);
    f.evict(NS, &name, "The node was low on resource: memory.");
    assert_eq!(w.exit_of(evicted).await, Some(137));
    let end = w.end_of(&name);
    assert!(
        end.contains("ended: Evicted (exit code 137): The node was low on resource: memory."),
        "{end}"
    );

    for (n, reason) in [(6, "ImagePullBackOff"), (7, "InvalidImageName")] {
        let job = c.job(n);
        let name = w.launch(batch(job, &[])).await;
        let name = name.rsplit('/').next().unwrap().to_string();
        f.waiting(NS, &name, reason, "Back-off pulling image \"nope\"");
        assert_eq!(w.exit_of(job).await, None);
        let end = w.end_of(&name);
        assert!(
            end.contains(&format!("ended: {reason}: Back-off pulling image")),
            "{end}"
        );
    }
    let looping = c.job(8);
    let name = w.launch(batch(looping, &[])).await;
    let name = name.rsplit('/').next().unwrap().to_string();
    f.crash_loop(NS, &name, 2);
    assert_eq!(w.exit_of(looping).await, Some(2));
    assert!(w
        .end_of(&name)
        .contains("ended: CrashLoopBackOff (exit code 2)"));

    // A container that is still being created (e.g. waiting for its secret) is not an end.
    let creating = c.job(9);
    let name = w.launch(batch(creating, &[])).await;
    let name = name.rsplit('/').next().unwrap().to_string();
    f.waiting(NS, &name, "CreateContainerConfigError", "secret not found");
    f.run(NS, &name);
    w.app_of(creating).await;
    f.terminate(NS, &name, 0, "Completed");
    assert_eq!(w.exit_of(creating).await, Some(0));
    let exits = w
        .seen
        .iter()
        .filter(|e| matches!(e, BackendEvent::Exited { job, .. } if *job == creating))
        .count();
    assert_eq!(exits, 1, "{:?}", w.seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_resumes_after_a_disconnect_without_losing_a_transition() {
    let c = Cluster::new().await;
    let Some(f) = c.fake_only("a watch cannot be broken on purpose") else {
        return;
    };
    let mut w = c.backend().await;
    let job = c.job(1);
    let name = w.launch(batch(job, &[])).await;
    let name = name.rsplit('/').next().unwrap().to_string();
    f.run(NS, &name);
    w.app_of(job).await;
    let before = f.watch_requests().len();
    let lists_before = f
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.ends_with("/pods") && !r.query.contains_key("watch")
        })
        .count();

    // The connection breaks; the driver ends while nobody watches.
    f.hold_watches();
    f.close_watches();
    let resume_from = f.get("pods", NS, &name).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    f.terminate(NS, &name, 0, "Completed");
    c.until("the backend tries to watch again", || async {
        f.watch_requests().len() > before
    })
    .await;
    f.release_watches();
    assert_eq!(w.exit_of(job).await, Some(0));

    let resumed = &f.watch_requests()[before];
    assert_eq!(
        resumed.query.get("resourceVersion"),
        Some(&resume_from),
        "the watch resumes from the last version it saw: {resumed:?}"
    );
    let lists_after = f
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.ends_with("/pods") && !r.query.contains_key("watch")
        })
        .count();
    assert_eq!(lists_after, lists_before, "a resumed watch needs no list");
    assert!(resumed.query["labelSelector"].contains("kindling.io/cluster=test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_version_makes_the_backend_list_again() {
    let c = Cluster::new().await;
    let Some(f) = c.fake_only("the API server's history cannot be compacted on purpose") else {
        return;
    };
    let mut w = c.backend().await;
    let (ends, vanishes) = (c.job(1), c.job(2));
    let ending = w.launch(batch(ends, &[])).await;
    let ending = ending.rsplit('/').next().unwrap().to_string();
    let vanishing = w.launch(batch(vanishes, &[])).await;
    let vanishing = vanishing.rsplit('/').next().unwrap().to_string();
    f.run(NS, &ending);
    f.run(NS, &vanishing);
    w.app_of(ends).await;
    w.app_of(vanishes).await;
    let lists = || {
        f.requests()
            .iter()
            .filter(|r| {
                r.method == "GET" && r.path.ends_with("/pods") && !r.query.contains_key("watch")
            })
            .count()
    };
    let lists_before = lists();
    let before = f.watch_requests().len();

    // While disconnected: one driver ends, the other's pod is deleted by someone, and the API
    // server's history is compacted past the version the backend last saw.
    f.hold_watches();
    f.close_watches();
    f.terminate(NS, &ending, 4, "Error");
    c.pods
        .delete(&vanishing, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    f.compact();
    c.until("the backend tries to watch again", || async {
        f.watch_requests().len() > before
    })
    .await;
    f.release_watches();

    assert_eq!(w.exit_of(ends).await, Some(4));
    assert_eq!(w.exit_of(vanishes).await, None);
    assert!(
        w.end_of(&vanishing).contains("ended: Deleted"),
        "{}",
        w.end_of(&vanishing)
    );
    assert!(lists() > lists_before, "410 Gone is followed by a new list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_after_a_restart_tells_running_from_ended_from_never() {
    let c = Cluster::new().await;
    let (runs, ended, never) = (c.job(1), c.job(2), c.job(3));
    let runs_name = kindling_backend::driver_name(runs, Attempt(1));
    let ended_name = kindling_backend::driver_name(ended, Attempt(1));
    {
        let mut w = c.backend().await;
        w.launch(batch(runs, &[])).await;
        w.launch(batch(ended, &["exit=2"])).await;
        c.run(&runs_name);
        c.run(&ended_name);
        c.exit(&ended_name, 2, "Error");
        w.app_of(runs).await;
        assert_eq!(w.exit_of(ended).await, Some(2));
        // The node dies here.
    }
    let mut w = c.backend().await;
    assert_eq!(
        w.backend.find(runs, Attempt(1), &runs_name).await.unwrap(),
        Found::Running {
            driver_id: format!("{}/{runs_name}", c.cfg.namespace)
        }
    );
    assert_eq!(
        w.backend
            .find(ended, Attempt(1), &ended_name)
            .await
            .unwrap(),
        Found::Ended { exit_code: Some(2) }
    );
    assert_eq!(
        w.backend
            .find(
                never,
                Attempt(1),
                &kindling_backend::driver_name(never, Attempt(1))
            )
            .await
            .unwrap(),
        Found::Never
    );
    // The new instance watches what it found.
    w.app_of(runs).await;
    match &c.fake {
        Some(f) => f.terminate(NS, &runs_name, 0, "Completed"),
        None => w.backend.kill(&runs_name).await.unwrap(),
    }
    let exit = w.exit_of(runs).await;
    assert!(exit == Some(0) || exit == Some(EXIT_KILLED), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_deletes_the_pod_its_service_and_its_secret() {
    let c = Cluster::new().await;
    let mut w = c.backend().await;
    let job = c.job(1);
    let l = session(job);
    let name = l.driver_name.clone();
    w.launch(l).await;
    c.run(&name);
    w.app_of(job).await;
    w.backend.kill(&name).await.unwrap();
    assert_eq!(w.exit_of(job).await, Some(EXIT_KILLED));
    assert!(
        w.end_of(&name).contains("ended: Killed"),
        "{}",
        w.end_of(&name)
    );
    c.until("the pod, service and secret are gone", || async {
        c.pod(&name).await.is_none()
            && c.services
                .get_opt(&service_name(&name))
                .await
                .unwrap()
                .is_none()
            && c.secrets
                .get_opt(&secret_name(&name))
                .await
                .unwrap()
                .is_none()
    })
    .await;
    // Killing what is gone already is not an error.
    w.backend.kill(&name).await.unwrap();
    // The pod is gone; this node kept its end.
    assert_eq!(
        w.backend.find(job, Attempt(1), &name).await.unwrap(),
        Found::Ended {
            exit_code: Some(EXIT_KILLED)
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_copied_as_they_stream_and_kept_after_the_pod_is_deleted() {
    let mut c = Cluster::new().await;
    c.cfg.retention = PodRetention::DeleteAfter(Duration::ZERO);
    let mut w = c.backend().await;
    let job = c.job(1);
    let lines = ["first line", "second line", "third line"];
    let l = batch(
        job,
        &[
            &format!("echo={}", lines[0]),
            &format!("echo={}", lines[1]),
            &format!("echo={}", lines[2]),
            "exit=0",
        ],
    );
    let name = l.driver_name.clone();
    w.launch(l).await;
    c.run(&name);
    w.app_of(job).await;
    c.print(&name, lines[0]);
    c.print(&name, lines[1]);
    if let Some(f) = &c.fake {
        // The copy has the first two lines; then its stream breaks and it resumes.
        let copy = c.cfg.logs_dir.join(&c.cfg.name).join(format!("{name}.log"));
        c.until("the first lines are copied", || async {
            std::fs::read_to_string(&copy).is_ok_and(|t| t.lines().count() >= 2)
        })
        .await;
        f.close_logs();
    }
    c.print(&name, lines[2]);
    c.exit(&name, 0, "Completed");
    assert_eq!(w.exit_of(job).await, Some(0));
    // Retention deletes the pod once its end was reported and its log copied.
    c.until("the ended pod is deleted", || async {
        c.pod(&name).await.is_none()
    })
    .await;
    let kept = w.backend.log(&name, ALL).await.map(|s| s.lines).unwrap();
    assert_eq!(&kept[..3], lines, "{kept:?}");
    assert_eq!(kept.len(), 4, "each line once, then the end: {kept:?}");
    assert!(
        kept[3].contains("ended: Completed (exit code 0)"),
        "{kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_with_their_own_tokens_work_at_once_and_a_wrong_token_is_a_clear_error() {
    if real_kubeconfig().is_some() {
        eprintln!("skipped on a real cluster: needs two API servers");
        return;
    }
    let east = Cluster::with_token("east", Some("token-east")).await;
    let west = Cluster::with_token("west", Some("token-west")).await;
    let mut we = east.backend().await;
    // The west cluster through a kubeconfig file, as an operator would configure it.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("west.yaml");
    let west_url = west.fake.as_ref().unwrap().url.clone();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: w\n  cluster:\n    server: {west_url}\n\
             users:\n- name: u\n  user:\n    token: token-west\ncontexts:\n- name: w\n  context:\n    cluster: w\n    user: u\n\
             current-context: w\n"
        ),
    )
    .unwrap();
    let mut west_cfg = west.cfg.clone();
    west_cfg.api_server = None;
    west_cfg.auth = KubeAuth::Kubeconfig {
        path: kubeconfig,
        context: None,
    };
    let mut ww = Watcher::new(west_cfg, west.deadline).await;

    let (a, b) = (JobId(1), JobId(2));
    we.launch(batch(a, &[])).await;
    ww.launch(batch(b, &[])).await;
    let (fe, fw) = (east.fake.as_ref().unwrap(), west.fake.as_ref().unwrap());
    assert!(fe.get("pods", NS, "kindling-1-1").is_some());
    assert!(fe.get("pods", NS, "kindling-2-1").is_none());
    assert!(fw.get("pods", NS, "kindling-2-1").is_some());
    fe.run(NS, "kindling-1-1");
    fw.run(NS, "kindling-2-1");
    fw.terminate(NS, "kindling-2-1", 0, "Completed");
    fe.terminate(NS, "kindling-1-1", 5, "Error");
    assert_eq!(we.exit_of(a).await, Some(5));
    assert_eq!(ww.exit_of(b).await, Some(0));
    assert!(we
        .seen
        .iter()
        .all(|e| !matches!(e, BackendEvent::Exited { job, .. } if *job == b)));

    // West's API server with east's token.
    let mut wrong = west.cfg.clone();
    wrong.name = "west-misconfigured".into();
    wrong.auth = KubeAuth::BearerToken("token-east".into());
    let bad = Watcher::new(wrong, west.deadline).await;
    match bad.backend.launch(batch(JobId(3), &[])).await {
        Err(BackendError::LaunchFailed(m)) => {
            assert!(m.contains("cluster west-misconfigured"), "{m}");
            assert!(m.contains("401 Unauthorized"), "{m}");
            assert!(
                !m.contains("token-east"),
                "credentials stay out of errors: {m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fw.get("pods", NS, "kindling-3-1").is_none());
    match bad.backend.find(JobId(3), Attempt(1), "kindling-3-1").await {
        Err(BackendError::Io(m)) => assert!(m.contains("cluster west-misconfigured"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_fails_the_launch_clearly() {
    let logs = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = base_config("nowhere", &logs);
    cfg.api_server = Some(format!("http://127.0.0.1:{port}"));
    cfg.auth = KubeAuth::BearerToken("t".into());
    let w = Watcher::new(cfg, Duration::from_secs(20)).await;
    match w.backend.launch(batch(JobId(1), &[])).await {
        Err(BackendError::LaunchFailed(m)) => {
            assert!(m.contains("cluster nowhere"), "{m}");
            assert!(
                m.contains(&format!("127.0.0.1:{port} does not answer")),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.backend.find(JobId(1), Attempt(1), "kindling-1-1").await,
        Err(BackendError::Io(_))
    ));
    assert!(w
        .backend
        .log("kindling-1-1", ALL)
        .await
        .map(|s| s.lines)
        .is_err());
}
