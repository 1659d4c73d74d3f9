//! Replay throughput, measured on demand (no timing is asserted):
//! `cargo test -p kindling-store-mongo --release --test wire -- --ignored --nocapture replay_throughput`
//! (`KINDLING_BENCH_EVENTS` sets the number of events; 100,000 by default).

use crate::{run_id, workload, Nx};
use kindling_store::{ProjectionStore, REPLAY_BATCH};
use mongodb::bson::{doc, Document};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name"]
async fn replay_throughput() {
    let events: u64 = std::env::var("KINDLING_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let nx = Nx::start().await;
    let db = run_id();
    let store = nx.open(&db).await;
    let log = workload(events / 4, 0);
    let passes = [
        "replay into empty projections",
        "redo after the checkpoint was lost (documents skip every event)",
    ];
    for (pass, what) in passes.iter().enumerate() {
        if pass == 1 {
            // What a crash between the documents and the checkpoint leaves.
            let client = mongodb::Client::with_uri_str(nx.server.uri())
                .await
                .expect("client");
            client
                .database(&db)
                .collection::<Document>("meta")
                .delete_many(doc! {})
                .await
                .expect("drop the checkpoint");
        }
        let started = Instant::now();
        for batch in log.chunks(REPLAY_BATCH) {
            store.apply(batch).await.expect("apply");
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{what}: {} events of {} four-event jobs, batches of {REPLAY_BATCH}, in {secs:.2} s = {:.0} events/s",
            log.len(),
            log.len() / 4,
            log.len() as f64 / secs
        );
        assert_eq!(
            store.checkpoint().await.expect("checkpoint").0,
            log.len() as u64
        );
    }
}
