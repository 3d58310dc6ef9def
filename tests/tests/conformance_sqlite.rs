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

include!("common/conformance_cases.rs");

/// The whole suite in sequence on one shared database, as hosts without a per-case
/// database run it: cases must not interfere with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_database() {
    for kind in ["rusqlite", "sqlx"] {
        let (_dir, store) = fresh_store(kind).await;
        conformance::run_all(store).await;
    }
}
