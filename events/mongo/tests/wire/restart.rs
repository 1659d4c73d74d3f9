//! Projections are durable on the server: killed and started again on the same data
//! directory, it hands back the same documents and checkpoint.

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
}
