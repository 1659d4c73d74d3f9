//! The connection settings of each kind of cluster: which keys exist, which are required,
//! what their values must look like ([`SettingValue`]), and which credentials a kind takes.
//! The API checks a request against them before anything is appended, and its OpenAPI
//! document describes them from the same tables; the backend factory reads the same keys.
//! Messages name the field (`connection.namespace`, `credentials.path`) and the fix.

mod credentials_dir;
mod value;

pub use credentials_dir::in_credentials_dir;
pub use value::{parse_setting_duration as parse_duration, readable_file, SettingValue};

use kindling_events::{ClusterConfig, ClusterKind, Credentials};
use SettingValue::*;

/// One connection setting of a kind.
pub struct Setting {
    pub key: &'static str,
    pub required: bool,
    pub value: SettingValue,
    pub doc: &'static str,
}

const fn req(key: &'static str, value: SettingValue, doc: &'static str) -> Setting {
    Setting {
        key,
        required: true,
        value,
        doc,
    }
}

const fn opt(key: &'static str, value: SettingValue, doc: &'static str) -> Setting {
    Setting {
        key,
        required: false,
        value,
        doc,
    }
}

const LOCAL: &[Setting] = &[opt(
    "master",
    LocalMaster,
    "local, local[N] or local[*] (default: the node's --local-master)",
)];

const STANDALONE: &[Setting] = &[
    req(
        "restUrl",
        HttpUrl,
        "the master's REST submission server, e.g. http://master:6066",
    ),
    req(
        "webUiUrl",
        HttpUrl,
        "the master's web UI, e.g. http://master:8080",
    ),
    opt(
        "python",
        NotBlank,
        "Python on the workers (default python3)",
    ),
    opt(
        "runner",
        NotBlank,
        "the session runner, a path on every worker or a URL (default: the node's copy)",
    ),
    opt(
        "proto",
        NotBlank,
        "the runner's driver.proto, a path on every worker or a URL (default: the node's copy)",
    ),
    opt(
        "pollInterval",
        Duration,
        "how often drivers' states are read, e.g. 2s (default 2s)",
    ),
];

const KUBERNETES: &[Setting] = &[
    opt(
        "apiServer",
        HttpUrl,
        "the API server, e.g. https://10.0.0.1:6443 (required unless a kubeconfig names it)",
    ),
    req("namespace", DnsLabel, "the namespace driver pods run in"),
    req("image", NotBlank, "the Spark image of drivers"),
    opt(
        "serviceAccount",
        DnsSubdomain,
        "the service account drivers run as (default spark)",
    ),
    opt(
        "imagePullPolicy",
        PullPolicy,
        "Always, IfNotPresent or Never",
    ),
    opt(
        "caFile",
        File,
        "PEM bundle the API server's certificate is checked against, on every node",
    ),
    opt(
        "runner",
        NotBlank,
        "the session runner inside the image (default local:///opt/kindling/kindling_runner.py)",
    ),
    opt(
        "podRetention",
        Retention,
        "keep, or how long finished driver pods stay, e.g. 10m (default keep)",
    ),
    opt(
        "inClusterMaster",
        NotBlank,
        "the API server URL Spark uses from inside the pod (default the in-cluster service)",
    ),
];

const YARN: &[Setting] = &[
    req(
        "hadoopConfDir",
        Directory,
        "HADOOP_CONF_DIR of the cluster (core-site.xml, yarn-site.xml), on every node",
    ),
    req(
        "resourceManagers",
        HttpUrls,
        "the ResourceManagers' web addresses, comma-separated (all of them with HA), e.g. \
         http://rm1:8088",
    ),
    opt(
        "user",
        NotBlank,
        "the user applications run as with simple authentication (required without a keytab)",
    ),
    opt("queue", NotBlank, "the YARN queue of jobs that name none"),
    opt(
        "logServerUrl",
        HttpUrl,
        "yarn.log.server.url, where aggregated logs are read",
    ),
    opt(
        "pollInterval",
        Duration,
        "how often applications' states are read, e.g. 2s (default 2s)",
    ),
];

pub fn settings(kind: ClusterKind) -> &'static [Setting] {
    match kind {
        ClusterKind::Local => LOCAL,
        ClusterKind::Standalone => STANDALONE,
        ClusterKind::Kubernetes => KUBERNETES,
        ClusterKind::Yarn => YARN,
    }
}

/// The credential kinds a cluster kind takes (`none` always).
pub fn credential_kinds(kind: ClusterKind) -> &'static [&'static str] {
    match kind {
        ClusterKind::Local | ClusterKind::Standalone => &["none"],
        ClusterKind::Kubernetes => &["none", "tokenFile", "kubeconfig", "clientCertificate"],
        ClusterKind::Yarn => &["none", "keytab"],
    }
}

/// Whether a configuration is well formed; the message names the field at fault. What it
/// names on the node's disk is checked apart, by [`present`].
pub fn check(config: &ClusterConfig) -> Result<(), String> {
    let invalid = |m: String| Err(m);
    let kind = config.kind;
    let known = settings(kind);
    for (key, v) in &config.connection {
        let Some(s) = known.iter().find(|s| s.key == key) else {
            let keys: Vec<&str> = known.iter().map(|s| s.key).collect();
            return invalid(format!(
                "connection.{key} is not a setting of a {kind} cluster; its settings are {}",
                keys.join(", ")
            ));
        };
        s.value
            .check(v)
            .map_err(|e| format!("connection.{key}: {e}"))?;
    }
    for s in known.iter().filter(|s| s.required) {
        if !config.connection.contains_key(s.key) {
            return invalid(format!(
                "connection.{} is required for a {kind} cluster: {}",
                s.key, s.doc
            ));
        }
    }
    let creds = config.credentials.kind_name();
    let allowed = credential_kinds(kind);
    if !allowed.contains(&creds) {
        return invalid(format!(
            "credentials of type {creds} do not apply to a {kind} cluster; use {}",
            allowed.join(" or ")
        ));
    }
    for (field, path) in config.credentials.files() {
        File.check(path)
            .map_err(|e| format!("credentials.{field}: {e}"))?;
    }
    if let Credentials::Keytab { principal, .. } = &config.credentials {
        if principal.trim().is_empty() {
            return invalid("credentials.principal is required with a keytab".into());
        }
    }
    if kind == ClusterKind::Yarn
        && !config.connection.contains_key("user")
        && !matches!(config.credentials, Credentials::Keytab { .. })
    {
        return invalid(
            "connection.user is required for a yarn cluster with simple authentication (no \
             keytab): the user applications run as"
                .into(),
        );
    }
    if kind == ClusterKind::Kubernetes
        && !config.connection.contains_key("apiServer")
        && !matches!(config.credentials, Credentials::Kubeconfig { .. })
    {
        return invalid(
            "connection.apiServer is required for a kubernetes cluster unless its credentials \
             are a kubeconfig"
                .into(),
        );
    }
    Ok(())
}

/// Whether what a well-formed configuration names is on this node: its files and
/// directories, and a token file holding a token alone. Their absence is the node's state,
/// not a malformed request.
pub fn present(config: &ClusterConfig) -> Result<(), String> {
    for s in settings(config.kind) {
        if let Some(v) = config.connection.get(s.key) {
            s.value
                .present(v)
                .map_err(|e| format!("connection.{}: {e}", s.key))?;
        }
    }
    for (field, path) in config.credentials.files() {
        readable_file(path).map_err(|e| format!("credentials.{field}: {e}"))?;
    }
    if let Credentials::TokenFile { path } = &config.credentials {
        // Kubernetes clients send the file's bytes as they are: a newline would be part of
        // the token. Never quote the content.
        let token = std::fs::read(path).map_err(|e| format!("credentials.path: {e}"))?;
        if token.is_empty() || token.trim_ascii() != token.as_slice() {
            return Err(format!(
                "credentials.path: the token in {path} is empty or has surrounding whitespace \
                 (a trailing newline?); write the token alone, e.g. with printf %s"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: ClusterKind, pairs: &[(&str, &str)]) -> ClusterConfig {
        ClusterConfig {
            kind,
            connection: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ClusterConfig::local()
        }
    }

    #[test]
    fn checks_name_the_field() {
        let ok = config(
            ClusterKind::Standalone,
            &[("restUrl", "http://m:6066"), ("webUiUrl", "http://m:8080")],
        );
        assert_eq!(check(&ok), Ok(()));
        for (c, needle) in [
            (
                config(ClusterKind::Standalone, &[("restUrl", "http://m:6066")]),
                "connection.webUiUrl is required",
            ),
            (
                config(
                    ClusterKind::Standalone,
                    &[("restUrl", "m:6066"), ("webUiUrl", "http://m")],
                ),
                "connection.restUrl: must be an http",
            ),
            (
                config(ClusterKind::Local, &[("namespace", "x")]),
                "connection.namespace is not a setting of a local cluster",
            ),
            (
                config(ClusterKind::Local, &[("master", "yarn")]),
                "connection.master",
            ),
            (
                config(
                    ClusterKind::Kubernetes,
                    &[("namespace", "spark"), ("image", "spark:4")],
                ),
                "connection.apiServer is required",
            ),
            (
                config(
                    ClusterKind::Kubernetes,
                    &[
                        ("apiServer", "https://k:6443"),
                        ("namespace", "Spark"),
                        ("image", "spark:4"),
                    ],
                ),
                "connection.namespace",
            ),
            (
                config(
                    ClusterKind::Yarn,
                    &[
                        ("hadoopConfDir", "/no/such/dir"),
                        ("resourceManagers", "http://rm:8088"),
                        ("user", "spark"),
                    ],
                ),
                "connection.hadoopConfDir: /no/such/dir is not a directory",
            ),
        ] {
            let e = check(&c).and_then(|_| present(&c)).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let mut k = config(ClusterKind::Local, &[]);
        k.credentials = Credentials::TokenFile {
            path: "/etc/hostname".into(),
        };
        assert!(check(&k)
            .unwrap_err()
            .contains("do not apply to a local cluster"));
        let mut k = config(
            ClusterKind::Kubernetes,
            &[
                ("apiServer", "https://k:6443"),
                ("namespace", "spark"),
                ("image", "spark:4"),
            ],
        );
        k.credentials = Credentials::TokenFile {
            path: "/no/such/token".into(),
        };
        assert_eq!(check(&k), Ok(()));
        assert!(present(&k).unwrap_err().contains("credentials.path"));
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("2"), None, "a bare number is ambiguous here");
    }
}
