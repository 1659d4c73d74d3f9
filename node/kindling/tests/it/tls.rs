//! HTTPS on the REST API with certificates the real `openssl` makes: curl and reqwest verify
//! the node against the test's CA, plain HTTP gets nothing, and a renewed certificate is
//! served without a restart while a broken one is not taken.

use crate::common::{fake_spark_home, Node};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// openssl's arguments for a new P-256 key without a passphrase.
const NEW_EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A CA (`ca.key`, `ca.pem`) in `dir`.
pub(crate) fn make_ca(dir: &Path) {
    let subject = ["-days", "2", "-subj", "/CN=Kindling test CA"];
    let out = ["-keyout", "ca.key", "-out", "ca.pem"];
    openssl(
        dir,
        &[&["req", "-x509"][..], &NEW_EC_KEY, &out, &subject].concat(),
    );
}

/// A key and a certificate for 127.0.0.1 named `cn` (`cn.key`, `cn.pem`), signed by the CA
/// in `dir`.
pub(crate) fn issue(dir: &Path, cn: &str) {
    let subject = format!("/CN={cn}");
    let (key, csr, pem) = (
        format!("{cn}.key"),
        format!("{cn}.csr"),
        format!("{cn}.pem"),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &NEW_EC_KEY,
            &["-keyout", &key, "-out", &csr, "-subj", &subject],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
}

/// The subject of the certificate the node at `addr` presents.
fn served_subject(dir: &Path, addr: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "10"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn https_with_a_verified_certificate_renewed_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d);
    issue(d, "kindling-one");
    issue(d, "kindling-two");
    std::fs::copy(d.join("kindling-one.pem"), d.join("node.pem")).unwrap();
    std::fs::copy(d.join("kindling-one.key"), d.join("node.key")).unwrap();
    let (cert, key) = (d.join("node.pem"), d.join("node.key"));
    let node = Node::start(
        &d.join("data"),
        &fake_spark_home(d),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = node.url("/api/v1/health").replace("http://", "https://");
    let addr = https
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let ca = d.join("ca.pem");

    // Real clients that verify: curl with the CA, and reqwest with it as its only root.
    let (ok, body) = curl(&["--cacert", ca.to_str().unwrap(), &https]);
    assert!(ok, "curl over https: {body}");
    assert!(body.contains("\"status\""), "{body}");
    let (ok, _) = curl(&[&https]);
    assert!(!ok, "curl trusted a certificate of an unknown CA");
    let pem = std::fs::read(&ca).unwrap();
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let version = client
        .get(https.replace("/api/v1/health", "/version"))
        .send()
        .unwrap();
    assert_eq!(version.status().as_u16(), 200);
    // Plain HTTP gets no answer from the TLS port.
    let plain = reqwest::blocking::get(node.url("/version"));
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));

    // A renewed pair is served within a couple of seconds, without a restart.
    assert!(served_subject(d, &addr).contains("kindling-one"));
    std::fs::copy(d.join("kindling-two.key"), d.join("next.key")).unwrap();
    std::fs::copy(d.join("kindling-two.pem"), d.join("next.pem")).unwrap();
    std::fs::rename(d.join("next.key"), &key).unwrap();
    std::fs::rename(d.join("next.pem"), &cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !served_subject(d, &addr).contains("kindling-two") {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A broken certificate file is not taken: the last good pair goes on, and the log says
    // why without the file's content.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let log_path = node.data.with_extension("node.log");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(served_subject(d, &addr).contains("kindling-two"));
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("TLS certificate not reloaded") {
            assert!(
                !log.contains("bm90IGEgY2VydA"),
                "the file's content was logged"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken certificate went unnoticed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, _) = curl(&["--cacert", ca.to_str().unwrap(), &https]);
    assert!(ok);
}

/// The driver gateway serves TLS with the node's certificate too, and a session's driver (the
/// real runner, on a stand-in pyspark) verifies it against the CA the node hands over, then
/// runs statements as over plain TCP.
#[test]
fn session_drivers_reach_the_gateway_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d);
    issue(d, "kindling-gw");
    let (cert, key, ca) = (
        d.join("kindling-gw.pem"),
        d.join("kindling-gw.key"),
        d.join("ca.pem"),
    );
    let node = Node::start(
        &d.join("data"),
        &crate::common::cluster::runner_only_spark_home(d),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert!(served_subject(d, &node.driver_addr).contains("kindling-gw"));
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let https = |path: &str| node.url(path).replace("http://", "https://");
    let post = |path: &str, body: serde_json::Value| {
        let r = client.post(https(path)).json(&body).send().unwrap();
        (r.status().as_u16(), r.json::<serde_json::Value>().unwrap())
    };
    // Follows what `path` reports until `done` says so, as a client polls.
    let until = |path: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now: serde_json::Value = client.get(https(path)).send().unwrap().json().unwrap();
            if done(&now) {
                return now;
            }
            assert!(Instant::now() < deadline, "{path}: {now}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (status, session) = post("/sessions", serde_json::json!({"kind": "pyspark"}));
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_u64().unwrap();
    let idle = until(&format!("/sessions/{id}"), &|s| {
        matches!(s["state"].as_str(), Some("idle" | "dead" | "error"))
    });
    assert_eq!(
        idle["state"], "idle",
        "the driver registered over TLS: {idle}"
    );
    let (status, st) = post(
        &format!("/sessions/{id}/statements"),
        serde_json::json!({"code": "20 + 22"}),
    );
    assert_eq!(status, 201, "{st}");
    let done = until(&format!("/sessions/{id}/statements/{}", st["id"]), &|s| {
        s["state"] == "available"
    });
    assert_eq!(done["output"]["data"]["text/plain"], "42", "{done}");
}
