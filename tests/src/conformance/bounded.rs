//! Bounded storage on every backend (docs/security.md): the purge removes
//! exactly the dead rows of each table in bounded batches (B1), audit events past retention
//! (B2), and the pending-request cap holds per client and per address (B3). Times are far
//! below the suite's [`NOW`](super::NOW), so the purge never touches other cases' rows on a
//! shared database; rows are checked by their own ids.

use portcullis_core::config::StorageConfig;
use portcullis_core::crypto::token_hash;
use portcullis_core::maintenance::{purge, Plan};
use portcullis_core::store::repo::audit::{self, AuditFilter, AuditRow};
use portcullis_core::store::repo::auth_requests::{self, AuthRequestRow, Owner};
use portcullis_core::store::repo::{access, codes, counters, metrics, refresh, replay, sessions};

use super::{code_row, refresh_row, setup, uid, Store};

/// The purge's "now" in these cases.
const T: i64 = 1_000_000_000;
const DAY: i64 = 24 * 3600;

fn request_row(id_hash: &str, expires_at: i64, created_at: i64) -> AuthRequestRow {
    AuthRequestRow {
        id_hash: id_hash.into(),
        request: "{}".into(),
        session_hash: None,
        expires_at,
        consumed_at: None,
        created_at,
    }
}

async fn audit_count(store: &Store, action: &str) -> usize {
    audit::list(
        store.as_ref(),
        &AuditFilter {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .len()
}

/// B1/B2: live and dead rows in every purged table; after purging at `T` in batches of one
/// row, only the live ones remain (a consumed refresh token stays until its expiry, for
/// reuse detection), and audit events older than the retention are gone.
pub async fn b1_purge_keeps_only_live_rows(store: Store) {
    let _purges = super::PURGES.lock().await;
    setup(&store).await;
    let db = store.as_ref();
    let id = |tag: &str| token_hash(&uid(tag));
    let (req_dead, req_live) = (id("rq"), id("rq"));
    auth_requests::insert(db, &request_row(&req_dead, T, T - 900))
        .await
        .unwrap();
    auth_requests::insert(db, &request_row(&req_live, T + 900, T - 10))
        .await
        .unwrap();
    let (code_dead, code_live) = (uid("code"), uid("code"));
    let mut used = code_row(&code_dead, &uid("g"), "c", T - 1);
    used.used_at = Some(T - 30);
    codes::insert(db, &used).await.unwrap();
    codes::insert(db, &code_row(&code_live, &uid("g"), "c", T + 60))
        .await
        .unwrap();
    let (sess_dead, sess_live) = (id("s"), id("s"));
    for (h, exp) in [(&sess_dead, T), (&sess_live, T + 1)] {
        let row = sessions::SessionRow {
            id_hash: h.clone(),
            subject: "u".into(),
            auth_time: T - 100,
            expires_at: exp,
        };
        sessions::insert(db, &row).await.unwrap();
    }
    let (rt_dead, rt_consumed_live) = (uid("rt"), uid("rt"));
    refresh::insert(db, &refresh_row(&rt_dead, &uid("g"), "c", T - 1))
        .await
        .unwrap();
    let mut consumed = refresh_row(&rt_consumed_live, &uid("g"), "c", T + 3600);
    consumed.consumed_at = Some(T - 5);
    refresh::insert(db, &consumed).await.unwrap();
    let (at_dead, at_live) = (uid("jti"), uid("jti"));
    access::insert(db, &at_dead, None, "c", T - 5, None)
        .await
        .unwrap();
    access::insert(db, &at_live, None, "c", T + 60, None)
        .await
        .unwrap();
    let (rp_dead1, rp_dead2, rp_live) = (uid("rp"), uid("rp"), uid("rp"));
    for (k, exp) in [(&rp_dead1, T - 1), (&rp_dead2, T), (&rp_live, T + 5)] {
        assert!(replay::reserve(db, k, exp, T - 100).await.unwrap());
    }
    let (ctr_dead, ctr_live) = (uid("ctr"), uid("ctr"));
    counters::increment(db, &ctr_dead, T, T - 100)
        .await
        .unwrap();
    counters::increment(db, &ctr_live, T + 5, T - 100)
        .await
        .unwrap();
    let (old_action, recent_action) = (uid("old"), uid("recent"));
    for (action, at) in [(&old_action, T - 91 * DAY), (&recent_action, T - DAY)] {
        let row = AuditRow {
            seq: 0,
            at,
            action: action.clone(),
            outcome: "success".into(),
            client_id: None,
            subject: None,
            reason: None,
            request_id: None,
            trace_id: None,
            detail: None,
            label: None,
        };
        audit::insert(db, &row).await.unwrap();
    }

    // Batches of one row, one statement per table: bounded work per call.
    let cfg = StorageConfig {
        purge_batch_size: 1,
        purge_max_statements: 8,
        ..StorageConfig::default()
    };
    let plan = Plan::new(&cfg, T);
    // Audit rows go only once folded into the metric counters.
    metrics::fold(db, 4_000_000_000, 1_000_000_000, &uid("fold"))
        .await
        .unwrap();
    let first = purge(db, &plan).await.unwrap();
    assert!(first.deleted.values().all(|n| *n <= 1), "{first:?}");
    let mut deleted = first.deleted.clone();
    let mut complete = first.complete;
    for _ in 0..1000 {
        if complete {
            break;
        }
        let r = purge(db, &plan).await.unwrap();
        for (t, n) in r.deleted {
            *deleted.entry(t).or_default() += n;
        }
        complete = r.complete;
    }
    assert!(complete, "the purge finishes: {deleted:?}");
    for (table, mine) in [
        ("auth_requests", 1),
        ("auth_codes", 1),
        ("sessions", 1),
        ("refresh_tokens", 1),
        ("access_tokens", 1),
        ("replay_cache", 2),
        ("counters", 1),
        ("audit_events", 1),
    ] {
        assert!(deleted[table] >= mine, "{table}: {deleted:?}");
    }

    let before = T - 1000;
    assert_eq!(
        counters::get(db, &ctr_dead, before).await.unwrap(),
        0,
        "purged"
    );
    assert_eq!(
        counters::get(db, &ctr_live, before).await.unwrap(),
        1,
        "kept"
    );
    assert!(auth_requests::get_live(db, &req_dead, before)
        .await
        .unwrap()
        .is_none());
    assert!(auth_requests::get_live(db, &req_live, before)
        .await
        .unwrap()
        .is_some());
    assert!(codes::get(db, &token_hash(&code_dead))
        .await
        .unwrap()
        .is_none());
    assert!(codes::get(db, &token_hash(&code_live))
        .await
        .unwrap()
        .is_some());
    assert!(sessions::get_live(db, &sess_dead, before)
        .await
        .unwrap()
        .is_none());
    assert!(sessions::get_live(db, &sess_live, before)
        .await
        .unwrap()
        .is_some());
    assert!(refresh::get(db, &token_hash(&rt_dead))
        .await
        .unwrap()
        .is_none());
    let kept = refresh::get(db, &token_hash(&rt_consumed_live))
        .await
        .unwrap()
        .expect("a consumed, unexpired refresh token is kept for reuse detection");
    assert_eq!(kept.consumed_at, Some(T - 5));
    assert_eq!(access::lineage(db, &at_dead).await.unwrap().length, 0);
    assert_eq!(access::lineage(db, &at_live).await.unwrap().length, 1);
    // A purged replay key is free again; the live one is still reserved.
    assert!(replay::reserve(db, &rp_dead1, T - 50, before)
        .await
        .unwrap());
    assert!(!replay::reserve(db, &rp_live, T + 5, before).await.unwrap());
    assert_eq!(audit_count(&store, &old_action).await, 0);
    assert_eq!(audit_count(&store, &recent_action).await, 1);
}

/// B3: a pending request over its client's or its address's cap of live requests is not
/// stored; expired and consumed requests do not count.
pub async fn b3_pending_requests_capped_per_owner(store: Store) {
    setup(&store).await;
    let db = store.as_ref();
    let (client_x, client_y, ip) = (uid("cx"), uid("cy"), token_hash(&uid("ip")));
    let insert = |client: String, now: i64| {
        let ip = ip.clone();
        let h = token_hash(&uid("rq"));
        async move {
            let owner = Owner {
                client_id: &client,
                ip_bucket: Some(&ip),
                max_per_client: 2,
                max_per_ip: 3,
            };
            let stored =
                auth_requests::insert_capped(db, &request_row(&h, now + 900, now), &owner, now)
                    .await
                    .unwrap();
            (stored, h)
        }
    };
    let now = T;
    assert!(insert(client_x.clone(), now).await.0);
    assert!(insert(client_x.clone(), now).await.0);
    let (stored, refused) = insert(client_x.clone(), now).await;
    assert!(!stored, "third request of one client is over its cap of 2");
    assert!(
        auth_requests::get_live(db, &refused, now)
            .await
            .unwrap()
            .is_none(),
        "a refused request leaves no row"
    );
    // The same address, another client: one more fits the address cap of 3, then no more.
    assert!(insert(client_y.clone(), now).await.0);
    assert!(!insert(client_y.clone(), now).await.0);
    // Without an address only the client cap applies.
    let h = token_hash(&uid("rq"));
    let no_ip = Owner {
        client_id: &client_y,
        ip_bucket: None,
        max_per_client: 2,
        max_per_ip: 3,
    };
    assert!(
        auth_requests::insert_capped(db, &request_row(&h, now + 900, now), &no_ip, now)
            .await
            .unwrap()
    );
    // Once the earlier requests have expired they no longer count.
    let later = now + 901;
    assert!(insert(client_x.clone(), later).await.0);
    assert!(insert(client_x, later).await.0);
}
