//! Runs the storage conformance suite on a real SQLite file (one fresh temporary database per
//! case) against the core's `SqliteStore`, what `portcullis serve` uses and what the core's
//! unit tests run on.

use std::sync::Arc;

use portcullis_core::store::sqlite::SqliteStore;
use portcullis_tests::conformance::{self, Store};

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    let store: Store = Arc::new(SqliteStore::open(&url).expect("open SQLite"));
    (dir, store)
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let (_dir, store) = fresh_store();
            conformance::$name(store).await;
        }
    )*};
}

include!("common/conformance_cases.rs");

/// The whole suite in sequence on one shared database, as hosts without a per-case
/// database run it: cases must not interfere with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_database() {
    let (_dir, store) = fresh_store();
    conformance::run_all(store).await;
}
