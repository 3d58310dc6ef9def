//! Runs the black-box scenario suite against the native host on PostgreSQL: `portcullis serve`
//! with `PORTCULLIS_DATABASE_URL` pointing at a database of its own, created on the server of
//! `TEST_POSTGRES_URL` (`scripts/test` starts a throwaway cluster and sets it) and dropped when
//! the test binary exits. Like `native.rs` (one SQLite file per server), every server gets a
//! fresh database: the shared one, the nonce-requiring one and each isolated one. Without
//! `TEST_POSTGRES_URL` every scenario is skipped (and passes), unless `TEST_REQUIRE_POSTGRES`
//! is set. The lists are `common/scenario_lists.rs`, the same file `native.rs` runs.

mod common;

use async_trait::async_trait;
use common::{PgDatabase, Server, Spec};
use portcullis_tests::hosts::suite::{env_name, ScenarioHost};
use portcullis_tests::scenarios::Target;

/// `portcullis serve` on a fresh PostgreSQL database, or `None` (skip) without a server.
struct NativePostgres;

#[async_trait]
impl ScenarioHost for NativePostgres {
    type Guard = (Server, PgDatabase);

    async fn start(settings: &[(&str, &str)]) -> Option<(Target, Self::Guard)> {
        let db = common::pg_database("pc_native").await?;
        let server = common::start_retrying(|| {
            settings
                .iter()
                .fold(Spec::new(&db.url), |s, (k, v)| s.with(&env_name(k), v))
        })
        .await;
        Some((server.target.clone(), (server, db)))
    }
}

portcullis_tests::scenario_runner!(NativePostgres);
include!("common/scenario_lists.rs");
