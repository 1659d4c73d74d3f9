//! The cluster registry aggregate: what `decide` allows, what `apply` makes of it, and that
//! credentials never show in `Debug`.

use kindling_events::cluster::{check_name, is_secret_reference_key, redacted_conf};
use kindling_events::job::Applied;
use kindling_events::{
    Aggregate, Capacity, ClusterConfig, ClusterKind, Credentials, DomainError, Envelope, Event,
    LogPosition, NewEvent, NodeId, Origin, Registry, RegistryCommand, DEFAULT_CLUSTER,
};

fn kube(namespace: &str) -> ClusterConfig {
    ClusterConfig {
        kind: ClusterKind::Kubernetes,
        connection: [
            ("apiServer".to_string(), "https://10.0.0.1:6443".to_string()),
            ("namespace".to_string(), namespace.to_string()),
            ("image".to_string(), "spark:4".to_string()),
        ]
        .into(),
        credentials: Credentials::TokenFile {
            path: "/etc/kindling/east.token".into(),
        },
        spark_conf: [
            ("spark.executor.instances".to_string(), "2".to_string()),
            (
                "spark.hadoop.fs.s3a.secret.key".to_string(),
                "hunter2".to_string(),
            ),
        ]
        .into(),
        capacity: Capacity {
            max_drivers: Some(4),
            max_driver_cores: None,
            max_driver_memory_mb: Some(8192),
        },
    }
}

struct Log {
    registry: Registry,
    log: Vec<Envelope>,
}

impl Log {
    fn new() -> Log {
        Log {
            registry: Registry::default(),
            log: vec![],
        }
    }

    fn run(&mut self, cmd: RegistryCommand, active: usize) -> Result<usize, DomainError> {
        let events = self.registry.decide(cmd, active)?;
        let n = events.len();
        for event in events {
            let env = Envelope::new(
                LogPosition(10 + self.log.len() as u64),
                NewEvent {
                    aggregate: Aggregate::Registry,
                    version: self.registry.version + 1,
                    origin: Origin::Api,
                    node: NodeId(1),
                    actor: None,
                    at_ms: 1_000 * (self.log.len() as i64 + 1),
                    event,
                },
            );
            assert_eq!(self.registry.apply(&env), Applied::Yes);
            self.log.push(env);
        }
        Ok(n)
    }
}

fn register(name: &str, config: ClusterConfig) -> RegistryCommand {
    RegistryCommand::Register {
        name: name.into(),
        config,
    }
}

fn update(name: &str, config: ClusterConfig) -> RegistryCommand {
    RegistryCommand::Update {
        name: name.into(),
        config,
    }
}

fn remove(name: &str) -> RegistryCommand {
    RegistryCommand::Remove { name: name.into() }
}

#[test]
fn register_update_remove_round_trip() {
    let mut l = Log::new();
    assert_eq!(l.run(register("east", kube("spark")), 0), Ok(1));
    let east = l.registry.get("east").unwrap();
    assert_eq!(east.config, kube("spark"));
    assert_eq!(east.revision, LogPosition(10));
    assert_eq!(east.registered_at_ms, 1_000);

    let mut more = kube("spark");
    more.capacity.max_drivers = Some(8);
    assert_eq!(
        l.run(update("east", more.clone()), 3),
        Ok(1),
        "capacity may change under load"
    );
    let east = l.registry.get("east").unwrap();
    assert_eq!(east.config, more);
    assert_eq!(east.revision, LogPosition(11));
    assert_eq!((east.registered_at_ms, east.updated_at_ms), (1_000, 2_000));
    assert_eq!(
        l.run(update("east", more), 3),
        Ok(0),
        "an update that changes nothing"
    );

    assert_eq!(l.run(remove("east"), 0), Ok(1));
    assert!(l.registry.get("east").is_none());
    assert_eq!(l.registry.version, 3);
    // The name is free again; the new registration's revision is later than any before.
    assert_eq!(l.run(register("east", kube("other")), 0), Ok(1));
    assert_eq!(l.registry.get("east").unwrap().revision, LogPosition(13));
}

#[test]
fn refusals_name_the_cluster_and_the_reason() {
    let mut l = Log::new();
    l.run(register("east", kube("spark")), 0).unwrap();
    assert_eq!(
        l.run(register("east", kube("spark")), 0),
        Err(DomainError::ClusterExists("east".into()))
    );
    assert_eq!(
        l.run(update("west", kube("spark")), 0),
        Err(DomainError::UnknownCluster("west".into()))
    );
    assert_eq!(
        l.run(remove("west"), 0),
        Err(DomainError::UnknownCluster("west".into()))
    );
    for cmd in [
        register(DEFAULT_CLUSTER, ClusterConfig::local()),
        update(DEFAULT_CLUSTER, ClusterConfig::local()),
        remove(DEFAULT_CLUSTER),
    ] {
        assert_eq!(
            l.run(cmd, 0),
            Err(DomainError::BuiltInCluster(DEFAULT_CLUSTER.into()))
        );
    }
    let busy = l.run(remove("east"), 2).unwrap_err();
    assert_eq!(
        busy,
        DomainError::ClusterBusy {
            name: "east".into(),
            active: 2,
            action: "be deleted"
        }
    );
    let msg = busy.to_string();
    assert!(msg.contains("'east'") && msg.contains("2 job(s)"), "{msg}");
    // Moving a cluster (another namespace, another type) strands its drivers: refused while
    // jobs run, allowed once none does.
    let moved = l.run(update("east", kube("elsewhere")), 1).unwrap_err();
    assert!(moved.to_string().contains("type or location"), "{moved}");
    let mut local = ClusterConfig::local();
    local.capacity = kube("spark").capacity;
    assert!(l.run(update("east", local), 1).is_err());
    assert_eq!(l.run(update("east", kube("elsewhere")), 0), Ok(1));
    assert_eq!(l.log.len(), 2, "refusals append nothing");
}

#[test]
fn credentials_and_secrets_never_show_in_debug() {
    let mut c = kube("spark");
    c.spark_conf.insert(
        "spark.kubernetes.driver.secretKeyRef.DB_PASSWORD".into(),
        "db:password".into(),
    );
    for creds in [
        Credentials::TokenFile {
            path: "/secret/path/token".into(),
        },
        Credentials::Kubeconfig {
            path: "/secret/path/kubeconfig".into(),
            context: Some("prod".into()),
        },
        Credentials::ClientCertificate {
            cert: "/secret/path/c.crt".into(),
            key: "/secret/path/c.key".into(),
        },
        Credentials::Keytab {
            principal: "kindling@EXAMPLE".into(),
            keytab: "/secret/path/k.keytab".into(),
        },
    ] {
        c.credentials = creds;
        let mut l = Log::new();
        l.run(register("east", c.clone()), 0).unwrap();
        let shown = format!("{:?} {:?} {:?}", c, l.registry, l.log);
        for hidden in ["/secret/path", "hunter2", "EXAMPLE"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(shown.contains("(<redacted>)"), "{shown}");
        // References to Kubernetes secrets are not secrets: they stay visible.
        assert!(shown.contains("db:password"), "{shown}");
    }
    assert!(is_secret_reference_key(
        "spark.kubernetes.executor.secrets.spark-secret"
    ));
    let shown = redacted_conf(&kube("spark").spark_conf);
    assert_eq!(shown["spark.hadoop.fs.s3a.secret.key"], "<redacted>");
    assert_eq!(shown["spark.executor.instances"], "2");
}

#[test]
fn apply_is_idempotent_and_ignores_other_aggregates() {
    let mut l = Log::new();
    l.run(register("east", kube("spark")), 0).unwrap();
    l.run(register("west", kube("spark")), 0).unwrap();
    l.run(remove("east"), 0).unwrap();
    let mut replayed = Registry::default();
    for env in &l.log {
        assert_eq!(replayed.apply(env), Applied::Yes);
    }
    assert_eq!(replayed, l.registry);
    for env in &l.log {
        assert_eq!(replayed.apply(env), Applied::AlreadyApplied);
    }
    assert_eq!(replayed, l.registry);
    let mut job_event = l.log[0].clone();
    job_event.aggregate = Aggregate::Cluster;
    job_event.position = LogPosition(99);
    job_event.event = Event::SchedulerMarker { nonce: 1 };
    assert_eq!(replayed.apply(&job_event), Applied::AlreadyApplied);
    assert_eq!(replayed, l.registry);
}

#[test]
fn names_are_dns_labels() {
    for ok in ["east", "k8s-prod-1", "a"] {
        assert_eq!(check_name(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", "1 to 63"),
        ("East", "lowercase"),
        ("1east", "start with a lowercase letter"),
        ("east-", "end with"),
        ("ea st", "' '"),
        ("east/1", "'/'"),
    ] {
        let e = check_name(bad).unwrap_err();
        assert!(e.contains(why), "{bad:?}: {e}");
    }
    assert!(check_name(&"a".repeat(64)).is_err());
    assert!(ClusterKind::ALL
        .iter()
        .all(|k| ClusterKind::parse(k.as_str()) == Some(*k)));
}

#[test]
fn queues_are_set_for_a_known_cluster_or_the_built_in_one_and_go_with_it() {
    use kindling_events::{QueueConfig, Queues};
    let queues = Queues {
        queues: [(
            "etl".to_string(),
            QueueConfig {
                weight: 3,
                limits: Capacity::default(),
            },
        )]
        .into(),
        max_drivers_per_user: Some(2),
    };
    let set = |name: &str| RegistryCommand::SetQueues {
        name: name.into(),
        queues: queues.clone(),
    };
    let mut log = Log::new();
    assert_eq!(
        log.run(set("east"), 0),
        Err(DomainError::UnknownCluster("east".into()))
    );
    assert_eq!(log.run(set(DEFAULT_CLUSTER), 0), Ok(1));
    assert_eq!(log.registry.queues(DEFAULT_CLUSTER), queues);
    assert_eq!(
        log.run(set(DEFAULT_CLUSTER), 0),
        Ok(0),
        "the same again decides nothing"
    );
    log.run(register("east", kube("a")), 0).unwrap();
    assert_eq!(log.run(set("east"), 0), Ok(1));
    // An update of the cluster keeps its queues; its removal takes them.
    log.run(update("east", kube("b")), 0).unwrap();
    assert_eq!(log.registry.queues("east"), queues);
    log.run(remove("east"), 0).unwrap();
    assert_eq!(log.registry.queues("east"), Queues::default());
    let clear = RegistryCommand::SetQueues {
        name: DEFAULT_CLUSTER.into(),
        queues: Queues::default(),
    };
    assert_eq!(log.run(clear, 0), Ok(1));
    assert!(log.registry.queues.is_empty());
}
