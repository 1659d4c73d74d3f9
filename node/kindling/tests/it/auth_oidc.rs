//! `--auth oidc` with keys the real `openssl` makes and tokens the test mints, served by a
//! JWKS endpoint of the test's own: a valid token names the user and its groups give the
//! role; expired, wrong audience, wrong issuer, wrong key, `alg: none` and a symmetric
//! algorithm keyed with the public key are refused; a rotated key is fetched when a token
//! names it, and unknown key ids cannot make the node fetch more than once in a while.
//! Airflow's Livy hook submits with a JWT in its connection's extra headers.

use crate::common::{fake_spark_home, Node};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const ISSUER: &str = "https://issuer.kindling.test";
pub(crate) const AUDIENCE: &str = "kindling";

/// An RSA key from openssl: its PEM and its public JWK under `kid`.
pub(crate) fn rsa_key(dir: &Path, kid: &str) -> (Vec<u8>, Value) {
    let path = dir.join(format!("{kid}.pem"));
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&path)
        .arg("2048")
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl genrsa");
    let out = Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b64.encode(n), "e": "AQAB"});
    (std::fs::read(&path).unwrap(), jwk)
}

/// A JWKS endpoint serving whatever `keys` holds, counting requests.
pub(crate) fn jwks_server(keys: Arc<Mutex<Value>>, hits: Arc<Mutex<u64>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            *hits.lock().unwrap() += 1;
            let body = keys.lock().unwrap().to_string();
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn token(pem: &[u8], kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, &claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

pub(crate) fn claims(sub: &str, groups: &[&str]) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "groups": groups,
        "iat": now(), "nbf": now() - 5, "exp": now() + 600})
}

#[test]
fn oidc_tokens_verify_against_the_issuers_keys_and_follow_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pem1, jwk1) = rsa_key(d, "k1");
    let (pem2, jwk2) = rsa_key(d, "k2");
    let keys = Arc::new(Mutex::new(json!({"keys": [jwk1.clone()]})));
    let hits = Arc::new(Mutex::new(0));
    let jwks = jwks_server(keys.clone(), hits.clone());
    let node = Node::start(
        &d.join("data"),
        &fake_spark_home(d),
        &[
            "--auth",
            "oidc",
            "--oidc-issuer",
            ISSUER,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-jwks-url",
            &jwks,
            "--admin-groups",
            "spark-admins",
            "--oidc-refetch-secs",
            "3",
        ],
    );
    let http = reqwest::blocking::Client::new();
    let call = |path: &str, bearer: &str| {
        let r = http.get(node.url(path)).bearer_auth(bearer).send().unwrap();
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        (status, r.json::<Value>().unwrap_or(Value::Null), challenge)
    };

    let ann = token(&pem1, "k1", claims("ann", &["spark-admins"]));
    let ben = token(&pem1, "k1", claims("ben", &["analysts"]));
    let first_fetch = std::time::Instant::now();
    let (status, body, _) = call("/batches", &ann);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        call("/api/v1/events", &ann).0,
        200,
        "ann's group makes her an admin"
    );
    assert_eq!(call("/api/v1/events", &ben).0, 403, "ben is a user");
    // Airflow's Livy hook with the JWT in its connection's extra headers.
    let app = crate::common::program(d, "app.py", "print(1)\n");
    let env = [("KINDLING_TOKEN", ben.clone())];
    let run = crate::auth_tokens::airflow(&node.url(""), &app, &d.join("airflow"), "token", &env);
    assert_eq!(run["state"], "success", "{run}");
    let (_, job, _) = call(&format!("/api/v1/jobs/{}", run["id"]), &ben);
    assert_eq!(job["owner"], "ben", "{job}");

    let mut expired = claims("ann", &[]);
    expired["exp"] = json!(now() - 3600);
    let mut other_audience = claims("ann", &[]);
    other_audience["aud"] = json!("another-service");
    let mut other_issuer = claims("ann", &[]);
    other_issuer["iss"] = json!("https://elsewhere.test");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","kid":"k1"}"#),
        b64.encode(claims("ann", &["spark-admins"]).to_string())
    );
    // The classic confusion: HS256 keyed with the issuer's public key.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = encode(
        &hs,
        &claims("ann", &[]),
        &EncodingKey::from_secret(jwk1["n"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    let refused = [
        (token(&pem1, "k1", expired), "expired"),
        (token(&pem1, "k1", other_audience), "audience"),
        (token(&pem1, "k1", other_issuer), "issuer"),
        (token(&pem2, "k1", claims("ann", &[])), "signature"),
        (unsigned, "not a JWT"),
        (confused, "not allowed"),
        ("not.a.token".to_string(), "not a JWT"),
    ];
    for (bad, needle) in refused {
        let (status, body, challenge) = call("/batches", &bad);
        assert_eq!(status, 401, "{needle}: {body}");
        assert!(
            body["msg"].as_str().unwrap_or_default().contains(needle),
            "{needle}: {body}"
        );
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"kindling\""));
    }

    // The issuer rotates to k2: a token naming it makes the node fetch the keys again, once
    // the last fetch is 3 s old (--oidc-refetch-secs).
    *keys.lock().unwrap() = json!({"keys": [jwk2]});
    let before = *hits.lock().unwrap();
    let after_rotation = token(&pem2, "k2", claims("ann", &[]));
    // Wait out the interval since the one fetch so far (the node's rule, not a race), then
    // one call must do: from another address, so the refusals above do not limit it.
    let since_fetch = first_fetch.elapsed();
    // (The fetch came a moment after `first_fetch`: half a second of margin.)
    std::thread::sleep(std::time::Duration::from_millis(3500).saturating_sub(since_fetch));
    let other = reqwest::blocking::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let status = |bearer: &str| {
        let r = other
            .get(node.url("/batches"))
            .bearer_auth(bearer)
            .send()
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(status(&after_rotation), 200);
    let fetched = *hits.lock().unwrap();
    assert_eq!(fetched, before + 1, "one fetch followed the rotation");
    // Tokens naming keys nobody published cannot make it fetch again so soon.
    for kid in ["k3", "k4", "k5"] {
        assert_eq!(status(&token(&pem2, kid, claims("ann", &[]))), 401);
    }
    assert_eq!(*hits.lock().unwrap(), fetched);
}
