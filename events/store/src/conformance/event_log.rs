//! The event log suite: appends, reads from a position, ordering, durability across a
//! reopen, and the leader's conditional appends.

use super::*;

pub async fn event_log_suite<H: LogHarness>(h: &H) {
    empty_log(h).await;
    append_and_read(h).await;
    appends_survive_reopen(h).await;
    concurrent_appends_are_contiguous(h).await;
    followers_see_the_tail(h).await;
}

async fn empty_log<H: LogHarness>(h: &H) {
    let log = h.open("empty").await;
    assert_eq!(log.end(), LogPosition(0));
    assert!(log.read(LogPosition(0), 10).await.unwrap().is_empty());
    assert!(log.append(vec![]).await.unwrap().is_empty());
    assert_eq!(log.end(), LogPosition(0));
    h.close(log).await;
}

async fn append_and_read<H: LogHarness>(h: &H) {
    let log = h.open("append").await;
    let input = three_events();
    let out = log.append(input.clone()).await.unwrap();
    assert_eq!(
        out.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for (env, e) in out.iter().zip(&input) {
        assert_eq!(env, &Envelope::new(env.position, e.clone()));
    }
    assert_eq!(log.end(), LogPosition(3));
    assert_eq!(log.read(LogPosition(0), 10).await.unwrap(), out);
    assert_eq!(log.read(LogPosition(1), 1).await.unwrap(), out[1..2]);
    assert!(log.read(LogPosition(3), 10).await.unwrap().is_empty());
    let more = log.append(three_events()).await.unwrap();
    assert_eq!(more[0].position, LogPosition(3));
    h.close(log).await;
}

async fn appends_survive_reopen<H: LogHarness>(h: &H) {
    let log = h.open("reopen").await;
    let written = log.append(three_events()).await.unwrap();
    h.close(log).await;
    let log = h.open("reopen").await;
    assert_eq!(
        log.end(),
        LogPosition(3),
        "acknowledged appends are durable"
    );
    assert_eq!(log.read(LogPosition(0), 100).await.unwrap(), written);
    let next = log.append(three_events()).await.unwrap();
    assert_eq!(
        next[0].position,
        LogPosition(3),
        "positions continue after reopen"
    );
    h.close(log).await;
}

async fn concurrent_appends_are_contiguous<H: LogHarness>(h: &H) {
    let log = Arc::new(h.open("concurrent").await);
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut positions = Vec::new();
            for i in 0..20u64 {
                let pair = vec![
                    new_event(t, 2 * i + 1, Origin::Api, Event::SessionActivity),
                    new_event(t, 2 * i + 2, Origin::Api, Event::SessionActivity),
                ];
                let out = log.append(pair).await.unwrap();
                assert_eq!(
                    out[1].position.0,
                    out[0].position.0 + 1,
                    "a batch is contiguous"
                );
                positions.extend(out.iter().map(|e| e.position.0));
            }
            positions
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        for p in t.await.unwrap() {
            assert!(all.insert(p), "position {p} handed out twice");
        }
    }
    assert_eq!(all.len(), 32 * 40);
    assert_eq!(*all.iter().next_back().unwrap(), 32 * 40 - 1);
    assert_eq!(log.end(), LogPosition(32 * 40));
    let read = log.read(LogPosition(0), 10_000).await.unwrap();
    for job in 0..32u64 {
        let versions: Vec<u64> = read
            .iter()
            .filter(|e| e.aggregate == Aggregate::Job(JobId(job)))
            .map(|e| e.version)
            .collect();
        assert_eq!(
            versions,
            (1..=40).collect::<Vec<_>>(),
            "per-writer order kept"
        );
    }
    let log = Arc::into_inner(log).expect("all tasks finished");
    h.close(log).await;
}

async fn followers_see_the_tail<H: LogHarness>(h: &H) {
    let log = Arc::new(h.open("follow").await);
    let follower = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut end = log.subscribe();
            let mut next = LogPosition(0);
            let mut seen = Vec::new();
            while seen.len() < 30 {
                let batch = log.read(next, 7).await.unwrap();
                if batch.is_empty() {
                    end.changed().await.unwrap();
                    continue;
                }
                next = batch.last().unwrap().position.next();
                seen.extend(batch.into_iter().map(|e| e.position.0));
            }
            seen
        })
    };
    for _ in 0..10 {
        log.append(three_events()).await.unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), follower)
        .await
        .expect("follower saw every event")
        .unwrap();
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    let log = Arc::into_inner(log).unwrap();
    h.close(log).await;
}
