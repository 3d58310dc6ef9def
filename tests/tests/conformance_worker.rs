//! Runs the storage conformance suite on Cloudflare D1: the test Worker (built with the
//! `sql-bridge` feature) in Miniflare, every case's SQL sent through `POST /__test/sql` to
//! the Worker's own D1 `SqlStore` ([`BridgeStore`]), including the 32-way races. One Worker
//! with a fresh D1 database serves every case (they use unique ids); `run_all_on_one_database`
//! runs the whole suite in sequence on a second fresh one.
//!
//! Skips (with a message) when the test Worker has not been built, unless
//! `TEST_REQUIRE_WORKER=1`.

use std::sync::Arc;

use portcullis_tests::bridge::BridgeStore;
use portcullis_tests::conformance::{self, Store};
use portcullis_tests::hosts::worker::{self, WorkerHost};

static WORKER: tokio::sync::OnceCell<Option<WorkerHost>> = tokio::sync::OnceCell::const_new();

fn bridge(host: &WorkerHost) -> Store {
    Arc::new(BridgeStore::new(&host.target.base, &host.target.admin_key))
}

/// The shared Worker's D1 behind the bridge, or `None` (skip) when the Worker is not built.
async fn store() -> Option<Store> {
    WORKER
        .get_or_init(|| async {
            let build = worker::build_dir()?;
            Some(WorkerHost::start(&build, &[]).await)
        })
        .await
        .as_ref()
        .map(bridge)
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(store) = store().await else { return };
            conformance::$name(store).await;
        }
    )*};
}

include!("common/conformance_cases.rs");

/// The whole suite in sequence on one fresh D1 database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_on_one_database() {
    let Some(build) = worker::build_dir() else {
        return;
    };
    let host = WorkerHost::start(&build, &[]).await;
    conformance::run_all(bridge(&host)).await;
}

/// The Worker records every migration the core applied in wrangler's ledger
/// (`d1_migrations`) under the file names of `adapters/cloudflare/migrations/`, so a later
/// `wrangler d1 migrations apply` finds nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrangler_ledger_matches_the_migration_files() {
    let Some(store) = store().await else { return };
    let rows = store
        .query("SELECT name FROM d1_migrations ORDER BY id", &[])
        .await
        .expect("d1_migrations exists after the Worker started");
    let recorded: Vec<String> = rows.iter().map(|r| r.text(0).expect("a name")).collect();
    let files: Vec<String> = worker::d1_migration_files()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(recorded, files);
    let versions = store
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("schema_migrations");
    assert_eq!(versions.len(), files.len());
}

/// `wrangler d1 migrations apply` first, then the Worker: the Worker finds the schema
/// current (the files record their versions in `schema_migrations`) and starts on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrangler_migrations_then_worker_start() {
    let Some(build) = worker::build_dir() else {
        return;
    };
    let state = tempfile::tempdir().expect("a temporary directory");
    let state_arg = state.path().to_string_lossy().into_owned();
    let Some(out) = worker::wrangler(&[
        "d1",
        "migrations",
        "apply",
        "portcullis",
        "--local",
        "--persist-to",
        &state_arg,
    ]) else {
        return;
    };
    assert!(
        out.status.success(),
        "wrangler d1 migrations apply failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let host = WorkerHost::start_persisted(&build, &[], Some(state.path())).await;
    let store = bridge(&host);
    let files: Vec<String> = worker::d1_migration_files()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let versions = store
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("schema_migrations");
    assert_eq!(versions.len(), files.len(), "each version recorded once");
    let recorded: Vec<String> = store
        .query("SELECT name FROM d1_migrations ORDER BY id", &[])
        .await
        .expect("d1_migrations")
        .iter()
        .map(|r| r.text(0).expect("a name"))
        .collect();
    assert_eq!(recorded, files, "wrangler's ledger unchanged by the Worker");
}

/// The Worker first (it migrates on start), then `wrangler d1 migrations apply`: wrangler
/// finds every file applied and runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_start_then_wrangler_migrations() {
    let Some(build) = worker::build_dir() else {
        return;
    };
    let state = tempfile::tempdir().expect("a temporary directory");
    let state_arg = state.path().to_string_lossy().into_owned();
    // Started (it answered /health, so the core migrated) and stopped before wrangler opens
    // the same files.
    drop(WorkerHost::start_persisted(&build, &[], Some(state.path())).await);
    let Some(out) = worker::wrangler(&[
        "d1",
        "migrations",
        "apply",
        "portcullis",
        "--local",
        "--persist-to",
        &state_arg,
    ]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrangler d1 migrations apply failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("No migrations to apply"),
        "wrangler must find the Worker's migrations recorded:\n{stdout}"
    );
}
