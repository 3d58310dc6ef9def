//! Runs the storage conformance suite against Spin SQLite as the component sees it: each case
//! drives the component's own `SqlStore` (adapters/spin, on `spin:sqlite`) through the SQL
//! bridge of the test component (`POST /__test/sql`, admin key required) in the Spin test
//! host, where every request is a new instance with its own SQLite connection to one
//! database file, so the 32-way races really race across connections. One fresh host and
//! database per case, and the whole suite once more on one database. Skipped, with a
//! message, when the host or the component has not been built (`scripts/build-spin --test`)
//! unless `TEST_REQUIRE_SPIN=1`.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use common::OnExit;
use portcullis_tests::bridge::BridgeStore;
use portcullis_tests::conformance::{self, Store};
use portcullis_tests::hosts::spin::{artifacts, SpinHost};

/// A fresh host and database with a bridge store on it; `None` when the artifacts are missing.
async fn fresh_store() -> Option<(SpinHost, OnExit, Store)> {
    let built = artifacts()?;
    let (dir, guard) = common::temp_dir("spin-conformance");
    let host = SpinHost::start(&built, &dir.join("sqlite_db.db"), &[]).await;
    let store: Store = Arc::new(BridgeStore::new(&host.target.url(""), &host.admin_key));
    Some((host, guard, store))
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some((_host, _dir, store)) = fresh_store().await else { return };
            conformance::$name(store).await;
        }
    )*};
}

include!("common/conformance_cases.rs");

/// The whole suite in sequence on one database (the component's own migrations ran when the
/// host answered `/health`): cases must not interfere with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_database() {
    let Some((_host, _dir, store)) = fresh_store().await else {
        return;
    };
    conformance::run_all(store).await;
}
