//! The storage conformance suite (DESIGN.md rule 5, in the style of object_store's shared
//! integration tests): every [`SqlStore`] backend (the core's SQLite store, PostgreSQL, D1,
//! Spin SQLite) runs these cases against a real database: the store contract itself (values,
//! REAL and BLOB columns, conflicts, batches, `RETURNING`), the core's migrations and every
//! query in `core/src/store/repo`, including the atomic transitions under concurrency
//! (SECURITY-CHECKLIST C1, C6, F3, F5, H5) and the vault's single-flight refresh claim.
//!
//! Each case is a `pub async fn(Store)` that panics on failure, so a host runs each as its
//! own test; [`run_all`] runs them in sequence on one store. Cases use unique ids so they can
//! share a database; the concurrency cases must run on a multi-threaded runtime.

mod bounded;
mod grants_and_requests;
mod metrics;
mod primitives;
mod records;
mod replay;
mod tokens;
mod vault;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use portcullis_core::crypto::token_hash;
use portcullis_core::store::migrations::{self, MIGRATIONS};
use portcullis_core::store::repo::{codes, grants, refresh};
use portcullis_core::store::{SqlStore, StoreError};

pub use bounded::*;
pub use grants_and_requests::*;
pub use metrics::*;
pub use primitives::*;
pub use records::*;
pub use replay::*;
pub use tokens::*;
pub use vault::*;

/// A backend under test.
pub type Store = Arc<dyn SqlStore>;

/// The fixed "now" of the suite (seconds); repo functions take time as a parameter.
pub const NOW: i64 = 1_700_000_000;

/// Held for their whole run by the cases whose deletes reach every row below a time (the
/// purges): the cases of a binary share one database and run on several threads, and one
/// purge removes the rows another purge case has inserted and not yet checked (B1's live code
/// expires long before the cut-off of `codes_purge_expired`).
pub static PURGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many tasks race in the concurrency cases.
pub const RACERS: usize = 32;

/// Every case, by name, for hosts that run them in a loop.
pub async fn run_all(store: Store) {
    values_roundtrip(store.clone()).await;
    conflicts_and_atomic_batches(store.clone()).await;
    returning_rows_and_changed_counts(store.clone()).await;
    c1_conditional_update_one_winner(store.clone()).await;
    real_and_blob_columns_read_alike(store.clone()).await;
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
    keys_published_and_retire(store.clone()).await;
    replay_reserved_once_until_expiry(store.clone()).await;
    vault_refresh_claimed_once(store.clone()).await;
    vault_connect_consumed_once(store.clone()).await;
    replay_concurrent_reservation(store.clone()).await;
    b1_purge_keeps_only_live_rows(store.clone()).await;
    metric_counters_count_each_audit_row_once(store.clone()).await;
    audit_rows_not_yet_folded_are_never_purged(store.clone()).await;
    b3_pending_requests_capped_per_owner(store).await;
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
        redirect_uri_sent: true,
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

/// Rotates `row` for `client_id` at `now` to a fresh successor in its family: whether this
/// call consumed it (and stored the successor).
async fn rotate(
    db: &dyn SqlStore,
    row: &refresh::RefreshRow,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let next = refresh_row(&uid("rt"), &row.grant_id, client_id, row.expires_at);
    refresh::rotate(db, &row.token_hash, now, &next, None).await
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
