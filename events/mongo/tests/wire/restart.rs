//! Projections are durable on the server: killed and started again on the same data
//! directory, it hands back the same documents and checkpoint. Projections an older build
//! wrote in another layout are dropped when the store opens, and replayed.

use crate::{run_id, snapshot, workload, Nx};
use kindling_store::ProjectionStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_survive_a_restart_of_the_server() {
    let mut nx = Nx::start().await;
    let db = run_id();
    let events = workload(40, 700);
    let store = nx.open(&db).await;
    for batch in events.chunks(101) {
        store.apply(batch).await.expect("apply");
    }
    let before = snapshot(&store).await;
    assert_eq!(before.checkpoint.0, events.len() as u64);
    assert_eq!(before.jobs.len(), 41);
    let (session, history, statements) = &before.jobs[40];
    assert!(
        history.len() > 2 * 256,
        "the session's history spans chunks"
    );
    assert_eq!(session.version as usize, history.len());
    assert_eq!(statements.len(), 70);
    drop(store);

    nx.server.restart().await;
    let store = nx.open(&db).await;
    assert_eq!(snapshot(&store).await, before);
    // And the store goes on from its checkpoint: a replay changes nothing.
    store.apply(&events).await.expect("replay");
    assert_eq!(snapshot(&store).await, before);
    drop(store);

    // As an older build left it: its checkpoint says layout 1.
    let client = mongodb::Client::with_uri_str(nx.server.uri())
        .await
        .unwrap();
    let meta = client
        .database(&db)
        .collection::<mongodb::bson::Document>("meta");
    let changed = meta
        .update_one(
            mongodb::bson::doc! {"_id": "checkpoint"},
            mongodb::bson::doc! {"$set": {"format": 1}},
        )
        .await
        .unwrap();
    assert_eq!(changed.modified_count, 1);
    let store = nx.open(&db).await;
    assert_eq!(
        store.checkpoint().await.unwrap().0,
        0,
        "dropped for a replay"
    );
    assert_eq!(store.job(session.id).await.unwrap(), None);
    for batch in events.chunks(101) {
        store.apply(batch).await.expect("apply");
    }
    assert_eq!(snapshot(&store).await, before);
}
