//! The connection settings of each kind of cluster: which keys exist, which are required,
//! what their values must look like, and which credentials a kind takes. The API checks a
//! request against them before anything is appended; the backend factory reads the same keys.
//! Messages name the field (`connection.namespace`, `credentials.path`) and the fix.

use kindling_events::{ClusterConfig, ClusterKind, Credentials};
use std::path::Path;
use std::time::Duration;

/// One connection setting of a kind.
pub struct Setting {
    pub key: &'static str,
    pub required: bool,
    pub check: fn(&str) -> Result<(), String>,
    pub doc: &'static str,
}

const fn req(
    key: &'static str,
    check: fn(&str) -> Result<(), String>,
    doc: &'static str,
) -> Setting {
    Setting {
        key,
        required: true,
        check,
        doc,
    }
}

const fn opt(
    key: &'static str,
    check: fn(&str) -> Result<(), String>,
    doc: &'static str,
) -> Setting {
    Setting {
        key,
        required: false,
        check,
        doc,
    }
}

const LOCAL: &[Setting] = &[opt(
    "master",
    local_master,
    "local, local[N] or local[*] (default: the node's --local-master)",
)];

const STANDALONE: &[Setting] = &[
    req(
        "restUrl",
        http_url,
        "the master's REST submission server, e.g. http://master:6066",
    ),
    req(
        "webUiUrl",
        http_url,
        "the master's web UI, e.g. http://master:8080",
    ),
    opt(
        "python",
        non_empty,
        "Python on the workers (default python3)",
    ),
    opt(
        "runner",
        non_empty,
        "the session runner, a path on every worker or a URL (default: the node's copy)",
    ),
    opt(
        "proto",
        non_empty,
        "the runner's driver.proto, a path on every worker or a URL (default: the node's copy)",
    ),
    opt(
        "pollInterval",
        duration,
        "how often drivers' states are read, e.g. 2s (default 2s)",
    ),
];

const KUBERNETES: &[Setting] = &[
    opt(
        "apiServer",
        http_url,
        "the API server, e.g. https://10.0.0.1:6443 (required unless a kubeconfig names it)",
    ),
    req("namespace", dns_label, "the namespace driver pods run in"),
    req("image", non_empty, "the Spark image of drivers"),
    opt(
        "serviceAccount",
        dns_subdomain,
        "the service account drivers run as (default spark)",
    ),
    opt(
        "imagePullPolicy",
        pull_policy,
        "Always, IfNotPresent or Never",
    ),
    opt(
        "caFile",
        readable_file,
        "PEM bundle the API server's certificate is checked against, on every node",
    ),
    opt(
        "runner",
        non_empty,
        "the session runner inside the image (default local:///opt/kindling/kindling_runner.py)",
    ),
    opt(
        "podRetention",
        retention,
        "keep, or how long finished driver pods stay, e.g. 10m (default keep)",
    ),
    opt(
        "inClusterMaster",
        non_empty,
        "the API server URL Spark uses from inside the pod (default the in-cluster service)",
    ),
];

const YARN: &[Setting] = &[
    req(
        "hadoopConfDir",
        directory,
        "HADOOP_CONF_DIR of the cluster (core-site.xml, yarn-site.xml), on every node",
    ),
    req(
        "resourceManagers",
        http_urls,
        "the ResourceManagers' web addresses, comma-separated (all of them with HA), e.g. \
         http://rm1:8088",
    ),
    opt(
        "user",
        non_empty,
        "the user applications run as with simple authentication (required without a keytab)",
    ),
    opt("queue", non_empty, "the YARN queue of jobs that name none"),
    opt(
        "logServerUrl",
        http_url,
        "yarn.log.server.url, where aggregated logs are read",
    ),
    opt(
        "pollInterval",
        duration,
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

/// Checks a whole configuration; the message names the field at fault.
pub fn check(config: &ClusterConfig) -> Result<(), String> {
    let kind = config.kind;
    let known = settings(kind);
    for (key, value) in &config.connection {
        let Some(s) = known.iter().find(|s| s.key == key) else {
            let keys: Vec<&str> = known.iter().map(|s| s.key).collect();
            return Err(format!(
                "connection.{key} is not a setting of a {kind} cluster; its settings are {}",
                keys.join(", ")
            ));
        };
        (s.check)(value).map_err(|e| format!("connection.{key}: {e}"))?;
    }
    for s in known.iter().filter(|s| s.required) {
        if !config.connection.contains_key(s.key) {
            return Err(format!(
                "connection.{} is required for a {kind} cluster: {}",
                s.key, s.doc
            ));
        }
    }
    let creds = config.credentials.kind_name();
    let allowed = credential_kinds(kind);
    if !allowed.contains(&creds) {
        return Err(format!(
            "credentials of type {creds} do not apply to a {kind} cluster; use {}",
            allowed.join(" or ")
        ));
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
    if let Credentials::Keytab { principal, .. } = &config.credentials {
        if principal.trim().is_empty() {
            return Err("credentials.principal is required with a keytab".into());
        }
    }
    if kind == ClusterKind::Yarn
        && !config.connection.contains_key("user")
        && !matches!(config.credentials, Credentials::Keytab { .. })
    {
        return Err(
            "connection.user is required for a yarn cluster with simple authentication (no \
             keytab): the user applications run as"
                .into(),
        );
    }
    if kind == ClusterKind::Kubernetes
        && !config.connection.contains_key("apiServer")
        && !matches!(config.credentials, Credentials::Kubeconfig { .. })
    {
        return Err(
            "connection.apiServer is required for a kubernetes cluster unless its credentials \
             are a kubeconfig"
                .into(),
        );
    }
    Ok(())
}

fn non_empty(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(())
}

fn local_master(v: &str) -> Result<(), String> {
    let ok = v == "local"
        || v.strip_prefix("local[")
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|n| n == "*" || n.parse::<u32>().is_ok_and(|n| n > 0));
    if !ok {
        return Err(format!("must be local, local[N] or local[*], not {v:?}"));
    }
    Ok(())
}

fn http_url(v: &str) -> Result<(), String> {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    match rest {
        Some(r) if r.split('/').next().is_some_and(|a| a.contains('@')) => Err(
            "must not carry credentials (user:password@): give them as the cluster's credentials"
                .into(),
        ),
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(format!(
            "must be an http:// or https:// URL with a host, not {v:?}"
        )),
    }
}

fn http_urls(v: &str) -> Result<(), String> {
    v.split(',').map(str::trim).try_for_each(http_url)
}

fn dns_label(v: &str) -> Result<(), String> {
    kindling_events::cluster::check_name(v)
        .map_err(|e| format!("must be a Kubernetes name (a DNS label): {e}"))
}

fn dns_subdomain(v: &str) -> Result<(), String> {
    let ok = !v.is_empty() && v.len() <= 253 && v.split('.').all(dns_label_loose);
    if !ok {
        return Err(format!("{v:?} is not a Kubernetes name"));
    }
    Ok(())
}

fn dns_label_loose(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn pull_policy(v: &str) -> Result<(), String> {
    match v {
        "Always" | "IfNotPresent" | "Never" => Ok(()),
        _ => Err(format!("must be Always, IfNotPresent or Never, not {v:?}")),
    }
}

/// A readable file on this node (the nodes of a cluster must all have it).
pub fn readable_file(v: &str) -> Result<(), String> {
    if !Path::new(v).is_absolute() {
        return Err(format!("{v:?} must be an absolute path"));
    }
    match std::fs::File::open(v) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Ok(()),
        Ok(_) => Err(format!("{v} is not a file")),
        Err(e) => Err(format!("cannot read {v} on this node: {e}")),
    }
}

fn directory(v: &str) -> Result<(), String> {
    if !Path::new(v).is_absolute() {
        return Err(format!("{v:?} must be an absolute path"));
    }
    if !Path::new(v).is_dir() {
        return Err(format!("{v} is not a directory on this node"));
    }
    Ok(())
}

/// A duration setting: a positive duration that names its unit (`2s`, `500ms`, `10m`), read
/// as every duration is ([`kindling_events::units::parse_duration`]); a bare number, which
/// some would read as seconds and others as milliseconds, is refused.
pub fn parse_duration(v: &str) -> Option<Duration> {
    if !kindling_events::units::has_unit(v) {
        return None;
    }
    kindling_events::units::parse_duration(v)
        .ok()
        .filter(|d| !d.is_zero())
}

fn duration(v: &str) -> Result<(), String> {
    parse_duration(v).map(|_| ()).ok_or_else(|| {
        format!("must be a duration with its unit, like 500ms, 2s or 10m, not {v:?}")
    })
}

fn retention(v: &str) -> Result<(), String> {
    if v == "keep" {
        return Ok(());
    }
    duration(v).map_err(|_| format!("must be keep or a duration like 10m, not {v:?}"))
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
                config(ClusterKind::Yarn, &[("hadoopConfDir", "/no/such/dir")]),
                "connection.hadoopConfDir",
            ),
        ] {
            let e = check(&c).unwrap_err();
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
        assert!(check(&k).unwrap_err().contains("credentials.path"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("2"), None, "a bare number is ambiguous here");
    }
}
