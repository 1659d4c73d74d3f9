//! The routes against the real broker (tansu, `ops/dev/install-kafka`).

use super::*;
use prost::Message as _;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use std::time::Instant;

use kindling_testkit::services;

fn cfg(brokers: String) -> RouteConfig {
    RouteConfig {
        brokers,
        prefix: "kindling.test".into(),
        replication: 1,
        client_id: "test".into(),
    }
}

/// The next `n` replies the route reads, within a deadline.
async fn next(replies: &mut mpsc::Receiver<Reply>, n: usize) -> Vec<(i64, u64)> {
    let mut out = vec![];
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(20), replies.recv())
            .await
            .expect("a reply within 20 s")
            .expect("the route is followed");
        let m = pb::DriverMessage::decode(r.payload.as_slice()).unwrap();
        let Some(pb::driver_message::Body::Heartbeat(h)) = m.body else {
            panic!("not a heartbeat: {m:?}")
        };
        assert_eq!(r.key.as_deref(), Some(&b"1"[..]));
        out.push((r.offset, h.seq));
    }
    out
}

fn follow(routes: &KafkaRoutes, topic: &str) -> mpsc::Receiver<Reply> {
    follow_hearing(routes, topic, Arc::new(|| {}))
}

fn follow_hearing(routes: &KafkaRoutes, topic: &str, heard: Heard) -> mpsc::Receiver<Reply> {
    let mut followed = routes.followed.lock();
    routes
        .read(&mut followed, topic, JobId(3), Attempt(1), heard)
        .unwrap()
        .0
}

/// Writes a heartbeat of attempt `key` to the replies topic, as a driver does.
async fn send_heartbeat(driver: &FutureProducer, topic: &str, key: &str, seq: u64) {
    let m = pb::DriverMessage {
        body: Some(pb::driver_message::Body::Heartbeat(pb::Heartbeat { seq })),
    };
    let payload = m.encode_to_vec();
    let record = FutureRecord::to(topic)
        .partition(0)
        .key(key)
        .payload(&payload);
    driver.send(record, REQUEST_TIMEOUT).await.unwrap();
}

/// Waits until the group's committed position of `topic` is `next`.
async fn committed(routes: &KafkaRoutes, topic: &str, next: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, 0);
        let consumer = routes.consumer.clone();
        let got = tokio::task::spawn_blocking(move || {
            consumer.committed_offsets(tpl, Duration::from_secs(5))
        })
        .await
        .unwrap()
        .unwrap();
        let at = got.find_partition(topic, 0).map(|p| p.offset());
        if at == Some(Offset::Offset(next)) {
            return;
        }
        assert!(Instant::now() < deadline, "committed {at:?}, not {next}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The routes of one node on a fresh tansu, job 3's topic pair created, and a producer
/// writing replies as a driver does. Keep the broker: dropping it stops it.
struct OnTansu {
    _kafka: services::Local,
    cfg: RouteConfig,
    shutdown: CancellationToken,
    routes: Arc<KafkaRoutes>,
    route: KafkaRoute,
    driver: FutureProducer,
}

async fn on_tansu() -> OnTansu {
    let kafka = services::local_kafka();
    let cfg = cfg(kafka.addr.to_string());
    let shutdown = CancellationToken::new();
    let routes = KafkaRoutes::start(cfg.clone(), shutdown.clone()).unwrap();
    let route = cfg.route(JobId(3));
    routes.create(&route).await.unwrap();
    let driver = cfg.producer().create().unwrap();
    OnTansu {
        _kafka: kafka,
        cfg,
        shutdown,
        routes,
        route,
        driver,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_reader_resumes_after_the_last_committed_reply_on_the_real_broker() {
    let OnTansu {
        _kafka,
        cfg,
        shutdown,
        routes: first,
        route,
        driver,
    } = on_tansu().await;
    // Creating an existing pair is no error (a re-issued launch does it).
    first.create(&route).await.unwrap();
    let reply = |seq: u64| send_heartbeat(&driver, &route.replies, "1", seq);
    for seq in 0..4 {
        reply(seq).await;
    }
    let mut replies = follow(&first, &route.replies);
    assert_eq!(
        next(&mut replies, 4).await,
        [(0, 0), (1, 1), (2, 2), (3, 3)]
    );
    // The first two were handled durably; the leader dies before handling the rest.
    first.commit(&route.replies, 2);
    committed(&first, &route.replies, 2).await;
    first.stop(JobId(3));
    assert!(
        replies.recv().await.is_none(),
        "a stopped route reads no more"
    );

    let second = KafkaRoutes::start(cfg.clone(), shutdown.clone()).unwrap();
    let mut replies = follow(&second, &route.replies);
    reply(4).await;
    assert_eq!(next(&mut replies, 3).await, [(2, 2), (3, 3), (4, 4)]);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_counts_as_heard_when_read_though_earlier_ones_wait_on_the_real_broker() {
    let OnTansu {
        _kafka,
        shutdown,
        routes,
        route,
        driver,
        ..
    } = on_tansu().await;
    // Attempt 1 is followed; a reply of attempt 2 is some other driver's.
    for (key, seq) in [("1", 0), ("2", 1), ("1", 2), ("1", 3)] {
        send_heartbeat(&driver, &route.replies, key, seq).await;
    }
    let (tx, mut heard) = mpsc::unbounded_channel();
    let mut replies = follow_hearing(
        &routes,
        &route.replies,
        Arc::new(move || {
            let _ = tx.send(());
        }),
    );
    // Nothing takes a reply off the route's inbox (its first one is "being handled"), yet
    // each of the driver's replies is heard as it is read.
    for n in 0..3 {
        tokio::time::timeout(Duration::from_secs(20), heard.recv())
            .await
            .unwrap_or_else(|_| panic!("only {n} of 3 replies heard within 20 s"))
            .expect("the route is followed");
    }
    // Every reply reaches the inbox, in order; the other attempt's was not heard.
    let mut seqs = vec![];
    for _ in 0..4 {
        let r = tokio::time::timeout(Duration::from_secs(20), replies.recv())
            .await
            .expect("a reply within 20 s")
            .expect("the route is followed");
        let m = pb::DriverMessage::decode(r.payload.as_slice()).unwrap();
        let Some(pb::driver_message::Body::Heartbeat(h)) = m.body else {
            panic!("not a heartbeat: {m:?}")
        };
        seqs.push(h.seq);
    }
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert!(
        heard.try_recv().is_err(),
        "another attempt's reply was heard"
    );
    shutdown.cancel();
}
