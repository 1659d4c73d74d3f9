//! The projection suite: a sample history folded into job, statement and history documents
//! (in one batch, in pieces, again), listings and their filters, durability and a rebuild
//! after `clear`; then the long-history, registry, tokens and leader-fence suites.

use super::*;

pub async fn projection_suite<H: ProjectionHarness>(h: &H) {
    let store = h.open("main").await;
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(0));
    assert_eq!(store.job(JobId(1)).await.unwrap(), None);
    assert_eq!(store.jobs(&JobQuery::default()).await.unwrap().total, 0);

    let history = sample_history();
    store.apply(&history[..5]).await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(5));
    // Overlapping batches: what is already reflected is skipped.
    store.apply(&history[3..]).await.unwrap();
    store.apply(&history).await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(12));

    let batch = store.job(JobId(1)).await.unwrap().unwrap();
    assert_eq!(batch.state, JobState::Success);
    assert_eq!(batch.version, 4, "each event applied exactly once");
    assert_eq!(batch.applied, LogPosition(11));
    assert_eq!(batch.exit_code, Some(0));
    let session = store.job(JobId(2)).await.unwrap().unwrap();
    assert_eq!(session.state, JobState::Busy, "statement 1 is waiting");
    assert_eq!(session.version, 8);
    assert_eq!(
        session.statements,
        [StatementState::Available, StatementState::Waiting]
    );

    let s0 = store
        .statement(JobId(2), StatementId(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s0.state, StatementState::Available);
    assert_eq!(s0.code, "1+1");
    assert!(matches!(s0.output, Some(StatementOutput::Ok { .. })));
    let page = store.statements(JobId(2), 1, 10).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, StatementId(1));
    assert_eq!(page.items[0].state, StatementState::Waiting);

    let h2 = store.history(JobId(2)).await.unwrap();
    assert_eq!(
        h2.iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 3, 5, 6, 7, 8, 9, 10]
    );

    // Filters and paging.
    let all = store
        .jobs(&JobQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (all.total, all.items.len(), all.items[0].id),
        (2, 1, JobId(1))
    );
    let second = store
        .jobs(&JobQuery {
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(second.items[0].id, JobId(2));
    let sessions = store
        .jobs(&JobQuery {
            kind: Some(KindFilter::Session),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        sessions.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    let done = store
        .jobs(&JobQuery {
            state: Some(JobState::Success),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        done.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(1)]
    );
    let bobs = store
        .jobs(&JobQuery {
            owner: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        bobs.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    let newest = store
        .jobs(&JobQuery {
            newest_first: true,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((newest.total, newest.items[0].id), (2, JobId(2)));
    // By name (a part of it, any case) and by cluster.
    for (name, cluster, expected) in [
        (Some("PI"), None, vec![JobId(1)]),
        (Some("nope"), None, vec![]),
        (None, Some("local"), vec![JobId(1), JobId(2)]),
        (Some("p"), Some("local"), vec![JobId(1)]),
        (None, Some("east"), vec![]),
    ] {
        let found = store
            .jobs(&JobQuery {
                name: name.map(str::to_string),
                cluster: cluster.map(str::to_string),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = found.items.iter().map(|j| j.id).collect();
        assert_eq!(
            (ids, found.total),
            (expected.iter().take(1).copied().collect(), expected.len()),
            "{name:?} {cluster:?}"
        );
    }
    // A caller who may view only its own jobs sees those it owns and those that run as it.
    for (user, expected) in [
        ("ann", vec![JobId(1)]),
        ("bob", vec![JobId(2)]),
        ("alice", vec![JobId(2)]),
        ("eve", vec![]),
    ] {
        let mine = store
            .jobs(&JobQuery {
                visible_to: Some(user.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = mine.items.iter().map(|j| j.id).collect();
        assert_eq!(
            (ids, mine.total),
            (expected.clone(), expected.len()),
            "{user}"
        );
    }

    // Fencing: a scheduler event from an older term than one applied changes nothing.
    let fenced = Envelope::new(
        LogPosition(12),
        new_event(
            2,
            9,
            sched(0),
            Event::JobFinished {
                attempt: Attempt(1),
                outcome: Outcome::Failed {
                    reason: "deposed leader".into(),
                },
                exit_code: Some(1),
            },
        ),
    );
    // Deletion hides a job from Livy's lists but not from the native API.
    let deleted = Envelope::new(
        LogPosition(13),
        new_event(1, 5, Origin::Api, Event::JobDeleted),
    );
    store.apply(&[fenced, deleted]).await.unwrap();
    let session = store.job(JobId(2)).await.unwrap().unwrap();
    assert_eq!(session.state, JobState::Busy, "fenced event ignored");
    assert_eq!(session.version, 8);
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(14));
    let visible = store.jobs(&JobQuery::default()).await.unwrap();
    assert_eq!(
        visible.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        [JobId(2)]
    );
    let with_deleted = store
        .jobs(&JobQuery {
            include_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(with_deleted.total, 2);

    // Durable across reopen.
    let before = store.job(JobId(2)).await.unwrap();
    h.close(store).await;
    let store = h.open("main").await;
    assert_eq!(store.job(JobId(2)).await.unwrap(), before);
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(14));

    // Clearing drops everything; a replay rebuilds the same documents.
    store.clear().await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), LogPosition(0));
    assert_eq!(store.job(JobId(2)).await.unwrap(), None);
    assert!(store.history(JobId(2)).await.unwrap().is_empty());
    store.apply(&history).await.unwrap();
    let rebuilt = store.job(JobId(1)).await.unwrap().unwrap();
    assert_eq!(rebuilt, batch);
    assert_eq!(store.history(JobId(2)).await.unwrap(), h2);
    h.close(store).await;
    long_history_suite(h).await;
    registry_suite(h).await;
    tokens_suite(h).await;
    leader_fence_suite(h).await;
}
