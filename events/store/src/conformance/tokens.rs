//! The tokens suite: the projection of the API tokens' events, folded once each in log
//! order beside other aggregates, durable, and rebuilt by a replay.

use super::*;
use kindling_events::{IssuedToken, Tokens};

fn token_event(position: u64, version: u64, event: Event) -> Envelope {
    Envelope::new(
        LogPosition(position),
        NewEvent {
            aggregate: Aggregate::Tokens,
            version,
            origin: Origin::ApiDecided { term: Term(1) },
            node: NodeId(1),
            actor: Some("ann".into()),
            at_ms: 1_700_000_000_000 + position as i64,
            event,
        },
    )
}

fn issued(id: &str, user: &str) -> Event {
    Event::TokenIssued {
        token: IssuedToken {
            id: id.into(),
            user: user.into(),
            name: format!("{user}'s {id}"),
            role: "user".into(),
            secret_sha256: "ab".repeat(32),
            // Above what a signed 32-bit field holds.
            expires_at_ms: 1_800_000_000_000,
        },
    }
}

pub async fn tokens_suite<H: ProjectionHarness>(h: &H) {
    let store = h.open("tokens").await;
    assert_eq!(store.tokens().await.unwrap(), Tokens::default());
    let log = vec![
        token_event(0, 1, issued("t1", "ann")),
        token_event(1, 2, issued("t2", "bob")),
        token_event(2, 3, Event::TokenRevoked { id: "t1".into() }),
        token_event(3, 4, issued("t3", "ann")),
    ];
    store.apply(&log[..2]).await.unwrap();
    assert_eq!(
        store
            .tokens()
            .await
            .unwrap()
            .tokens
            .keys()
            .collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    // Overlapping and repeated batches apply each event once.
    store.apply(&log[1..]).await.unwrap();
    store.apply(&log).await.unwrap();
    let tokens = store.tokens().await.unwrap();
    assert_eq!((tokens.version, tokens.applied), (4, LogPosition(3)));
    assert_eq!(tokens.tokens.keys().collect::<Vec<_>>(), ["t2", "t3"]);
    assert_eq!(tokens.get("t3").unwrap().issued_at_ms, 1_700_000_000_003);
    assert_eq!(
        tokens.get("t2").unwrap().issued.expires_at_ms,
        1_800_000_000_000
    );
    assert_eq!(store.registry().await.unwrap(), Registry::default());

    h.close(store).await;
    let store = h.open("tokens").await;
    assert_eq!(store.tokens().await.unwrap(), tokens, "durable");
    store.clear().await.unwrap();
    assert_eq!(store.tokens().await.unwrap(), Tokens::default());
    store.apply(&log).await.unwrap();
    assert_eq!(store.tokens().await.unwrap(), tokens, "rebuilt by replay");
    h.close(store).await;
}
