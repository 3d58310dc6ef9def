//! The token vault's queries on every backend: a connection's refresh is claimed by exactly
//! one of 32 racing vends (the single-flight claim must hold on D1 and Spin SQLite as on
//! SQLite and PostgreSQL), only the claim holder's refresh is written, a provider's refresh
//! token survives an answer without one, and a pending connect is consumed once.

use portcullis_core::store::repo::connections::{self, ConnectRequest, ConnectionRow};

use super::{assert_exactly_one_winner, race, setup, uid, Store, NOW, RACERS};

fn connection(owner: &str) -> ConnectionRow {
    ConnectionRow {
        id: uid("conn"),
        owner: owner.into(),
        provider: "github".into(),
        state: "active".into(),
        scope: "repo".into(),
        access_token: "v1.sealed-access".into(),
        refresh_token: Some("v1.sealed-refresh".into()),
        expires_at: Some(NOW - 1),
        claimed_until: 0,
        version: 1,
        created_at: NOW - 100,
        updated_at: NOW - 100,
    }
}

/// 32 vends race for the refresh of one expired connection: one claim wins, the others lose
/// without a storage error; a loser's write is refused, the winner's is kept, and a refresh
/// answer without a refresh token keeps the stored one.
pub async fn vault_refresh_claimed_once(store: Store) {
    setup(&store).await;
    let owner = uid("owner");
    connections::connect(store.as_ref(), &connection(&owner))
        .await
        .unwrap();
    let row = connections::get(store.as_ref(), &owner, "github")
        .await
        .unwrap()
        .unwrap();
    let results = race(RACERS, |_| {
        let store = store.clone();
        let (id, version) = (row.id.clone(), row.version);
        async move { connections::claim_refresh(store.as_ref(), &id, version, NOW, NOW + 30).await }
    })
    .await;
    assert_exactly_one_winner("refresh claim", &results);
    let claimed = connections::get(store.as_ref(), &owner, "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.claimed_until, NOW + 30);
    // A lapsed claim may be taken again only at the same version.
    assert!(
        !connections::claim_refresh(store.as_ref(), &row.id, row.version, NOW + 10, NOW + 40)
            .await
            .unwrap()
    );

    let stored = connections::store_refreshed(
        store.as_ref(),
        &row.id,
        row.version,
        "v1.new-access",
        None,
        Some(NOW + 3600),
        "repo",
        NOW,
    )
    .await
    .unwrap();
    assert!(stored);
    let after = connections::get(store.as_ref(), &owner, "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, row.version + 1);
    assert_eq!(after.access_token, "v1.new-access");
    assert_eq!(
        after.refresh_token.as_deref(),
        Some("v1.sealed-refresh"),
        "kept without a new one"
    );
    assert_eq!(after.claimed_until, 0);
    // A stale writer (old version) changes nothing.
    let stale = connections::store_refreshed(
        store.as_ref(),
        &row.id,
        row.version,
        "v1.stale",
        Some("v1.stale-rt"),
        None,
        "x",
        NOW,
    )
    .await
    .unwrap();
    assert!(!stale);
    assert_eq!(
        connections::by_id(store.as_ref(), &row.id)
            .await
            .unwrap()
            .unwrap()
            .access_token,
        "v1.new-access"
    );

    assert!(
        connections::needs_reauthorization(store.as_ref(), &row.id, after.version, NOW)
            .await
            .unwrap()
    );
    let dead = connections::get(store.as_ref(), &owner, "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (dead.state.as_str(), dead.refresh_token.as_deref()),
        ("needs_reauthorization", None)
    );
    assert!(
        !connections::claim_refresh(store.as_ref(), &row.id, dead.version, NOW, NOW + 30)
            .await
            .unwrap()
    );
    // A new connect revives the same connection.
    connections::connect(store.as_ref(), &connection(&owner))
        .await
        .unwrap();
    let revived = connections::get(store.as_ref(), &owner, "github")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (revived.id.as_str(), revived.state.as_str()),
        (row.id.as_str(), "active")
    );
    assert!(connections::revoke(store.as_ref(), &row.id, NOW)
        .await
        .unwrap());
    assert!(!connections::revoke(store.as_ref(), &row.id, NOW)
        .await
        .unwrap());
}

/// A pending connect is consumed once, however many callbacks race, and never after it lapsed.
pub async fn vault_connect_consumed_once(store: Store) {
    setup(&store).await;
    let hash = uid("state");
    let req = ConnectRequest {
        state_hash: hash.clone(),
        owner: "alice".into(),
        provider: "github".into(),
        verifier: "verifier".into(),
        expires_at: NOW + 600,
    };
    connections::start_connect(store.as_ref(), &req)
        .await
        .unwrap();
    let results = race(RACERS, |_| {
        let store = store.clone();
        let hash = hash.clone();
        async move {
            connections::consume_connect(store.as_ref(), &hash, NOW)
                .await
                .map(|r| r.is_some())
        }
    })
    .await;
    assert_exactly_one_winner("connect consumption", &results);
    let lapsed = ConnectRequest {
        state_hash: uid("state"),
        expires_at: NOW - 1,
        ..req
    };
    connections::start_connect(store.as_ref(), &lapsed)
        .await
        .unwrap();
    assert!(
        connections::consume_connect(store.as_ref(), &lapsed.state_hash, NOW)
            .await
            .unwrap()
            .is_none()
    );
}
