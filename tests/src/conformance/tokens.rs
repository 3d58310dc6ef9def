//! Conformance cases for the single-use credentials: authorization codes (C1, C4, C6) and
//! refresh tokens (F3, F5, F6), including their atomic transitions under concurrency.

use portcullis_core::crypto::token_hash;
use portcullis_core::store::repo::{auth_requests, codes, refresh, sessions};
use portcullis_core::store::{StoreError, Value};

use super::{
    assert_exactly_one_winner, code_row, race, refresh_row, rotate, setup, uid, Store, NOW, RACERS,
};

/// A code is stored, read back unchanged, and redeemed exactly once.
pub async fn codes_insert_get_redeem_once(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let raw = uid("code");
    let row = code_row(&raw, &uid("grant"), &uid("client"), NOW + 600);
    codes::insert(db, &row).await.unwrap();
    assert_eq!(
        codes::get(db, &row.code_hash).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(
        codes::get(db, &token_hash("no-such-code")).await.unwrap(),
        None
    );

    assert!(codes::redeem(db, &row.code_hash, NOW).await.unwrap());
    assert!(
        !codes::redeem(db, &row.code_hash, NOW + 1).await.unwrap(),
        "a redeemed code must not redeem again"
    );
    let after = codes::get(db, &row.code_hash).await.unwrap().unwrap();
    assert_eq!(after.used_at, Some(NOW));
    assert!(!codes::redeem(db, &token_hash("no-such-code"), NOW)
        .await
        .unwrap());
    // A duplicate code hash is a conflict, not a silent overwrite.
    assert!(matches!(
        codes::insert(db, &row).await,
        Err(StoreError::Conflict(_))
    ));
}

/// C4 at the storage level: a code is redeemable strictly before `expires_at`.
pub async fn codes_expired_not_redeemable(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let live = code_row(&uid("code"), &uid("grant"), "c", NOW + 1);
    let expired = code_row(&uid("code"), &uid("grant"), "c", NOW);
    codes::insert(db, &live).await.unwrap();
    codes::insert(db, &expired).await.unwrap();
    assert!(
        !codes::redeem(db, &expired.code_hash, NOW).await.unwrap(),
        "a code at its expiry instant is not redeemable"
    );
    assert!(!codes::redeem(db, &expired.code_hash, NOW + 100)
        .await
        .unwrap());
    assert_eq!(
        codes::get(db, &expired.code_hash)
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None,
        "a refused redemption leaves the row unchanged"
    );
    assert!(codes::redeem(db, &live.code_hash, NOW).await.unwrap());
}

/// Housekeeping removes only codes that expired before the cut-off.
pub async fn codes_purge_expired(store: Store) {
    let _purges = super::PURGES.lock().await;
    setup(&store).await;
    let db = store.as_ref();
    let old = code_row(&uid("code"), &uid("grant"), "c", NOW - 2000);
    let fresh = code_row(&uid("code"), &uid("grant"), "c", NOW + 600);
    codes::insert(db, &old).await.unwrap();
    codes::insert(db, &fresh).await.unwrap();
    let purged = codes::purge_expired(db, NOW - 1000).await.unwrap();
    assert!(purged >= 1, "the expired code is purged");
    assert_eq!(codes::get(db, &old.code_hash).await.unwrap(), None);
    assert!(codes::get(db, &fresh.code_hash).await.unwrap().is_some());
}

/// C6: only hashes of codes, refresh tokens, session ids and request handles are stored.
/// Reads the raw tables and checks that no raw secret appears anywhere in them.
pub async fn c6_only_hashes_stored(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let raw_code = format!("RAWCODE{}", uid("c6").replace('-', ""));
    let raw_refresh = format!("RAWREFRESH{}", uid("c6").replace('-', ""));
    let raw_session = format!("RAWSESSION{}", uid("c6").replace('-', ""));
    let raw_request = format!("RAWREQUEST{}", uid("c6").replace('-', ""));
    let grant = uid("grant");
    codes::insert(db, &code_row(&raw_code, &grant, "c6-client", NOW + 600))
        .await
        .unwrap();
    refresh::insert(
        db,
        &refresh_row(&raw_refresh, &grant, "c6-client", NOW + 600),
    )
    .await
    .unwrap();
    sessions::insert(
        db,
        &sessions::SessionRow {
            id_hash: token_hash(&raw_session),
            subject: "user-1".into(),
            auth_time: NOW,
            expires_at: NOW + 600,
        },
    )
    .await
    .unwrap();
    auth_requests::insert(
        db,
        &auth_requests::AuthRequestRow {
            id_hash: token_hash(&raw_request),
            request: "{}".into(),
            session_hash: Some(token_hash(&raw_session)),
            expires_at: NOW + 600,
            consumed_at: None,
            created_at: NOW,
        },
    )
    .await
    .unwrap();

    let mut all_text = String::new();
    for table in ["auth_codes", "refresh_tokens", "sessions", "auth_requests"] {
        for row in store
            .query(&format!("SELECT * FROM {table}"), &[])
            .await
            .unwrap()
        {
            for v in row.0 {
                if let Value::Text(s) = v {
                    all_text.push_str(&s);
                    all_text.push('\n');
                }
            }
        }
    }
    for (what, raw) in [
        ("code", &raw_code),
        ("refresh token", &raw_refresh),
        ("session id", &raw_session),
        ("request handle", &raw_request),
    ] {
        assert!(
            !all_text.contains(raw.as_str()),
            "the raw {what} is stored in the clear"
        );
        assert!(
            all_text.contains(&token_hash(raw)),
            "the hash of the {what} is stored (the raw read saw the rows)"
        );
    }
    // The stored form is what the server looks codes up by.
    assert!(codes::redeem(db, &token_hash(&raw_code), NOW)
        .await
        .unwrap());
}

/// C1: 32 concurrent redemptions of one code: exactly one succeeds.
pub async fn c1_concurrent_code_redemption(store: Store) {
    setup(&store).await;
    let row = code_row(&uid("code"), &uid("grant"), "c1-client", NOW + 600);
    codes::insert(store.as_ref(), &row).await.unwrap();
    let results = race(RACERS, |_| {
        let store = store.clone();
        let hash = row.code_hash.clone();
        async move { codes::redeem(store.as_ref(), &hash, NOW).await }
    })
    .await;
    assert_exactly_one_winner("C1 code redemption", &results);
    assert!(!codes::redeem(store.as_ref(), &row.code_hash, NOW)
        .await
        .unwrap());
}

/// A refresh token is stored, read back unchanged and consumed once.
pub async fn refresh_insert_get_consume(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let grant = uid("grant");
    let client = uid("client");
    let row = refresh_row(&uid("rt"), &grant, &client, NOW + 3600);
    refresh::insert(db, &row).await.unwrap();
    assert_eq!(
        refresh::get(db, &row.token_hash).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(refresh::live_in_family(db, &grant, NOW).await.unwrap(), 1);
    assert!(rotate(db, &row, &client, NOW).await.unwrap());
    assert!(
        !rotate(db, &row, &client, NOW).await.unwrap(),
        "a consumed refresh token must not be consumed again"
    );
    assert_eq!(
        refresh::get(db, &row.token_hash)
            .await
            .unwrap()
            .unwrap()
            .consumed_at,
        Some(NOW)
    );
    // Rotation: the successor is the only live member of the family.
    assert_eq!(refresh::live_in_family(db, &grant, NOW).await.unwrap(), 1);
    assert!(refresh::get(db, &token_hash("no-such-token"))
        .await
        .unwrap()
        .is_none());
}

/// F6 at the storage level: an expired refresh token is not consumable and not live.
pub async fn refresh_expired_not_consumable(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let grant = uid("grant");
    let row = refresh_row(&uid("rt"), &grant, "c", NOW);
    refresh::insert(db, &row).await.unwrap();
    assert!(!rotate(db, &row, "c", NOW).await.unwrap());
    assert_eq!(refresh::live_in_family(db, &grant, NOW).await.unwrap(), 0);
    assert_eq!(
        refresh::get(db, &row.token_hash)
            .await
            .unwrap()
            .unwrap()
            .consumed_at,
        None
    );
}

/// F3: 32 concurrent rotations of one refresh token: exactly one consumes it.
pub async fn f3_concurrent_refresh_consume(store: Store) {
    setup(&store).await;
    let grant = uid("grant");
    let row = refresh_row(&uid("rt"), &grant, "f3-client", NOW + 3600);
    refresh::insert(store.as_ref(), &row).await.unwrap();
    let results = race(RACERS, |_| {
        let store = store.clone();
        let row = row.clone();
        async move { rotate(store.as_ref(), &row, "f3-client", NOW).await }
    })
    .await;
    assert_exactly_one_winner("F3 refresh rotation", &results);
    assert_eq!(
        refresh::live_in_family(store.as_ref(), &grant, NOW)
            .await
            .unwrap(),
        1,
        "exactly one successor is stored: the losers store nothing"
    );
}

/// F5: another client presenting the token does not consume it; the owner still can.
pub async fn f5_wrong_client_consume_refused(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let row = refresh_row(&uid("rt"), &uid("grant"), "owner", NOW + 3600);
    refresh::insert(db, &row).await.unwrap();
    assert!(!rotate(db, &row, "intruder", NOW).await.unwrap());
    assert_eq!(
        refresh::get(db, &row.token_hash)
            .await
            .unwrap()
            .unwrap()
            .consumed_at,
        None,
        "a refused consume leaves the token live"
    );
    assert!(rotate(db, &row, "owner", NOW).await.unwrap());
}
