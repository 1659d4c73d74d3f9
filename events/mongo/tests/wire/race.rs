//! Two projectors applying the same log to the same database at the same time, in batches
//! that do not line up, end with the documents one projector alone makes (the embedded sled
//! adapter is the reference): nothing lost, no history position twice.

use crate::{run_id, snapshot, workload, Nx};
use kindling_store::{ProjectionStore, SledProjections};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_projectors_end_with_identical_documents() {
    let nx = Nx::start().await;
    let db = run_id();
    let events = Arc::new(workload(60, 900));

    let reference = SledProjections::open(&nx.dir.path().join("sled")).expect("open sled");
    reference.apply(&events).await.expect("apply to sled");
    let want = snapshot(&reference).await;

    let a = Arc::new(nx.open(&db).await);
    let b = Arc::new(nx.open(&db).await);
    let run = |store: Arc<kindling_store_mongo::MongoProjections>, size: usize| {
        let events = events.clone();
        tokio::spawn(async move {
            for batch in events.chunks(size) {
                store.apply(batch).await.expect("apply");
            }
        })
    };
    let (ra, rb) = tokio::join!(run(a.clone(), 37), run(b.clone(), 53));
    ra.expect("projector a");
    rb.expect("projector b");

    let got_a = snapshot(a.as_ref()).await;
    let got_b = snapshot(b.as_ref()).await;
    assert_eq!(got_a, got_b);
    assert_eq!(got_a.checkpoint, want.checkpoint);
    assert_eq!(got_a.jobs.len(), want.jobs.len());
    for (got, want) in got_a.jobs.iter().zip(&want.jobs) {
        assert_eq!(got, want, "job {}", want.0.id);
    }
    let (session, history, _) = &got_a.jobs[60];
    assert_eq!(session.version as usize, history.len(), "each event once");
}
