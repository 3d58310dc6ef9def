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

/// A start retried on fresh ports opens the database its failed attempt already wrote: the
/// first attempt's port is taken, so that server sealed its signing key into the file and then
/// could not bind; the retry must use the same master key (CI failed on this once, on
/// PostgreSQL, when another process took a port between `free_port` and the bind).
#[tokio::test]
async fn a_start_retried_on_fresh_ports_opens_what_the_failed_attempt_wrote() {
    let (dir, _guard) = common::temp_dir("retry");
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let taken_port = taken.local_addr().expect("its address").port();
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let server = common::start_retrying(|| {
        let mut spec = Spec::new(&url);
        if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            spec.port = taken_port;
            spec.issuer = spec.public_url();
        }
        spec
    })
    .await;
    assert_eq!(
        attempts.into_inner(),
        2,
        "the first attempt fails, the second starts"
    );
    let metadata = reqwest::get(server.target.url("/.well-known/oauth-authorization-server"))
        .await
        .expect("the server answers");
    assert_eq!(metadata.status(), 200);
}
