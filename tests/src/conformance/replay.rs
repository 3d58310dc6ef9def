//! Conformance: single-use identifiers (DPoP proof, client assertion and ID-JAG `jti`s;
//! RFC 9449 §11.1, RFC 7523 §3) are reserved atomically, once, until they expire.

use portcullis_core::store::repo::replay;

use super::{assert_exactly_one_winner, race, setup, uid, Store, NOW, RACERS};

/// A key is reserved once while unexpired, and may be reserved again after expiry.
pub async fn replay_reserved_once_until_expiry(store: Store) {
    setup(&store).await;
    let key = uid("jti");
    let db = store.as_ref();
    assert!(replay::reserve(db, &key, NOW + 60, NOW).await.unwrap());
    assert!(!replay::reserve(db, &key, NOW + 60, NOW + 30).await.unwrap());
    assert!(replay::reserve(db, &key, NOW + 200, NOW + 60)
        .await
        .unwrap());
    assert!(!replay::reserve(db, &key, NOW + 200, NOW + 61)
        .await
        .unwrap());
}

/// 32 concurrent reservations of one key: exactly one wins (D2, A5, X5).
pub async fn replay_concurrent_reservation(store: Store) {
    setup(&store).await;
    let key = uid("jti");
    let results = race(RACERS, |_| {
        let store = store.clone();
        let key = key.clone();
        async move { replay::reserve(store.as_ref(), &key, NOW + 60, NOW).await }
    })
    .await;
    assert_exactly_one_winner("replay reservation", &results);
}
