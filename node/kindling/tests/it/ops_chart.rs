//! The Helm chart (`ops/helm/kindling`) without a Kubernetes cluster, which cannot run on
//! these machines: `ops/dev/check-chart` lints and renders it for every `ci/` values file and
//! validates the objects against the Kubernetes schemas; then a three-member release is
//! rendered here and its wiring checked, running the pods' `start.sh` with a stand-in
//! `kindling` that prints what it was given. Helm and the validator come from
//! `ops/dev/install-helm` (`~/.cache/kindling/helm`, or `KINDLING_HELM_VENV`).

use crate::common::dev_cluster::root as repo;
use crate::common::venv_program;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAMESPACE: &str = "spark-ops";

fn chart() -> PathBuf {
    repo().join("ops/helm/kindling")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn install_helm() {
    let out = Command::new(repo().join("ops/dev/install-helm"))
        .output()
        .expect("ops/dev/install-helm runs");
    assert!(out.status.success(), "install-helm: {}", text(&out.stderr));
}

/// `helm template` of release `kindling` with the values files and `--set`s given.
fn helm_template(values: &[PathBuf], sets: &[&str]) -> Output {
    let mut helm = Command::new(venv_program("KINDLING_HELM_VENV", "helm", "helm"));
    helm.args(["template", "kindling"])
        .arg(chart())
        .args(["--namespace", NAMESPACE]);
    for v in values {
        helm.arg("-f").arg(v);
    }
    for s in sets {
        helm.args(["--set", s]);
    }
    helm.output().expect("helm runs (ops/dev/install-helm)")
}

/// The rendered objects, as JSON (PyYAML from the same venv reads Helm's YAML).
fn render(values: &[PathBuf]) -> Vec<Value> {
    let out = helm_template(values, &[]);
    assert!(out.status.success(), "helm template: {}", text(&out.stderr));
    let mut python = Command::new(venv_program("KINDLING_HELM_VENV", "helm", "python"))
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    python.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let parsed = python.wait_with_output().unwrap();
    assert!(parsed.status.success(), "yaml to json failed");
    serde_json::from_slice::<Vec<Value>>(&parsed.stdout).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && pick(o))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} wanted, found {}", found.len());
    found[0]
}

/// Runs the pods' `start.sh` as pod `pod` with a `kindling` that prints its `KINDLING_*`
/// environment and arguments instead of serving.
fn start(
    dir: &Path,
    script: &str,
    pod: &str,
) -> Result<(BTreeMap<String, String>, String), String> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stand_in = bin.join("kindling");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\nenv | grep '^KINDLING_' | sort\necho \"args=$*\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("start.sh"), script).unwrap();
    let out = Command::new("/bin/sh")
        .arg(dir.join("start.sh"))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("POD_NAME", pod)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let mut env = BTreeMap::new();
    let mut args = String::new();
    for line in text(&out.stdout).lines() {
        if let Some(a) = line.strip_prefix("args=") {
            args = a.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    Ok((env, args))
}

#[test]
fn check_chart_lints_renders_and_validates_every_values_file() {
    let out = Command::new(repo().join("ops/dev/check-chart"))
        .output()
        .expect("ops/dev/check-chart runs");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check-chart failed\nstdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    let mut labels = vec!["values.yaml (defaults)".to_string()];
    for entry in std::fs::read_dir(chart().join("ci")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with("-values.yaml") {
            labels.push(format!("ci/{name}"));
        }
    }
    assert!(
        labels.len() >= 4,
        "the defaults and at least 3 ci files: {labels:?}"
    );
    for label in &labels {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok   {label}: ")))
            .unwrap_or_else(|| panic!("no line for {label}:\n{stdout}"));
        assert!(
            line.contains("valid against Kubernetes"),
            "{label} was not validated: {line}"
        );
    }
    // The monitoring objects are rendered (and checked) for the file that enables them.
    let monitored = stdout
        .lines()
        .find(|l| l.starts_with("ok   ci/auth-tls-values.yaml: "))
        .unwrap();
    assert!(
        monitored.contains("ServiceMonitor") && monitored.contains("PrometheusRule"),
        "{monitored}"
    );
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("ok   refused: "))
            .count()
            >= 5,
        "{stdout}"
    );
    assert!(
        stdout.contains("files/alerts.yml links to ops/prometheus/alerts.yml")
            || stdout.contains("files/alerts.yml is a copy of ops/prometheus/alerts.yml"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .next_back()
            .unwrap_or_default()
            .contains("checks passed"),
        "{stdout}"
    );
}

#[test]
fn a_three_member_release_derives_node_ids_joins_through_the_peers_and_reads_secrets_from_files() {
    install_helm();
    let objects = render(&[chart().join("ci/kafka-mongo-values.yaml")]);

    let set = find(&objects, "StatefulSet", |_| true);
    let pod = &set["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(set["spec"]["replicas"], 3);
    assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");
    assert_eq!(set["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"], "/api/v1/ready",
        "{container}"
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        "/api/v1/health"
    );
    let pdb = find(&objects, "PodDisruptionBudget", |_| true);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1, "{pdb}");

    // The members' names: <statefulset>-<ordinal>.<headless service>.<namespace>.svc.<domain>.
    let name = set["metadata"]["name"].as_str().unwrap();
    let peers = set["spec"]["serviceName"].as_str().unwrap();
    let headless = find(&objects, "Service", |s| s["metadata"]["name"] == peers);
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let member = |i: usize| format!("{name}-{i}.{peers}.{NAMESPACE}.svc.cluster.local");

    // The container runs start.sh from the ConfigMap under tini.
    assert_eq!(
        container["command"],
        serde_json::json!([
            "/usr/bin/tini",
            "--",
            "/bin/sh",
            "/etc/kindling/config/start.sh"
        ])
    );
    let config_map = find(&objects, "ConfigMap", |c| c["data"]["start.sh"].is_string());
    let script = config_map["data"]["start.sh"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for ordinal in 0..3usize {
        let (env, args) = start(dir.path(), script, &format!("{name}-{ordinal}")).unwrap();
        let id = ordinal + 1;
        assert_eq!(env["KINDLING_NODE_ID"], id.to_string(), "{env:?}");
        assert_eq!(
            env["KINDLING_RAFT_ADVERTISE"],
            format!("{}:8997", member(ordinal))
        );
        assert_eq!(
            env["KINDLING_HTTP_ADVERTISE"],
            format!("{}:8998", member(ordinal))
        );
        assert_eq!(
            env["KINDLING_DRIVER_ADVERTISE"],
            format!("{}:8999", member(ordinal))
        );
        assert_eq!(env["KINDLING_MONGO_DATABASE"], format!("kindling_node{id}"));
        assert_eq!(args, "serve --config /etc/kindling/config/kindling.toml");
        if ordinal == 0 {
            assert!(
                !env.contains_key("KINDLING_JOIN"),
                "pod 0 bootstraps: {env:?}"
            );
        } else {
            let joins: BTreeSet<&str> = env["KINDLING_JOIN"].split(',').collect();
            let others: Vec<String> = (0..3)
                .filter(|i| *i != ordinal)
                .map(|i| format!("{}:8997", member(i)))
                .collect();
            let others: BTreeSet<&str> = others.iter().map(String::as_str).collect();
            assert_eq!(joins, others, "pod {ordinal}");
        }
    }
    assert!(
        start(dir.path(), script, "kindling").is_err(),
        "a pod name without an ordinal"
    );

    // Every member's Raft link listens beyond loopback; secrets come from mounted Secrets.
    let config: toml::Value =
        toml::from_str(config_map["data"]["kindling.toml"].as_str().unwrap()).unwrap();
    assert_eq!(config["raft-listen"].as_str(), Some("0.0.0.0:8997"));
    assert!(
        !objects.iter().any(|o| o["kind"] == "Secret"),
        "the chart renders no Secret"
    );
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let secret_dirs: BTreeMap<&str, &str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            Some((
                v["secret"]["secretName"].as_str()?,
                mounts[v["name"].as_str()?],
            ))
        })
        .collect();
    assert_eq!(
        secret_dirs.keys().copied().collect::<Vec<_>>(),
        [
            "kindling-cluster",
            "kindling-kafka",
            "kindling-mongo",
            "kindling-users"
        ]
    );
    let secret_files = [
        config["auth"]["users-file"].as_str().unwrap(),
        config["auth"]["cluster-secret-file"].as_str().unwrap(),
        config["mongo-password-file"].as_str().unwrap(),
        config["kafka-secret-properties"]["sasl.password"]
            .as_str()
            .unwrap(),
    ];
    for file in secret_files {
        assert!(
            secret_dirs
                .values()
                .any(|dir| file.starts_with(&format!("{dir}/"))),
            "{file} is not in a mounted Secret: {secret_dirs:?}"
        );
    }

    // A secret given as a value is refused, and the refusal does not repeat it.
    let kafka = "eventLog.type=kafka,eventLog.kafka.brokers=kafka:9092";
    for set in [
        "projections.type=mongodb,projections.mongodb.uri=mongodb://kindling:Sentinel-7c1d@mongo/",
        "eventLog.kafka.properties.sasl\\.password=Sentinel-7c1d",
    ] {
        let out = helm_template(&[], &[kafka, set]);
        assert!(!out.status.success(), "{set} was rendered");
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!said.contains("Sentinel-7c1d"), "{set}: {said}");
    }
}
