//! Runs the storage conformance suite against the native host's `PostgresStore` on a real
//! PostgreSQL server, one fresh database per case. The server comes from
//! `TEST_POSTGRES_URL` (`postgres://user@host:port/db`, a role that may create databases);
//! `scripts/test` starts a throwaway cluster and sets it (and `TEST_REQUIRE_POSTGRES=1`, which
//! turns a missing URL into a failure instead of a skip).

use std::sync::Arc;

use portcullis::store::PostgresStore;
use portcullis_core::store::SqlStore;
use portcullis_tests::conformance::{self, uid, Store};

/// A fresh database on the test server, or `None` (skip) when none is configured.
async fn fresh_store() -> Option<(PostgresStore, String, Store)> {
    let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("TEST_REQUIRE_POSTGRES").is_err(),
            "TEST_REQUIRE_POSTGRES is set but TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped: TEST_POSTGRES_URL is not set (scripts/test sets it)");
        return None;
    };
    let admin = PostgresStore::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    let name = uid("conf").replace('-', "_").to_ascii_lowercase();
    admin
        .execute(&format!("CREATE DATABASE {name}"), &[])
        .await
        .expect("create a database for the case");
    let mut db_url = url::Url::parse(&url).expect("TEST_POSTGRES_URL is a URL");
    db_url.set_path(&format!("/{name}"));
    let store = PostgresStore::connect(db_url.as_str())
        .await
        .expect("connect to the case's database");
    Some((admin, name, Arc::new(store)))
}

async fn drop_db(admin: PostgresStore, name: String, store: Store) {
    drop(store);
    // Connections of the case's pool may linger briefly; FORCE ends them.
    let _ = admin
        .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), &[])
        .await;
    admin.close().await;
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some((admin, name, store)) = fresh_store().await else { return };
            conformance::$name(store.clone()).await;
            drop_db(admin, name, store).await;
        }
    )*};
}

include!("common/conformance_cases.rs");

/// The whole suite in sequence on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_database() {
    let Some((admin, name, store)) = fresh_store().await else {
        return;
    };
    conformance::run_all(store.clone()).await;
    drop_db(admin, name, store).await;
}
