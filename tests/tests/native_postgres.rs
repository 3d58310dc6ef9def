//! Runs the black-box scenario suite against the native host on PostgreSQL: `portcullis serve`
//! with `PORTCULLIS_DATABASE_URL` pointing at a database of its own, created on the server of
//! `TEST_POSTGRES_URL` (`scripts/test` starts a throwaway cluster and sets it) and dropped when
//! the test binary exits. Like `native.rs` (one SQLite file per server), every server gets a
//! fresh database: the shared one, the nonce-requiring one and each isolated one. Without
//! `TEST_POSTGRES_URL` every scenario is skipped (and passes), unless `TEST_REQUIRE_POSTGRES`
//! is set. The scenario lists are `common/scenario_lists.rs`, the same file `native.rs` runs.

mod common;

use common::{PgDatabase, Server, Spec};
use portcullis_tests::scenarios::{self, Target};

/// A server with extra settings on a fresh database, or `None` (skip).
async fn start_server_with(settings: &[(&str, &str)]) -> Option<(Server, PgDatabase)> {
    let db = common::pg_database("pc_native").await?;
    let server = common::start_retrying(|| {
        settings
            .iter()
            .fold(Spec::new(&db.url), |s, (k, v)| s.with(k, v))
    })
    .await;
    Some((server, db))
}

static SHARED: tokio::sync::OnceCell<Option<(Server, PgDatabase)>> =
    tokio::sync::OnceCell::const_new();

async fn shared() -> Option<Target> {
    SHARED
        .get_or_init(|| start_server_with(&[]))
        .await
        .as_ref()
        .map(|(s, _)| s.target.clone())
}

/// Scenarios that share one server.
macro_rules! shared {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(t) = shared().await else { return };
            scenarios::$module::$name(&t).await;
        }
    )*};
}

static NONCE_REQUIRED: tokio::sync::OnceCell<Option<(Server, PgDatabase)>> =
    tokio::sync::OnceCell::const_new();

/// Scenarios that share one server requiring DPoP nonces (`scenarios::dpop::NONCE_REQUIRED`).
macro_rules! nonce_required {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = NONCE_REQUIRED
                .get_or_init(|| start_server_with(&[("PORTCULLIS_DPOP__REQUIRE_NONCE", "true")]))
                .await;
            let Some((server, _)) = server else { return };
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

static CAPPED: tokio::sync::OnceCell<Option<(Server, PgDatabase)>> =
    tokio::sync::OnceCell::const_new();

/// Scenarios that share one server with low storage caps (`scenarios::bounded::SETTINGS`).
macro_rules! capped {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = CAPPED
                .get_or_init(|| start_server_with(scenarios::bounded::ENV_SETTINGS))
                .await;
            let Some((server, _)) = server else { return };
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

/// Scenarios that need a server of their own (per-IP throttles, key rotation).
macro_rules! isolated {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some((server, _db)) = start_server_with(&[]).await else { return };
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

include!("common/scenario_lists.rs");
