//! The configuration of one Kubernetes cluster and the `kube` client built from it. Owns how
//! credentials reach the client; credentials never reach a log line: [`KubeAuth`]'s `Debug`
//! redacts the token, and the client is built from a kubeconfig whose secrets `kube` keeps in
//! `SecretString`s.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How Spark inside a driver pod reaches the API server: the in-cluster service, through the
/// pod's mounted service-account token (Spark's `spark.kubernetes.submitInDriver` mode).
pub const IN_CLUSTER_MASTER: &str = "k8s://https://kubernetes.default.svc:443";

/// One Kubernetes cluster Kindling launches drivers on. One backend instance per cluster.
#[derive(Clone)]
pub struct KubernetesConfig {
    /// Kindling's name for this Kubernetes cluster (the cluster registry's): every error and
    /// log line about the cluster names it.
    pub name: String,
    /// The Kindling cluster's id. Drivers carry it as a label, so two Kindling clusters
    /// sharing a namespace never take each other's drivers for their own.
    pub cluster_id: String,
    /// The API server, e.g. `https://10.0.0.1:6443`. Required with a token or a client
    /// certificate; with a kubeconfig it replaces the kubeconfig's server when set.
    pub api_server: Option<String>,
    /// The namespace driver pods, their services and secrets live in.
    pub namespace: String,
    pub auth: KubeAuth,
    /// PEM bundle of the certificate authorities the API server's certificate is checked
    /// against (token and client-certificate auth; a kubeconfig names its own).
    pub ca_file: Option<PathBuf>,
    /// The Spark image of drivers (and, unless the job's conf names another, executors). Its
    /// entrypoint must be Spark's `entrypoint.sh` (or take the same `driver …` arguments).
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`; the cluster's default when `None`.
    pub image_pull_policy: Option<String>,
    /// The service account drivers run as; it must be allowed to create, list, watch and
    /// delete pods, services and config maps in `namespace` (Spark creates executors with it).
    pub service_account: String,
    /// Replaces the image's entrypoint (the container's `command`) when set; the arguments
    /// stay Spark's `driver …`. For images whose entrypoint is not Spark's.
    pub driver_command: Option<Vec<String>>,
    /// Spark conf applied to every job before the job's own.
    pub default_conf: BTreeMap<String, String>,
    /// The session runner (`kindling_runner.py`) inside the image, with
    /// `kindling/driver/v1/driver.proto` beside it, e.g. `local:///opt/kindling/kindling_runner.py`.
    pub runner: String,
    /// What happens to a driver pod once its end has been reported.
    pub retention: PodRetention,
    /// Where driver logs are copied as they stream (one file per driver), so they outlive
    /// their pods.
    pub logs_dir: PathBuf,
    /// The API server URL Spark uses from inside the driver pod.
    pub in_cluster_master: String,
}

impl fmt::Debug for KubernetesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conf: std::collections::BTreeMap<&str, &str> = self
            .default_conf
            .iter()
            .map(|(k, v)| {
                let v = if kindling_events::cluster::is_secret_key(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("KubernetesConfig")
            .field("name", &self.name)
            .field("cluster_id", &self.cluster_id)
            .field("api_server", &self.api_server)
            .field("namespace", &self.namespace)
            .field("auth", &self.auth)
            .field("ca_file", &self.ca_file)
            .field("image", &self.image)
            .field("image_pull_policy", &self.image_pull_policy)
            .field("service_account", &self.service_account)
            .field("driver_command", &self.driver_command)
            .field("default_conf", &conf)
            .field("runner", &self.runner)
            .field("retention", &self.retention)
            .field("logs_dir", &self.logs_dir)
            .field("in_cluster_master", &self.in_cluster_master)
            .finish()
    }
}

/// How the backend authenticates to the API server.
#[derive(Clone)]
pub enum KubeAuth {
    /// A kubeconfig file, and the context to use (its current context when `None`).
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    /// A bearer token (e.g. a service account's). The registry never holds one (it names a
    /// token file instead); the tests and embedders do.
    #[allow(dead_code)]
    BearerToken(String),
    /// A file holding a bearer token, read by the client and re-read as it rotates (a
    /// projected service-account token): the registry's way, so no token enters the log.
    TokenFile(PathBuf),
    /// No credentials (an API server that admits anonymous requests, or a proxy in front).
    Anonymous,
    /// A client certificate and its private key, both PEM files.
    ClientCertificate { cert: PathBuf, key: PathBuf },
}

impl fmt::Debug for KubeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeAuth::Kubeconfig { path, context } => f
                .debug_struct("Kubeconfig")
                .field("path", path)
                .field("context", context)
                .finish(),
            KubeAuth::BearerToken(_) => f.write_str("BearerToken(<redacted>)"),
            KubeAuth::TokenFile(_) => f.write_str("TokenFile(<redacted>)"),
            KubeAuth::Anonymous => f.write_str("Anonymous"),
            KubeAuth::ClientCertificate { cert, key } => f
                .debug_struct("ClientCertificate")
                .field("cert", cert)
                .field("key", key)
                .finish(),
        }
    }
}

/// What happens to a driver pod (with its service and secret) after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodRetention {
    /// Keep it until someone deletes it (`kubectl delete`, or a kill).
    Keep,
    /// Delete it this long after its end was reported to the scheduler. A pod whose end no
    /// scheduler has learned yet is kept: deleting it would make a later `find` answer
    /// `Never`, and the scheduler would run the attempt again.
    DeleteAfter(Duration),
}

impl KubernetesConfig {
    /// The `kube` client for this cluster. Touches only local files (kubeconfig, CA); the
    /// API server is first contacted by the first request.
    pub(super) async fn client(&self) -> Result<kube::Client, String> {
        let config = self.kube_config().await?;
        kube::Client::try_from(config).map_err(|e| {
            format!(
                "cluster {}: cannot build a Kubernetes client: {e}",
                self.name
            )
        })
    }

    async fn kube_config(&self) -> Result<kube::Config, String> {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let name = &self.name;
        let (kubeconfig, context) = match &self.auth {
            KubeAuth::Kubeconfig { path, context } => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    use kube::config::KubeconfigError::{InvalidStructure, Parse};
                    // A YAML error quotes the values it trips on, and a kubeconfig holds
                    // tokens and keys: say where it is, never what.
                    let why = match &e {
                        Parse(y) | InvalidStructure(y) => match y.location() {
                            Some(at) => format!(
                                "it is not a valid kubeconfig (line {}, column {}; its content \
                                 is not shown)",
                                at.line(),
                                at.column()
                            ),
                            None => {
                                "it is not a valid kubeconfig (its content is not shown)".into()
                            }
                        },
                        other => other.to_string(),
                    };
                    format!(
                        "cluster {name}: cannot read kubeconfig {}: {why}",
                        path.display()
                    )
                })?;
                (kc, context.clone())
            }
            KubeAuth::BearerToken(token) => (
                self.synthesized(serde_json::json!({ "token": token }))?,
                None,
            ),
            KubeAuth::TokenFile(path) => {
                // `kube` reads it when the client is built; say which cluster it was for.
                std::fs::read(path).map_err(|e| {
                    format!(
                        "cluster {name}: cannot read the token file {}: {e}",
                        path.display()
                    )
                })?;
                (
                    self.synthesized(
                        serde_json::json!({ "tokenFile": path.display().to_string() }),
                    )?,
                    None,
                )
            }
            KubeAuth::Anonymous => (self.synthesized(serde_json::json!({}))?, None),
            KubeAuth::ClientCertificate { cert, key } => {
                // `kube` would silently connect without a certificate it cannot read.
                for (what, path) in [("client certificate", cert), ("client key", key)] {
                    std::fs::read(path).map_err(|e| {
                        format!(
                            "cluster {name}: cannot read the {what} {}: {e}",
                            path.display()
                        )
                    })?;
                }
                (
                    self.synthesized(serde_json::json!({
                        "client-certificate": cert.display().to_string(),
                        "client-key": key.display().to_string(),
                    }))?,
                    None,
                )
            }
        };
        let options = KubeConfigOptions {
            context,
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| format!("cluster {name}: unusable Kubernetes credentials: {e}"))?;
        if let Some(url) = &self.api_server {
            config.cluster_url = url
                .parse()
                .map_err(|e| format!("cluster {name}: bad API server URL {url:?}: {e}"))?;
        }
        config.default_namespace = self.namespace.clone();
        // A refused or unroutable API server must fail a launch quickly and clearly.
        config.connect_timeout = Some(Duration::from_secs(5));
        Ok(config)
    }

    /// A one-context kubeconfig for token, token-file, client-certificate and anonymous auth:
    /// `kube` then reads the CA and key files, and keeps the secrets redacted, exactly as for
    /// a user's file.
    fn synthesized(&self, user: serde_json::Value) -> Result<kube::config::Kubeconfig, String> {
        let name = &self.name;
        let server = self.api_server.clone().ok_or_else(|| {
            format!(
                "cluster {name}: an API server URL is required unless the credentials are a kubeconfig"
            )
        })?;
        let mut cluster = serde_json::json!({ "server": server });
        if let Some(ca) = &self.ca_file {
            cluster["certificate-authority"] = ca.display().to_string().into();
        }
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": name, "cluster": cluster }],
            "users": [{ "name": name, "user": user }],
            "contexts": [{
                "name": name,
                "context": { "cluster": name, "user": name, "namespace": self.namespace },
            }],
            "current-context": name,
        });
        serde_json::from_value(doc).map_err(|e| format!("cluster {name}: bad credentials: {e}"))
    }
}

#[cfg(test)]
impl KubernetesConfig {
    /// A configuration for unit tests.
    pub(crate) fn example(auth: KubeAuth) -> KubernetesConfig {
        KubernetesConfig {
            name: "east".into(),
            cluster_id: "c1".into(),
            api_server: Some("https://10.1.2.3:6443".into()),
            namespace: "spark".into(),
            auth,
            ca_file: None,
            image: "spark:4".into(),
            image_pull_policy: None,
            service_account: "spark".into(),
            driver_command: None,
            default_conf: BTreeMap::new(),
            runner: "local:///opt/kindling/kindling_runner.py".into(),
            retention: PodRetention::Keep,
            logs_dir: "/tmp/logs".into(),
            in_cluster_master: IN_CLUSTER_MASTER.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token_or_secret_conf() {
        let mut c = KubernetesConfig::example(KubeAuth::BearerToken("s3cr3t-token".into()));
        c.default_conf
            .insert("spark.hadoop.fs.s3a.secret.key".into(), "s3cr3t-key".into());
        c.default_conf
            .insert("spark.hadoop.fs.s3a.access.key".into(), "AKIA".into());
        c.default_conf
            .insert("spark.ui.enabled".into(), "false".into());
        let shown = format!("{c:?} {:?}", c.auth);
        for secret in ["s3cr3t-token", "s3cr3t-key", "AKIA"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("BearerToken(<redacted>)"), "{shown}");
        assert!(shown.contains("\"spark.ui.enabled\": \"false\""), "{shown}");
    }

    #[tokio::test]
    async fn a_token_config_targets_the_api_server_and_namespace() {
        let c = KubernetesConfig::example(KubeAuth::BearerToken("t".into()));
        let k = c.kube_config().await.unwrap();
        assert_eq!(k.cluster_url.to_string(), "https://10.1.2.3:6443/");
        assert_eq!(k.default_namespace, "spark");
        let shown = format!("{k:?}");
        assert!(!shown.contains("\"t\""), "{shown}");
    }

    #[tokio::test]
    async fn a_token_without_an_api_server_is_refused_with_the_clusters_name() {
        let mut c = KubernetesConfig::example(KubeAuth::BearerToken("t".into()));
        c.api_server = None;
        let e = c.kube_config().await.unwrap_err();
        assert!(
            e.contains("cluster east") && e.contains("API server URL"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_broken_kubeconfig_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: s3cr3t-token-value\n",
        )
        .unwrap();
        let c = KubernetesConfig::example(KubeAuth::Kubeconfig {
            path: path.clone(),
            context: None,
        });
        // kube's own error quotes the value it trips on, here the token.
        let raw = kube::config::Kubeconfig::read_from(&path)
            .unwrap_err()
            .to_string();
        assert!(raw.contains("s3cr3t"), "{raw}");
        let e = c.kube_config().await.unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(
            e.contains("not a valid kubeconfig") && e.contains("not shown"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_or_key_file_is_a_clear_error() {
        let c = KubernetesConfig::example(KubeAuth::Kubeconfig {
            path: "/nonexistent/kubeconfig".into(),
            context: None,
        });
        let e = c.kube_config().await.unwrap_err();
        assert!(
            e.contains("cluster east") && e.contains("/nonexistent/kubeconfig"),
            "{e}"
        );
        let c = KubernetesConfig::example(KubeAuth::ClientCertificate {
            cert: "/nonexistent/client.crt".into(),
            key: "/nonexistent/client.key".into(),
        });
        let e = c.kube_config().await.unwrap_err();
        assert!(
            e.contains("cluster east") && e.contains("/nonexistent/client.crt"),
            "{e}"
        );
    }
}
