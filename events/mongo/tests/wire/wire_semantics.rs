//! What the adapter relies on from the server, and the nx-27017 gaps it stays clear of, each
//! pinned by a test: should the server change, these say which assumption moved.

use crate::{run_id, Nx};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;

fn number(v: Option<&Bson>) -> i64 {
    match v {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

async fn database(nx: &Nx) -> mongodb::Database {
    Client::with_uri_str(nx.server.uri())
        .await
        .expect("client")
        .database(&run_id())
}

/// Relied on: a conditional upsert whose document is already newer fails with a duplicate
/// key (11000) instead of inserting a second document, and an unordered `update` command
/// goes on past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_conditional_upsert_is_a_duplicate_key_and_the_rest_goes_on() {
    let nx = Nx::start().await;
    let db = database(&nx).await;
    let upsert = |id: i64, applied: i64| {
        doc! {
            "q": { "_id": id, "applied": { "$lt": applied } },
            "u": { "$set": { "applied": applied }, "$setOnInsert": { "_id": id } },
            "upsert": true,
        }
    };
    let update = |updates: Vec<Document>| {
        doc! {
            "update": "docs",
            "updates": updates,
            "ordered": false,
            "writeConcern": { "w": "majority", "j": true },
        }
    };
    db.run_command(update(vec![upsert(1, 10)]))
        .await
        .expect("insert");
    let reply = db
        .run_command(update(vec![
            upsert(1, 5),
            upsert(2, 3),
            upsert(1, 10),
            upsert(1, 12),
        ]))
        .await
        .expect("update");
    let codes: Vec<(i32, i32)> = reply
        .get_array("writeErrors")
        .expect("write errors")
        .iter()
        .filter_map(|e| match e {
            Bson::Document(e) => Some((e.get_i32("index").ok()?, e.get_i32("code").ok()?)),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [(0, 11000), (2, 11000)], "{reply}");
    let docs: Vec<Document> = futures::TryStreamExt::try_collect(
        db.collection::<Document>("docs")
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .expect("find"),
    )
    .await
    .expect("read");
    // (Small numbers come back as Int32.)
    let docs: Vec<(i64, i64)> = docs
        .iter()
        .map(|d| (number(d.get("_id")), number(d.get("applied"))))
        .collect();
    assert_eq!(docs, [(1, 12), (2, 3)]);
}

/// Gap: `_id` sorts as text even when it holds numbers (MongoDB sorts numbers as numbers),
/// so job documents carry their id again in a numeric field to sort by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_numeric_ids_sort_as_text() {
    let nx = Nx::start().await;
    let db = database(&nx).await;
    let coll = db.collection::<Document>("docs");
    let docs = [1i64, 2, 10].map(|n| doc! { "_id": n, "id": n });
    coll.insert_many(docs).await.expect("insert");
    let order = |key: &'static str| {
        let coll = coll.clone();
        async move {
            let docs: Vec<Document> = futures::TryStreamExt::try_collect(
                coll.find(doc! {})
                    .sort(doc! { key: 1 })
                    .await
                    .expect("find"),
            )
            .await
            .expect("read");
            docs.iter().map(|d| number(d.get(key))).collect::<Vec<_>>()
        }
    };
    assert_eq!(order("_id").await, [1, 10, 2]);
    assert_eq!(order("id").await, [1, 2, 10]);
}

/// Gap: `replace_one` with upsert ignores the filter's `_id` and inserts under a new one
/// (MongoDB uses the filter's), so the adapter writes with `update` and `$setOnInsert`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_replace_one_upsert_ignores_the_filters_id() {
    let nx = Nx::start().await;
    let db = database(&nx).await;
    let coll = db.collection::<Document>("docs");
    let r = coll
        .replace_one(doc! { "_id": 42i64 }, doc! { "x": 1 })
        .upsert(true)
        .await
        .expect("replace");
    assert_ne!(r.upserted_id, Some(Bson::Int64(42)));
    assert_eq!(
        coll.find_one(doc! { "_id": 42i64 }).await.expect("find"),
        None
    );
}
