//! The registry suite: the projection of the cluster registry's events, replayed and read
//! back as the catalog of clusters.

use super::*;

fn registry_event(position: u64, version: u64, event: Event) -> Envelope {
    Envelope::new(
        LogPosition(position),
        NewEvent {
            aggregate: Aggregate::Registry,
            version,
            origin: Origin::Api,
            node: NodeId(1),
            actor: None,
            at_ms: 1_700_000_000_000 + position as i64,
            event,
        },
    )
}

fn cluster(namespace: &str, max_drivers: u32) -> ClusterConfig {
    ClusterConfig {
        kind: ClusterKind::Kubernetes,
        connection: [
            ("apiServer".to_string(), "https://k8s:6443".to_string()),
            ("namespace".to_string(), namespace.to_string()),
        ]
        .into(),
        credentials: Credentials::TokenFile {
            path: "/etc/kindling/token".into(),
        },
        // Keys Spark uses hold dots; they must survive any store's field-name rules.
        spark_conf: [("spark.executor.instances".to_string(), "2".to_string())].into(),
        capacity: Capacity {
            max_drivers: Some(max_drivers),
            max_driver_cores: None,
            // Above what a signed 32-bit field holds.
            max_driver_memory_mb: Some(u64::from(u32::MAX) + 1),
        },
    }
}

/// The cluster registry document: registry events interleaved with job events fold into it
/// exactly once, in log order, durably, and a replay after `clear` rebuilds it.
pub async fn registry_suite<H: ProjectionHarness>(h: &H) {
    let store = h.open("registry").await;
    assert_eq!(store.registry().await.unwrap(), Registry::default());
    let job = |position: u64| {
        Envelope::new(
            LogPosition(position),
            new_event(
                position,
                1,
                Origin::Api,
                Event::JobSubmitted {
                    spec: batch_spec(None),
                },
            ),
        )
    };
    let log = vec![
        registry_event(
            0,
            1,
            Event::ClusterRegistered {
                name: "east".into(),
                config: cluster("a", 1),
            },
        ),
        job(1),
        registry_event(
            2,
            2,
            Event::ClusterRegistered {
                name: "west".into(),
                config: cluster("b", 2),
            },
        ),
        registry_event(
            3,
            3,
            Event::ClusterUpdated {
                name: "east".into(),
                config: cluster("a", 5),
            },
        ),
        job(4),
        registry_event(
            5,
            4,
            Event::ClusterRemoved {
                name: "west".into(),
            },
        ),
    ];
    store.apply(&log[..3]).await.unwrap();
    let partial = store.registry().await.unwrap();
    assert_eq!(partial.version, 2);
    assert_eq!(
        partial.clusters.keys().collect::<Vec<_>>(),
        ["east", "west"]
    );
    // Overlapping and repeated batches apply each event once.
    store.apply(&log[1..]).await.unwrap();
    store.apply(&log).await.unwrap();
    let registry = store.registry().await.unwrap();
    assert_eq!(registry.version, 4);
    assert_eq!(registry.applied, LogPosition(5));
    assert_eq!(registry.clusters.keys().collect::<Vec<_>>(), ["east"]);
    let east = &registry.clusters["east"];
    assert_eq!(east.config, cluster("a", 5));
    assert_eq!(east.revision, LogPosition(3));
    assert_eq!(east.registered_at_ms, 1_700_000_000_000);
    assert!(
        store.job(JobId(4)).await.unwrap().is_some(),
        "jobs alongside"
    );
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(6));

    h.close(store).await;
    let store = h.open("registry").await;
    assert_eq!(store.registry().await.unwrap(), registry, "durable");
    store.clear().await.unwrap();
    assert_eq!(store.registry().await.unwrap(), Registry::default());
    store.apply(&log).await.unwrap();
    assert_eq!(
        store.registry().await.unwrap(),
        registry,
        "rebuilt by replay"
    );
    h.close(store).await;
}
