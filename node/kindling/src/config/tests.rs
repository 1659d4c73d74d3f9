use super::*;

fn args(dir: &Path) -> ServeArgs {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/spark-submit"), "").unwrap();
    ServeArgs {
        spark_home: Some(dir.to_path_buf()),
        ..Default::default()
    }
}

fn on_kafka(dir: &Path, topic: Option<&str>) -> ServeArgs {
    ServeArgs {
        event_log: Some("kafka".into()),
        kafka_brokers: Some("k1:9092,k2:9092".into()),
        kafka_topic: topic.map(String::from),
        kafka_replication: Some(3),
        driver_route: Some("kafka".into()),
        ..args(dir)
    }
}

#[test]
fn drivers_use_grpc_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = args(dir.path()).resolve().unwrap();
    assert_eq!(cfg.driver_route, DriverRouteConfig::Grpc);
}

#[test]
fn kafka_routes_live_on_the_event_log_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let route = |a: ServeArgs| a.resolve().unwrap().driver_route;
    let want = |prefix: &str| DriverRouteConfig::Kafka {
        brokers: "k1:9092,k2:9092".into(),
        prefix: prefix.into(),
        replication: 3,
    };
    assert_eq!(route(on_kafka(dir.path(), None)), want("kindling"));
    assert_eq!(
        route(on_kafka(dir.path(), Some("prod.events"))),
        want("prod")
    );
    assert_eq!(route(on_kafka(dir.path(), Some("log"))), want("log"));
    let chosen = ServeArgs {
        kafka_route_prefix: Some("routes".into()),
        ..on_kafka(dir.path(), None)
    };
    assert_eq!(route(chosen), want("routes"));
}

#[test]
fn kafka_routes_need_the_kafka_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let sled = ServeArgs {
        driver_route: Some("kafka".into()),
        ..args(dir.path())
    };
    let e = sled.resolve().unwrap_err().to_string();
    assert!(e.contains("--event-log kafka"), "{e}");
    let typo = ServeArgs {
        driver_route: Some("kafak".into()),
        ..args(dir.path())
    };
    let e = typo.resolve().unwrap_err().to_string();
    assert!(e.contains("grpc or kafka"), "{e}");
}

#[test]
fn the_log_followers_wait_defaults_to_100_ms_and_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let tail_wait = |ms: Option<u64>| -> Result<Duration> {
        let cfg = ServeArgs {
            kafka_tail_wait_ms: ms,
            ..on_kafka(dir.path(), None)
        }
        .resolve()?;
        match cfg.log {
            LogConfig::Kafka { tail_wait, .. } => Ok(tail_wait),
            LogConfig::Sled => unreachable!("asked for kafka"),
        }
    };
    assert_eq!(tail_wait(None).unwrap(), Duration::from_millis(100));
    assert_eq!(tail_wait(Some(500)).unwrap(), Duration::from_millis(500));
    for bad in [0, 10_001] {
        let e = tail_wait(Some(bad)).unwrap_err().to_string();
        assert!(
            e.contains("--kafka-tail-wait-ms must be between 1 and 10000"),
            "{e}"
        );
    }
}

#[test]
fn a_trusted_user_header_needs_the_proxies_it_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let with = |header: Option<&str>, proxies: &[&str]| {
        let mut a = args(dir.path());
        a.auth.trusted_user_header = header.map(String::from);
        a.auth.trusted_proxies = proxies.iter().map(|p| p.to_string()).collect();
        a.resolve().map(|c| c.auth.trusted_proxy)
    };
    let e = with(Some("X-Remote-User"), &[]).unwrap_err().to_string();
    assert!(e.contains("--trusted-proxies"), "{e}");
    let e = with(None, &["10.0.0.0/8"]).unwrap_err().to_string();
    assert!(e.contains("--trusted-user-header"), "{e}");
    let e = with(Some("X-Remote-User"), &["10.0.0.300"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("10.0.0.300"), "{e}");
    let proxy = with(Some("X-Remote-User"), &["10.0.0.0/8", "::1"])
        .unwrap()
        .unwrap();
    assert_eq!(proxy.user_header, "X-Remote-User");
    assert_eq!(proxy.from.len(), 2);
}

#[test]
fn a_raft_port_beyond_loopback_needs_the_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let with = |secret: Option<&str>, insecure: bool| {
        let mut a = args(dir.path());
        a.raft_listen = Some("0.0.0.0:7000".parse().unwrap());
        a.auth.cluster_secret_file = secret.map(Into::into);
        a.auth.insecure_no_auth = insecure;
        a.resolve().map(|c| c.auth.cluster_secret_file)
    };
    let e = with(None, false).unwrap_err().to_string();
    assert!(
        e.contains("--cluster-secret-file") && e.contains("--insecure-no-auth"),
        "{e}"
    );
    assert_eq!(
        with(Some("/etc/kindling/secret"), false).unwrap(),
        Some("/etc/kindling/secret".into())
    );
    assert_eq!(with(None, true).unwrap(), None);
}

#[test]
fn https_needs_both_the_certificate_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let with = |cert: Option<&str>, key: Option<&str>| {
        let mut a = args(dir.path());
        a.http.tls_cert = cert.map(Into::into);
        a.http.tls_key = key.map(Into::into);
        a.resolve().map(|c| c.http.tls.is_some())
    };
    let e = with(Some("/etc/kindling/tls.pem"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--tls-key"), "{e}");
    let e = with(None, Some("/etc/kindling/tls.key"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--tls-cert"), "{e}");
    assert!(with(Some("/c"), Some("/k")).unwrap());
    assert!(!with(None, None).unwrap());
}

#[test]
fn ldap_needs_a_directory_and_a_way_to_find_users() {
    let dir = tempfile::tempdir().unwrap();
    let with = |mode: &str, url: Option<&str>, template: Option<&str>| {
        let mut a = args(dir.path());
        a.auth.mode = Some(mode.into());
        a.auth.ldap.ldap_url = url.map(Into::into);
        a.auth.ldap.ldap_user_dn = template.map(Into::into);
        a.resolve()
            .map(|c| (c.auth.mode, c.auth.ldap.is_some(), c.auth.users_file))
    };
    let err = |r: anyhow::Result<_>| r.map(|_| ()).unwrap_err().to_string();
    assert!(err(with("ldap", None, None)).contains("--ldap-url"));
    assert!(err(with("ldap", Some("http://h:636"), Some("uid={user}"))).contains("ldaps://"));
    assert!(err(with("ldap", Some("ldap://h:389"), None)).contains("--ldap-user-dn"));
    assert!(err(with("ldap", Some("ldap://h:389"), Some("uid=x"))).contains("{user}"));
    assert!(
        err(with("basic,ldap", Some("ldap://h:389"), Some("uid={user}"))).contains("--users-file")
    );
    assert!(err(with("kerberos", None, None)).contains("kerberos"));
    let (mode, ldap, users) = with("ldap", Some("ldap://h:389"), Some("uid={user}")).unwrap();
    assert_eq!(
        (mode, ldap, users),
        (kindling_auth::AuthMode::Basic, true, None)
    );
}

#[test]
fn oidc_needs_its_issuer_and_takes_asymmetric_algorithms_only() {
    let dir = tempfile::tempdir().unwrap();
    let with = |algorithms: &[&str], complete: bool| {
        let mut a = args(dir.path());
        a.auth.mode = Some("oidc".into());
        if complete {
            a.auth.oidc.oidc_issuer = Some("https://issuer.test".into());
            a.auth.oidc.oidc_audience = Some("kindling".into());
            a.auth.oidc.oidc_jwks_url = Some("https://issuer.test/jwks".into());
        }
        a.auth.oidc.oidc_algorithms = algorithms.iter().map(|s| s.to_string()).collect();
        a.resolve().map(|c| {
            // OIDC alone authenticates: such a node may listen beyond loopback.
            assert_eq!(c.auth.mode, kindling_auth::AuthMode::Basic);
            c.auth.oidc.unwrap().algorithms.len()
        })
    };
    let e = with(&[], false).unwrap_err().to_string();
    assert!(e.contains("--oidc-issuer"), "{e}");
    let e = with(&["HS256"], true).unwrap_err().to_string();
    assert!(e.contains("HS256") && e.contains("asymmetric"), "{e}");
    assert_eq!(with(&[], true).unwrap(), 2, "RS256 and ES256 by default");
    assert_eq!(with(&["ES384"], true).unwrap(), 1);
}

#[test]
fn kafka_client_security_passes_through_with_secrets_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("kafka.password");
    std::fs::write(&password, "s3cret-sasl-pw\n").unwrap();
    let secured = |props: &[&str], secrets: &[String]| ServeArgs {
        driver_route: None,
        kafka_properties: props.iter().map(|p| p.to_string()).collect(),
        kafka_secret_properties: secrets.to_vec(),
        ..on_kafka(dir.path(), None)
    };
    let sasl = [
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=PLAIN",
        "sasl.username=kindling",
    ];
    let secret = [format!("sasl.password={}", password.display())];
    let cfg = secured(&sasl, &secret).resolve().unwrap();
    let LogConfig::Kafka { security, .. } = &cfg.log else {
        panic!("{:?}", cfg.log)
    };
    let read = security.read().unwrap();
    assert_eq!(
        read["sasl.password"], "s3cret-sasl-pw",
        "the newline is not part of it"
    );
    assert_eq!(read["sasl.mechanism"], "PLAIN");
    assert!(
        !format!("{cfg:?}").contains("s3cret"),
        "only the file's path is kept"
    );

    let refused = |props: &[&str], secrets: &[String]| {
        let e = secured(props, secrets).resolve().unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        e
    };
    let e = refused(&["sasl.password=hunter2"], &[]);
    assert!(
        e.contains("--kafka-secret-property sasl.password=FILE"),
        "{e}"
    );
    let e = refused(&["sasl.mechanisms.typo=PLAIN"], &[]);
    assert!(e.contains("sasl.mechanisms.typo"), "{e}");
    let e = refused(&["acks=1"], &[]);
    assert!(e.contains("set by Kindling"), "{e}");
    let e = refused(&["no-equals-sign"], &[]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let routed = ServeArgs {
        driver_route: Some("kafka".into()),
        ..secured(&sasl, &secret)
    };
    let e = routed.resolve().unwrap_err().to_string();
    assert!(e.contains("--driver-route grpc"), "{e}");

    // A secret file that cannot be read is named, when the log is opened.
    let missing = [format!(
        "sasl.password={}",
        dir.path().join("nope").display()
    )];
    let cfg = secured(&sasl, &missing).resolve().unwrap();
    let LogConfig::Kafka { security, .. } = &cfg.log else {
        unreachable!()
    };
    let e = format!("{:#}", security.read().unwrap_err());
    assert!(e.contains("nope") && e.contains("sasl.password"), "{e}");
}

#[test]
fn a_mongodb_password_comes_from_a_file_never_the_uri() {
    let dir = tempfile::tempdir().unwrap();
    let on_mongo = |uri: &str, password_file: Option<PathBuf>| ServeArgs {
        projections: Some("mongodb".into()),
        mongo_uri: Some(uri.into()),
        mongo_password_file: password_file,
        ..args(dir.path())
    };
    let e = on_mongo("mongodb://kindling:hunter2@db:27017/?tls=true", None)
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--mongo-password-file") && !e.contains("hunter2"),
        "{e}"
    );
    let file = dir.path().join("mongo.password");
    let uri = "mongodb://kindling@db:27017/?tls=true&tlsCAFile=/etc/ca.pem";
    let cfg = on_mongo(uri, Some(file.clone())).resolve().unwrap();
    assert_eq!(
        cfg.projections,
        ProjectionConfig::Mongo {
            uri: uri.into(),
            database: "kindling".into(),
            password_file: Some(file),
        }
    );
    // x.509: no password at all, the certificate in the URI's options.
    let x509 = "mongodb://db:27017/?tls=true&authMechanism=MONGODB-X509\
                &tlsCertificateKeyFile=/etc/kindling/client.pem";
    assert!(on_mongo(x509, None).resolve().is_ok());
    let e = on_mongo("db:27017", None)
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(e.contains("mongodb://"), "{e}");
}
