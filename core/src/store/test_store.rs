//! Test-only server fixtures on the real embedded store: [`TestSql`] is the
//! [`SqliteStore`] the native host ships (on a fresh in-memory database), and
//! [`test_server`] starts a [`Portcullis`] on it with a fixed clock and a seeded RNG, so core
//! unit tests exercise the real schema, the real repo queries and the real store (DESIGN.md
//! "real parts in tests").

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::RustCrypto;
use crate::env::Env;
use crate::runtime::{FixedClock, NoFetcher, SeededRng};
use crate::server::Portcullis;
use crate::store::sqlite::SqliteStore;
use crate::store::MemoryKv;

/// The time every test server starts at (2023-11-14T22:13:20Z).
pub(crate) const TEST_NOW: i64 = 1_700_000_000;

/// The store the core's tests run on: the shipped SQLite store.
pub(crate) type TestSql = SqliteStore;

impl SqliteStore {
    /// A fresh in-memory database (tests only; opening one fails only without memory).
    pub(crate) fn memory() -> Self {
        Self::open_memory().expect("in-memory SQLite opens")
    }
}

/// A test environment on `sql`, with its clock (move it with `set`/`advance`).
pub(crate) fn test_env_on(sql: Arc<TestSql>) -> (Env, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::at(TEST_NOW));
    let env = Env {
        clock: clock.clone(),
        rng: Arc::new(SeededRng::new(7)),
        sql,
        kv: Arc::new(MemoryKv::default()),
        crypto: Arc::new(RustCrypto),
        fetcher: Arc::new(NoFetcher),
    };
    (env, clock)
}

/// A test environment on a fresh in-memory database.
pub(crate) fn test_env() -> (Env, Arc<FixedClock>) {
    test_env_on(Arc::new(TestSql::memory()))
}

/// Starts a server with `cfg` on a fresh in-memory database (migrations, seeds, first key).
pub(crate) async fn test_server(cfg: Config) -> Portcullis {
    let (env, _clock) = test_env();
    Portcullis::start(env, cfg)
        .await
        .expect("test server starts")
}
