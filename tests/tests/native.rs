//! Runs the black-box scenario suite against the native host: `portcullis serve` on free
//! loopback ports with a fresh SQLite file, started once per test binary and shared by the
//! scenarios (those in `isolated!` get a server of their own). The process harness (binary,
//! ports, keys, shutdown guards) is `common/`, shared with the PostgreSQL and multi-instance
//! runners; the runner is `portcullis_tests::hosts::suite`, the lists are
//! `common/scenario_lists.rs`.

mod common;

use async_trait::async_trait;
use common::{OnExit, Server, Spec};
use portcullis_tests::hosts::suite::{env_name, ScenarioHost};
use portcullis_tests::scenarios::Target;

/// `portcullis serve` on a fresh SQLite file (removed at exit).
struct NativeSqlite;

#[async_trait]
impl ScenarioHost for NativeSqlite {
    type Guard = (Server, OnExit);

    async fn start(settings: &[(&str, &str)]) -> Option<(Target, Self::Guard)> {
        let (dir, guard) = common::temp_dir("sqlite");
        let url = format!("sqlite://{}", dir.join("portcullis.db").display());
        let server = common::start_retrying(|| {
            settings
                .iter()
                .fold(Spec::new(&url), |s, (k, v)| s.with(&env_name(k), v))
        })
        .await;
        Some((server.target.clone(), (server, guard)))
    }
}

portcullis_tests::scenario_runner!(NativeSqlite);
include!("common/scenario_lists.rs");
