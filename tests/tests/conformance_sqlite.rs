//! Runs the storage conformance suite on a real SQLite file (one fresh temporary database per
//! case) against both native SQLite stores: `SqliteStore` (rusqlite, what `portcullis serve`
//! uses) and `SqlxStore`.

use std::sync::Arc;

use portcullis::store_sql::SqlxStore;
use portcullis::store_sqlite::SqliteStore;
use portcullis_tests::conformance::{self, Store};

async fn fresh_store(kind: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store: Store = match kind {
        "rusqlite" => Arc::new(SqliteStore::open(&url).expect("open SQLite")),
        _ => Arc::new(SqlxStore::connect(&url).await.expect("connect to SQLite")),
    };
    (dir, store)
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        mod rusqlite {
            use super::*;
            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (_dir, store) = fresh_store("rusqlite").await;
                conformance::$name(store).await;
            }
            )*
        }
        mod sqlx {
            use super::*;
            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (_dir, store) = fresh_store("sqlx").await;
                conformance::$name(store).await;
            }
            )*
        }
    };
}

cases!(
    migrations_idempotent,
    codes_insert_get_redeem_once,
    codes_expired_not_redeemable,
    codes_purge_expired,
    c6_only_hashes_stored,
    c1_concurrent_code_redemption,
    refresh_insert_get_consume,
    refresh_expired_not_consumable,
    f3_concurrent_refresh_consume,
    f5_wrong_client_consume_refused,
    grants_revoke_ends_family,
    access_revoke_and_is_revoked,
    auth_requests_bind_and_consume,
    h5_auth_request_consumed_once_concurrently,
    sessions_lifecycle,
    clients_crud_and_conflict,
    users_crud_and_conflict,
    resources_crud,
    audit_list_filters_and_paging,
    keys_published_and_retire,
    replay_reserved_once_until_expiry,
    replay_concurrent_reservation,
);

/// The whole suite in sequence on one shared database, as hosts without a per-case
/// database run it: cases must not interfere with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_database() {
    for kind in ["rusqlite", "sqlx"] {
        let (_dir, store) = fresh_store(kind).await;
        conformance::run_all(store).await;
    }
}
