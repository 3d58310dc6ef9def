//! Process harness for the black-box tests that start `portcullis serve` on a chosen database
//! (`native.rs`, `native_postgres.rs`, `multi_instance.rs`): the server harness itself is the
//! library's [`portcullis_tests::hosts::native`]; here are fresh PostgreSQL databases on the
//! server of `TEST_POSTGRES_URL`, dropped by an exit guard.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use portcullis_tests::conformance::uid;
#[allow(unused_imports)] // some binaries use only the exit guards
pub use portcullis_tests::hosts::native::*;
pub use portcullis_tests::on_exit::*;

/// A database of its own on the PostgreSQL server of `TEST_POSTGRES_URL`, dropped (with
/// `psql`) when this value is dropped or this process exits.
pub struct PgDatabase {
    /// Its URL (`postgres://…/<name>`).
    pub url: String,
    /// Its name.
    pub name: String,
    _drop: Option<OnExit>,
}

/// The URL of the test PostgreSQL server, or `None` (the caller skips) when none is
/// configured. `TEST_REQUIRE_POSTGRES` (set by `scripts/test`) turns a missing URL into a
/// failure instead of a skip.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("TEST_REQUIRE_POSTGRES").is_err(),
                "TEST_REQUIRE_POSTGRES is set but TEST_POSTGRES_URL is not"
            );
            eprintln!("skipped: TEST_POSTGRES_URL is not set (scripts/test sets it)");
            None
        }
    }
}

/// Creates a uniquely named database (`<tag>_<unique>`) on the test server; `None` when
/// `TEST_POSTGRES_URL` is unset.
pub async fn pg_database(tag: &str) -> Option<PgDatabase> {
    use portcullis_core::store::SqlStore;
    let url = postgres_url()?;
    let name = uid(tag).replace('-', "_").to_ascii_lowercase();
    let admin = tokio::time::timeout(
        Duration::from_secs(30),
        portcullis::store::PostgresStore::connect(&url),
    )
    .await
    .expect("connecting to TEST_POSTGRES_URL timed out")
    .expect("connect to TEST_POSTGRES_URL");
    admin
        .execute(&format!("CREATE DATABASE {name}"), &[])
        .await
        .expect("create a database");
    admin.close().await;
    let mut db_url = url::Url::parse(&url).expect("TEST_POSTGRES_URL is a URL");
    db_url.set_path(&format!("/{name}"));
    // Dropped after this process exits; FORCE ends the servers' lingering connections.
    let drop_sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let drop = psql().map(|psql| OnExit::run(&[&psql, "-q", &url, "-c", &drop_sql]));
    if drop.is_none() {
        eprintln!("note: psql not found, database {name} is left on the test server");
    }
    Some(PgDatabase {
        url: db_url.to_string(),
        name,
        _drop: drop,
    })
}

/// `psql` from PATH or Debian's versioned directories.
fn psql() -> Option<String> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("psql"))
            .find(|p| p.is_file())
    });
    let debian = || {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin/psql")))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    };
    on_path
        .or_else(debian)
        .map(|p| p.to_string_lossy().into_owned())
}
