//! The storage conformance suite (DESIGN.md rule 5, in the style of object_store's shared
//! integration tests): every [`SqlStore`] backend (SQLite via sqlx, PostgreSQL, D1, Spin
//! SQLite) runs these cases against a real database, through the core's migrations and every
//! query in `core/src/store/repo`, including the atomic transitions under concurrency
//! (SECURITY-CHECKLIST C1, C6, F3, F5, H5).
//!
//! Each case is a `pub async fn(Store)` that panics on failure, so a host runs each as its
//! own test; [`run_all`] runs them in sequence on one store. Cases use unique ids so they can
//! share a database; the concurrency cases must run on a multi-threaded runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use portcullis_core::clients::ClientMetadata;
use portcullis_core::crypto::token_hash;
use portcullis_core::store::migrations::{self, MIGRATIONS};
use portcullis_core::store::repo::{
    access, audit, auth_requests, clients, codes, grants, keys, refresh, resources, sessions, users,
};
use portcullis_core::store::{SqlStore, StoreError, Value};

/// A backend under test.
pub type Store = Arc<dyn SqlStore>;

/// The fixed "now" of the suite (seconds); repo functions take time as a parameter.
pub const NOW: i64 = 1_700_000_000;

/// How many tasks race in the concurrency cases.
pub const RACERS: usize = 32;

/// Every case, by name, for hosts that run them in a loop.
pub async fn run_all(store: Store) {
    migrations_idempotent(store.clone()).await;
    codes_insert_get_redeem_once(store.clone()).await;
    codes_expired_not_redeemable(store.clone()).await;
    codes_purge_expired(store.clone()).await;
    c6_only_hashes_stored(store.clone()).await;
    c1_concurrent_code_redemption(store.clone()).await;
    refresh_insert_get_consume(store.clone()).await;
    refresh_expired_not_consumable(store.clone()).await;
    f3_concurrent_refresh_consume(store.clone()).await;
    f5_wrong_client_consume_refused(store.clone()).await;
    grants_revoke_ends_family(store.clone()).await;
    access_revoke_and_is_revoked(store.clone()).await;
    auth_requests_bind_and_consume(store.clone()).await;
    h5_auth_request_consumed_once_concurrently(store.clone()).await;
    sessions_lifecycle(store.clone()).await;
    clients_crud_and_conflict(store.clone()).await;
    users_crud_and_conflict(store.clone()).await;
    resources_crud(store.clone()).await;
    audit_list_filters_and_paging(store.clone()).await;
    keys_published_and_retire(store).await;
}

/// A unique id for this process: cases never collide, even on a shared database.
pub fn uid(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let h = token_hash(&format!("{nanos}-{}", std::process::id()));
        h[..10].to_owned()
    });
    format!("{tag}-{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Applies the migrations (idempotent), as every case does first.
async fn setup(store: &Store) {
    migrations::migrate(store.as_ref(), NOW)
        .await
        .expect("migrations apply");
}

fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Runs `n` copies of `f` as spawned tasks released together by a barrier and returns
/// every result, so the transitions really race on a multi-threaded runtime.
async fn race<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks = (0..n).map(|i| {
        let barrier = barrier.clone();
        let fut = f(i);
        tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        })
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("racing task panicked"))
        .collect()
}

/// Asserts that exactly one racer won and every other one lost cleanly (no storage error).
fn assert_exactly_one_winner(what: &str, results: &[Result<bool, StoreError>]) {
    let errors: Vec<&StoreError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{what}: {} of {} concurrent calls failed with a storage error: {:?}",
        errors.len(),
        results.len(),
        errors.first()
    );
    let winners = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(
        winners,
        1,
        "{what}: exactly one of {} concurrent calls must succeed",
        results.len()
    );
}

fn code_row(raw_code: &str, grant_id: &str, client_id: &str, expires_at: i64) -> codes::CodeRow {
    codes::CodeRow {
        code_hash: token_hash(raw_code),
        grant_id: grant_id.into(),
        client_id: client_id.into(),
        redirect_uri: "https://client.example/cb".into(),
        subject: "user-1".into(),
        scope: "mcp:tools mcp:read".into(),
        resource: Some("https://mcp.example.com/mcp".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some("S256".into()),
        auth_time: NOW - 5,
        expires_at,
        used_at: None,
        created_at: NOW,
    }
}

fn refresh_row(raw: &str, grant_id: &str, client_id: &str, expires_at: i64) -> refresh::RefreshRow {
    refresh::RefreshRow {
        token_hash: token_hash(raw),
        grant_id: grant_id.into(),
        client_id: client_id.into(),
        subject: "user-1".into(),
        scope: "mcp:tools".into(),
        resource: Some("https://mcp.example.com/mcp".into()),
        expires_at,
        consumed_at: None,
        created_at: NOW,
    }
}

fn grant_row(id: &str, client_id: &str) -> grants::GrantRow {
    grants::GrantRow {
        id: id.into(),
        client_id: client_id.into(),
        subject: "user-1".into(),
        scope: "mcp:tools".into(),
        resource: Some("https://mcp.example.com/mcp".into()),
        created_at: NOW,
        revoked_at: None,
    }
}

/// Migrations run twice leave the schema at the latest version and every table usable.
pub async fn migrations_idempotent(store: Store) {
    let first = migrations::migrate(store.as_ref(), NOW)
        .await
        .expect("first migration run");
    let second = migrations::migrate(store.as_ref(), NOW + 1)
        .await
        .expect("second migration run");
    assert_eq!(first, latest_version());
    assert_eq!(second, latest_version());
    assert_eq!(
        migrations::current_version(store.as_ref()).await.unwrap(),
        latest_version()
    );
    let recorded = store
        .query(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
            &[latest_version().into()],
        )
        .await
        .unwrap();
    assert_eq!(
        recorded[0].int(0).unwrap(),
        1,
        "each version is recorded exactly once"
    );
    for table in [
        "users",
        "resources",
        "clients",
        "grants",
        "auth_codes",
        "refresh_tokens",
        "access_tokens",
        "sessions",
        "auth_requests",
        "signing_keys",
        "audit_events",
    ] {
        store
            .query(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("table {table} is missing after migrations: {e}"));
    }
}

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
    assert!(refresh::consume(db, &row.token_hash, &client, NOW)
        .await
        .unwrap());
    assert!(
        !refresh::consume(db, &row.token_hash, &client, NOW)
            .await
            .unwrap(),
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
    assert_eq!(refresh::live_in_family(db, &grant, NOW).await.unwrap(), 0);
    // Rotation: the successor is the only live member of the family.
    let next = refresh_row(&uid("rt"), &grant, &client, NOW + 3600);
    refresh::insert(db, &next).await.unwrap();
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
    assert!(!refresh::consume(db, &row.token_hash, "c", NOW)
        .await
        .unwrap());
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
        let hash = row.token_hash.clone();
        async move { refresh::consume(store.as_ref(), &hash, "f3-client", NOW).await }
    })
    .await;
    assert_exactly_one_winner("F3 refresh rotation", &results);
    assert_eq!(
        refresh::live_in_family(store.as_ref(), &grant, NOW)
            .await
            .unwrap(),
        0
    );
}

/// F5: another client presenting the token does not consume it; the owner still can.
pub async fn f5_wrong_client_consume_refused(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let row = refresh_row(&uid("rt"), &uid("grant"), "owner", NOW + 3600);
    refresh::insert(db, &row).await.unwrap();
    assert!(!refresh::consume(db, &row.token_hash, "intruder", NOW)
        .await
        .unwrap());
    assert_eq!(
        refresh::get(db, &row.token_hash)
            .await
            .unwrap()
            .unwrap()
            .consumed_at,
        None,
        "a refused consume leaves the token live"
    );
    assert!(refresh::consume(db, &row.token_hash, "owner", NOW)
        .await
        .unwrap());
}

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
    assert!(refresh::consume(db, &used.token_hash, &client, NOW)
        .await
        .unwrap());
    let (jti1, jti2, jti_out) = (uid("jti"), uid("jti"), uid("jti"));
    access::insert(db, &jti1, Some(&g.id), &client, NOW + 900)
        .await
        .unwrap();
    access::insert(db, &jti2, Some(&g.id), &client, NOW + 900)
        .await
        .unwrap();
    access::insert(db, &jti_out, Some(&other.id), &client, NOW + 900)
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
    assert!(!refresh::consume(db, &live.token_hash, &client, NOW + 11)
        .await
        .unwrap());
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
    access::insert(db, &jti, Some(&grant.id), "c", NOW + 900)
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

/// Browser sessions: live until expiry, gone after logout.
pub async fn sessions_lifecycle(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let s = sessions::SessionRow {
        id_hash: token_hash(&uid("sess")),
        subject: uid("user"),
        auth_time: NOW,
        expires_at: NOW + 100,
    };
    sessions::insert(db, &s).await.unwrap();
    assert_eq!(
        sessions::get_live(db, &s.id_hash, NOW).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        sessions::get_live(db, &s.id_hash, NOW + 100).await.unwrap(),
        None
    );
    assert!(matches!(
        sessions::insert(db, &s).await,
        Err(StoreError::Conflict(_))
    ));
    sessions::delete(db, &s.id_hash).await.unwrap();
    assert_eq!(sessions::get_live(db, &s.id_hash, NOW).await.unwrap(), None);
}

/// Clients: insert, get, upsert, list, delete; a duplicate id is a conflict.
pub async fn clients_crud_and_conflict(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let metadata = ClientMetadata {
        redirect_uris: vec![
            "https://client.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: "client_secret_basic".into(),
        client_name: Some("Conformance client ü".into()),
        scope: Some("mcp:tools".into()),
        application_type: "web".into(),
        ..ClientMetadata::default()
    };
    let c = clients::ClientRow {
        client_id: uid("client"),
        secret_hash: Some(token_hash("s3cret")),
        metadata: metadata.clone(),
        source: "static".into(),
        created_at: NOW,
    };
    clients::insert(db, &c).await.unwrap();
    assert_eq!(
        clients::get(db, &c.client_id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(clients::get(db, &uid("missing")).await.unwrap(), None);
    match clients::insert(db, &c).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a duplicate client id must be a Conflict, got {other:?}"),
    }

    let mut updated = c.clone();
    updated.secret_hash = None;
    updated.metadata.token_endpoint_auth_method = "none".into();
    updated.metadata.client_name = None;
    updated.source = "seed".into();
    clients::upsert(db, &updated).await.unwrap();
    let got = clients::get(db, &c.client_id).await.unwrap().unwrap();
    assert_eq!(got.secret_hash, None);
    assert_eq!(got.metadata, updated.metadata);
    assert_eq!(got.source, "seed");
    assert_eq!(got.created_at, NOW, "upsert keeps the creation time");

    let fresh = clients::ClientRow {
        client_id: uid("client"),
        created_at: NOW + 1,
        ..c.clone()
    };
    clients::upsert(db, &fresh).await.unwrap();
    assert_eq!(
        clients::get(db, &fresh.client_id).await.unwrap(),
        Some(fresh.clone())
    );

    let listed = clients::list(db, 10_000, 0).await.unwrap();
    let pos = |id: &str| listed.iter().position(|r| r.client_id == id);
    let (a, b) = (pos(&c.client_id), pos(&fresh.client_id));
    assert!(a.is_some() && b.is_some(), "both clients are listed");
    assert!(a < b, "clients are listed oldest first");
    assert!(
        clients::list(db, 1, 0).await.unwrap().len() <= 1,
        "limit applies"
    );

    assert!(clients::delete(db, &c.client_id).await.unwrap());
    assert!(!clients::delete(db, &c.client_id).await.unwrap());
    assert_eq!(clients::get(db, &c.client_id).await.unwrap(), None);
}

/// Users: insert, lookups, password change, list, delete; a taken username is a conflict.
pub async fn users_crud_and_conflict(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let u = users::UserRow {
        id: uid("sub"),
        username: uid("alice"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        disabled: false,
        created_at: NOW,
    };
    users::insert(db, &u).await.unwrap();
    assert_eq!(
        users::by_username(db, &u.username).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(users::by_id(db, &u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(users::by_username(db, &uid("nobody")).await.unwrap(), None);

    let dup = users::UserRow {
        id: uid("sub"),
        ..u.clone()
    };
    match users::insert(db, &dup).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a taken username must be a Conflict, got {other:?}"),
    }

    assert!(users::set_password(db, &u.username, "$argon2id$new")
        .await
        .unwrap());
    assert!(!users::set_password(db, &uid("nobody"), "$argon2id$new")
        .await
        .unwrap());
    assert_eq!(
        users::by_id(db, &u.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );

    let disabled = users::UserRow {
        id: uid("sub"),
        username: uid("bob"),
        disabled: true,
        ..u.clone()
    };
    users::insert(db, &disabled).await.unwrap();
    assert!(
        users::by_id(db, &disabled.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    let listed = users::list(db, 10_000, 0).await.unwrap();
    assert!(listed.iter().any(|r| r.id == u.id));
    assert!(listed.iter().any(|r| r.id == disabled.id));
    let names: Vec<&str> = listed.iter().map(|r| r.username.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "users are listed by name");

    assert!(users::delete(db, &u.username).await.unwrap());
    assert!(!users::delete(db, &u.username).await.unwrap());
    assert_eq!(users::by_id(db, &u.id).await.unwrap(), None);
}

/// Resources: upsert creates then updates, get is exact, list is by URI, delete.
pub async fn resources_crud(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let id = uid("r");
    let r = resources::ResourceRow {
        uri: format!("https://mcp.example.com/{id}/mcp"),
        name: Some("Example MCP".into()),
        scopes: vec!["mcp:tools".into(), "mcp:read".into()],
        introspection_clients: vec!["rs-a".into(), "rs-b".into()],
        created_at: NOW,
    };
    resources::upsert(db, &r).await.unwrap();
    assert_eq!(resources::get(db, &r.uri).await.unwrap(), Some(r.clone()));
    assert_eq!(
        resources::get(db, &format!("{}/", r.uri)).await.unwrap(),
        None,
        "lookup is by exact URI"
    );
    let updated = resources::ResourceRow {
        name: None,
        scopes: vec!["mcp:admin".into()],
        introspection_clients: Vec::new(),
        created_at: NOW + 50,
        ..r.clone()
    };
    resources::upsert(db, &updated).await.unwrap();
    let got = resources::get(db, &r.uri).await.unwrap().unwrap();
    assert_eq!(got.scopes, vec!["mcp:admin".to_owned()]);
    assert_eq!(got.name, None);
    assert!(got.introspection_clients.is_empty());
    assert_eq!(got.created_at, NOW, "upsert keeps the creation time");

    let second = resources::ResourceRow {
        uri: format!("https://mcp.example.com/{id}/a"),
        ..r.clone()
    };
    resources::upsert(db, &second).await.unwrap();
    let listed = resources::list(db).await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
    let mut sorted = uris.clone();
    sorted.sort_unstable();
    assert_eq!(uris, sorted, "resources are listed by URI");
    assert!(uris.contains(&r.uri.as_str()) && uris.contains(&second.uri.as_str()));

    assert!(resources::delete(db, &r.uri).await.unwrap());
    assert!(!resources::delete(db, &r.uri).await.unwrap());
    assert_eq!(resources::get(db, &r.uri).await.unwrap(), None);
}

/// The audit log lists newest first, filters by action, client, subject and outcome, and
/// pages with `before` and `limit`.
pub async fn audit_list_filters_and_paging(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let client = uid("audit-client");
    let subject = uid("audit-sub");
    let events = [
        ("login", "success", Some(subject.as_str())),
        ("token.issued", "success", Some(subject.as_str())),
        ("token.denied", "failure", None),
        ("token.issued", "success", None),
        ("revocation", "success", Some(subject.as_str())),
    ];
    for (i, (action, outcome, sub)) in events.iter().enumerate() {
        audit::insert(
            db,
            &audit::AuditRow {
                seq: 0,
                at: NOW + i as i64,
                action: (*action).into(),
                outcome: (*outcome).into(),
                client_id: Some(client.clone()),
                subject: sub.map(str::to_owned),
                reason: (*outcome == "failure").then(|| "invalid_grant".to_owned()),
                request_id: Some(format!("req-{i}")),
                detail: Some(serde_json::json!({ "i": i, "scope": "mcp:tools" })),
            },
        )
        .await
        .unwrap();
    }
    let base = audit::AuditFilter {
        client_id: Some(client.clone()),
        limit: 100,
        ..Default::default()
    };
    let all = audit::list(db, &base).await.unwrap();
    assert_eq!(all.len(), 5);
    let ats: Vec<i64> = all.iter().map(|e| e.at).collect();
    assert_eq!(
        ats,
        vec![NOW + 4, NOW + 3, NOW + 2, NOW + 1, NOW],
        "newest first"
    );
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
    assert_eq!(all[0].action, "revocation");
    assert_eq!(all[2].reason.as_deref(), Some("invalid_grant"));
    assert_eq!(all[2].request_id.as_deref(), Some("req-2"));
    assert_eq!(
        all[4].detail,
        Some(serde_json::json!({ "i": 0, "scope": "mcp:tools" }))
    );

    let issued = audit::list(
        db,
        &audit::AuditFilter {
            action: Some("token.issued".into()),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        issued.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![NOW + 3, NOW + 1]
    );

    let failures = audit::list(
        db,
        &audit::AuditFilter {
            outcome: Some("failure".into()),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].action, "token.denied");

    let by_subject = audit::list(
        db,
        &audit::AuditFilter {
            subject: Some(subject.clone()),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(by_subject.len(), 3);
    assert!(by_subject
        .iter()
        .all(|e| e.subject.as_deref() == Some(subject.as_str())));

    // Paging: two pages of two, then the last one, then nothing.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = audit::list(
            db,
            &audit::AuditFilter {
                limit: 2,
                before,
                ..base.clone()
            },
        )
        .await
        .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2, "limit applies");
        before = page.last().map(|e| e.seq);
        seen.extend(page.into_iter().map(|e| e.at));
        assert!(seen.len() <= 5, "paging terminates");
    }
    assert_eq!(seen, ats, "paging visits every event once, newest first");
}

/// Signing keys: published newest first; retiring keeps a key published until
/// `remove_after`, then drops it from the set.
pub async fn keys_published_and_retire(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let key = |kid: String, created_at: i64| keys::KeyRow {
        public_jwk: format!(r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"x","y":"y"}}"#),
        kid,
        alg: "ES256".into(),
        private_enc: "sealed".into(),
        created_at,
        retired_at: None,
        remove_after: None,
    };
    let old = key(uid("kid"), NOW - 100);
    let new = key(uid("kid"), NOW);
    keys::insert(db, &old).await.unwrap();
    keys::insert(db, &new).await.unwrap();
    assert!(matches!(
        keys::insert(db, &old).await,
        Err(StoreError::Conflict(_))
    ));
    let ours = |rows: Vec<keys::KeyRow>| -> Vec<keys::KeyRow> {
        rows.into_iter()
            .filter(|k| k.kid == old.kid || k.kid == new.kid)
            .collect()
    };
    let published = ours(keys::published(db, NOW).await.unwrap());
    assert_eq!(
        published,
        vec![new.clone(), old.clone()],
        "newest first, unchanged"
    );

    let retired = keys::retire_others(db, &new.kid, NOW, NOW + 1000)
        .await
        .unwrap();
    assert!(retired >= 1);
    let published = ours(keys::published(db, NOW + 999).await.unwrap());
    assert_eq!(
        published.len(),
        2,
        "a retired key stays published until remove_after"
    );
    assert_eq!(published[0].retired_at, None, "the kept key stays active");
    assert_eq!(published[1].retired_at, Some(NOW));
    assert_eq!(published[1].remove_after, Some(NOW + 1000));
    let published = ours(keys::published(db, NOW + 1000).await.unwrap());
    assert_eq!(published, vec![new.clone()], "then it leaves the JWKS");

    // Retiring again does not touch already retired keys.
    keys::retire_others(db, &new.kid, NOW + 5, NOW + 5000)
        .await
        .unwrap();
    let all = ours(keys::published(db, NOW).await.unwrap());
    let o = all.iter().find(|k| k.kid == old.kid).unwrap();
    assert_eq!(
        (o.retired_at, o.remove_after),
        (Some(NOW), Some(NOW + 1000))
    );
}
