//! Runs the black-box scenario suite against the native host: `portcullis serve` on free
//! loopback ports with a fresh SQLite file, started once per test binary and shared by the
//! scenarios (those in `ISOLATED` get a server of their own). The process harness (binary,
//! ports, keys, shutdown guards) is `common/`, shared with the PostgreSQL and multi-instance
//! runners; the scenario lists are `common/scenario_lists.rs`.

mod common;

use common::{OnExit, Server, Spec};
use portcullis_tests::scenarios::{self, Target};

/// A server with extra `PORTCULLIS_*` settings on a fresh SQLite file (removed at exit).
async fn start_server_with(settings: &[(&str, &str)]) -> (Server, OnExit) {
    let (dir, guard) = common::temp_dir("sqlite");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let server = common::start_retrying(|| {
        settings
            .iter()
            .fold(Spec::new(&url), |s, (k, v)| s.with(k, v))
    })
    .await;
    (server, guard)
}

static SHARED: tokio::sync::OnceCell<(Server, OnExit)> = tokio::sync::OnceCell::const_new();

async fn shared() -> Target {
    SHARED
        .get_or_init(|| start_server_with(&[]))
        .await
        .0
        .target
        .clone()
}

/// Scenarios that share one server.
macro_rules! shared {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let t = shared().await;
            scenarios::$module::$name(&t).await;
        }
    )*};
}

static NONCE_REQUIRED: tokio::sync::OnceCell<(Server, OnExit)> = tokio::sync::OnceCell::const_new();

/// Scenarios that share one server requiring DPoP nonces (`scenarios::dpop::NONCE_REQUIRED`).
macro_rules! nonce_required {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (server, _) = NONCE_REQUIRED
                .get_or_init(|| start_server_with(&[("PORTCULLIS_DPOP__REQUIRE_NONCE", "true")]))
                .await;
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

static CAPPED: tokio::sync::OnceCell<(Server, OnExit)> = tokio::sync::OnceCell::const_new();

/// Scenarios that share one server with low storage caps (`scenarios::bounded::SETTINGS`).
macro_rules! capped {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (server, _) = CAPPED
                .get_or_init(|| start_server_with(scenarios::bounded::ENV_SETTINGS))
                .await;
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

/// Scenarios that need a server of their own (`scenarios::ISOLATED`).
macro_rules! isolated {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (server, _dir) = start_server_with(&[]).await;
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

include!("common/scenario_lists.rs");
