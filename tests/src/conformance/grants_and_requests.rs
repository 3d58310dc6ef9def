//! Conformance cases for grants and what hangs off them: grant revocation (C2, F2, V2), access
//! token records (RFC 7009), and pending authorization requests (H5, R7).

use portcullis_core::crypto::token_hash;
use portcullis_core::store::repo::{access, auth_requests, grants, refresh};

use super::{
    assert_exactly_one_winner, grant_row, race, refresh_row, rotate, setup, uid, Store, NOW, RACERS,
};

/// Revoking a grant consumes its refresh family and revokes its access tokens (C2, F2, V2),
/// and touches nothing outside the grant.
pub async fn grants_revoke_ends_family(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let client = uid("client");
    let g = grant_row(&uid("grant"), &client);
    let other = grant_row(&uid("grant"), &client);
    grants::insert(db, &g).await.unwrap();
    grants::insert(db, &other).await.unwrap();
    assert_eq!(grants::get(db, &g.id).await.unwrap(), Some(g.clone()));
    assert_eq!(grants::get(db, "no-such-grant").await.unwrap(), None);

    let used = refresh_row(&uid("rt"), &g.id, &client, NOW + 3600);
    let live = refresh_row(&uid("rt"), &g.id, &client, NOW + 3600);
    let outside = refresh_row(&uid("rt"), &other.id, &client, NOW + 3600);
    for r in [&used, &live, &outside] {
        refresh::insert(db, r).await.unwrap();
    }
    assert!(rotate(db, &used, &client, NOW).await.unwrap());
    let (jti1, jti2, jti_out) = (uid("jti"), uid("jti"), uid("jti"));
    access::insert(db, &jti1, Some(&g.id), &client, NOW + 900, None)
        .await
        .unwrap();
    access::insert(db, &jti2, Some(&g.id), &client, NOW + 900, None)
        .await
        .unwrap();
    access::insert(db, &jti_out, Some(&other.id), &client, NOW + 900, None)
        .await
        .unwrap();

    grants::revoke(db, &g.id, NOW + 10).await.unwrap();
    assert_eq!(
        grants::get(db, &g.id).await.unwrap().unwrap().revoked_at,
        Some(NOW + 10)
    );
    assert_eq!(
        refresh::live_in_family(db, &g.id, NOW + 10).await.unwrap(),
        0
    );
    assert!(!rotate(db, &live, &client, NOW + 11).await.unwrap());
    assert_eq!(
        refresh::get(db, &used.token_hash)
            .await
            .unwrap()
            .unwrap()
            .consumed_at,
        Some(NOW),
        "an already consumed token keeps its consumption time"
    );
    assert!(access::is_revoked(db, &jti1).await.unwrap());
    assert!(access::is_revoked(db, &jti2).await.unwrap());

    // Idempotent, and the first revocation time stands.
    grants::revoke(db, &g.id, NOW + 20).await.unwrap();
    assert_eq!(
        grants::get(db, &g.id).await.unwrap().unwrap().revoked_at,
        Some(NOW + 10)
    );
    // Nothing outside the grant changed.
    assert_eq!(
        grants::get(db, &other.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    assert_eq!(
        refresh::live_in_family(db, &other.id, NOW).await.unwrap(),
        1
    );
    assert!(!access::is_revoked(db, &jti_out).await.unwrap());
}

/// Access token records: direct revocation, revocation without a prior row
/// (client_credentials tokens), idempotence and the grant link.
pub async fn access_revoke_and_is_revoked(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let grant = grant_row(&uid("grant"), "c");
    grants::insert(db, &grant).await.unwrap();
    let jti = uid("jti");
    access::insert(db, &jti, Some(&grant.id), "c", NOW + 900, None)
        .await
        .unwrap();
    assert!(!access::is_revoked(db, &jti).await.unwrap());
    assert_eq!(
        access::grant_of(db, &jti).await.unwrap(),
        Some(grant.id.clone())
    );
    access::revoke(db, &jti, "c", NOW + 900, NOW).await.unwrap();
    assert!(access::is_revoked(db, &jti).await.unwrap());
    access::revoke(db, &jti, "c", NOW + 900, NOW + 1)
        .await
        .unwrap();
    assert!(access::is_revoked(db, &jti).await.unwrap());
    assert!(
        grants::get(db, &grant.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "revoking one access token leaves its grant alone"
    );

    // A token that was never recorded (client_credentials) can still be revoked.
    let cc = uid("jti");
    assert!(!access::is_revoked(db, &cc).await.unwrap());
    assert_eq!(access::grant_of(db, &cc).await.unwrap(), None);
    access::revoke(db, &cc, "machine", NOW + 3600, NOW)
        .await
        .unwrap();
    assert!(access::is_revoked(db, &cc).await.unwrap());
    access::revoke(db, &cc, "machine", NOW + 3600, NOW + 5)
        .await
        .unwrap();
    assert!(access::is_revoked(db, &cc).await.unwrap());
    assert_eq!(access::grant_of(db, &cc).await.unwrap(), None);
    assert!(!access::is_revoked(db, &uid("jti")).await.unwrap());
}

/// Pending authorization requests: bound to the first session that logs in, consumed once,
/// and only by that session (H5, R7).
pub async fn auth_requests_bind_and_consume(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let req = auth_requests::AuthRequestRow {
        id_hash: token_hash(&uid("req")),
        request: r#"{"client_id":"c"}"#.into(),
        session_hash: None,
        expires_at: NOW + 600,
        consumed_at: None,
        created_at: NOW,
    };
    auth_requests::insert(db, &req).await.unwrap();
    assert_eq!(
        auth_requests::get_live(db, &req.id_hash, NOW)
            .await
            .unwrap(),
        Some(req.clone())
    );
    let (s1, s2) = (token_hash(&uid("s")), token_hash(&uid("s")));
    assert!(
        !auth_requests::consume(db, &req.id_hash, &s1, NOW)
            .await
            .unwrap(),
        "an unbound request cannot be consumed"
    );
    assert!(auth_requests::bind_session(db, &req.id_hash, &s1)
        .await
        .unwrap());
    assert!(
        auth_requests::bind_session(db, &req.id_hash, &s1)
            .await
            .unwrap(),
        "binding again to the same session is allowed"
    );
    assert!(
        !auth_requests::bind_session(db, &req.id_hash, &s2)
            .await
            .unwrap(),
        "a request bound to one session cannot be rebound to another"
    );
    assert_eq!(
        auth_requests::get_live(db, &req.id_hash, NOW)
            .await
            .unwrap()
            .unwrap()
            .session_hash,
        Some(s1.clone())
    );
    assert!(!auth_requests::consume(db, &req.id_hash, &s2, NOW)
        .await
        .unwrap());
    assert!(auth_requests::consume(db, &req.id_hash, &s1, NOW)
        .await
        .unwrap());
    assert!(
        !auth_requests::consume(db, &req.id_hash, &s1, NOW)
            .await
            .unwrap(),
        "a consumed request cannot be consumed again"
    );
    assert_eq!(
        auth_requests::get_live(db, &req.id_hash, NOW)
            .await
            .unwrap(),
        None
    );
    assert!(
        !auth_requests::bind_session(db, &req.id_hash, &s1)
            .await
            .unwrap(),
        "a consumed request cannot be bound"
    );

    // Expiry: not live and not consumable at or after `expires_at`.
    let short = auth_requests::AuthRequestRow {
        id_hash: token_hash(&uid("req")),
        session_hash: Some(s1.clone()),
        expires_at: NOW + 10,
        ..req.clone()
    };
    auth_requests::insert(db, &short).await.unwrap();
    assert!(auth_requests::get_live(db, &short.id_hash, NOW + 9)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        auth_requests::get_live(db, &short.id_hash, NOW + 10)
            .await
            .unwrap(),
        None
    );
    assert!(!auth_requests::consume(db, &short.id_hash, &s1, NOW + 10)
        .await
        .unwrap());
}

/// H5: 32 concurrent consent decisions on one request: exactly one wins.
pub async fn h5_auth_request_consumed_once_concurrently(store: Store) {
    setup(&store).await;
    let session = token_hash(&uid("s"));
    let req = auth_requests::AuthRequestRow {
        id_hash: token_hash(&uid("req")),
        request: "{}".into(),
        session_hash: Some(session.clone()),
        expires_at: NOW + 600,
        consumed_at: None,
        created_at: NOW,
    };
    auth_requests::insert(store.as_ref(), &req).await.unwrap();
    let results = race(RACERS, |_| {
        let store = store.clone();
        let (id, session) = (req.id_hash.clone(), session.clone());
        async move { auth_requests::consume(store.as_ref(), &id, &session, NOW).await }
    })
    .await;
    assert_exactly_one_winner("H5 consent decision", &results);
}
