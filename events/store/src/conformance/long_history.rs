//! The long-history suite: a job whose history outgrows the projection document's inline
//! positions, read back whole and in order.

use super::*;

/// A job with many events (a long session): its history stays complete and ordered however
/// the events arrive in batches, and a replay adds nothing.
pub async fn long_history_suite<H: ProjectionHarness>(h: &H) {
    let store = h.open("long").await;
    let mut envs = vec![Envelope::new(
        LogPosition(0),
        new_event(
            1,
            1,
            Origin::Api,
            Event::JobSubmitted {
                spec: session_spec(None),
            },
        ),
    )];
    for i in 1..1500u64 {
        envs.push(Envelope::new(
            LogPosition(2 * i),
            new_event(1, i + 1, Origin::Api, Event::SessionActivity),
        ));
    }
    for chunk in envs.chunks(97) {
        store.apply(chunk).await.unwrap();
    }
    let want: Vec<LogPosition> = envs.iter().map(|e| e.position).collect();
    assert_eq!(store.history(JobId(1)).await.unwrap(), want);
    store.apply(&envs).await.unwrap();
    assert_eq!(
        store.history(JobId(1)).await.unwrap(),
        want,
        "replay adds nothing"
    );
    assert_eq!(store.job(JobId(1)).await.unwrap().unwrap().version, 1500);
    h.close(store).await;
}
