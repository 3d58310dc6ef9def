//! Runs the black-box scenario suite against the Spin component: the test component in the
//! Spin test host (tests/spin-host, wasmtime with Spin's SQLite, key-value and variables
//! APIs) on a loopback port with a fresh SQLite file, started once per test binary and shared
//! by the scenarios (those in `isolated!` get a host of their own; the runner is
//! `portcullis_tests::hosts::suite`, the lists `common/scenario_lists.rs`). One listener serves the
//! public endpoints and `/admin/`. Skipped, with a message, when the host or the component
//! has not been built (`scripts/build-spin --test`) unless `TEST_REQUIRE_SPIN=1`.

#[path = "common/mod.rs"]
mod common;

use async_trait::async_trait;
use common::OnExit;
use portcullis_tests::hosts::spin::{artifacts, SpinHost};
use portcullis_tests::hosts::suite::ScenarioHost;
use portcullis_tests::scenarios::Target;

/// The test component in the Spin test host on a fresh SQLite file (removed at exit), or
/// `None` (skip) when the artifacts are missing. Settings keep their core names.
struct Spin;

#[async_trait]
impl ScenarioHost for Spin {
    type Guard = (SpinHost, OnExit);

    async fn start(settings: &[(&str, &str)]) -> Option<(Target, Self::Guard)> {
        let built = artifacts()?;
        let (dir, guard) = common::temp_dir("spin");
        let db = dir.join("sqlite_db.db");
        // Outbound HTTP to loopback needs both the setting and the manifest's permission
        // (`allowed_outbound_hosts`), as an operator would grant it.
        let host = if settings.contains(&("cimd__allow_loopback", "true")) {
            SpinHost::start_with_outbound(
                &built,
                &db,
                settings,
                &["http://127.0.0.1:*", "http://localhost:*"],
            )
            .await
        } else {
            SpinHost::start(&built, &db, settings).await
        };
        Some((host.target.clone(), (host, guard)))
    }
}

portcullis_tests::scenario_runner!(Spin);
include!("common/scenario_lists.rs");

/// A configuration the component refuses (a setting that does not parse; a public issuer
/// without a master key) answers 503 problem details on every request, without the reason,
/// which goes to the component log naming the setting.
#[tokio::test]
async fn refused_configuration_answers_503_without_detail() {
    let Some(built) = artifacts() else { return };
    let cases: [&[(&str, &str)]; 2] = [
        &[("code_ttl", "ten minutes")],
        &[("issuer", "https://auth.example.com"), ("master_key", "")],
    ];
    let client = reqwest::Client::new();
    for settings in cases {
        let (dir, _guard) = common::temp_dir("spin-misconfigured");
        let host = SpinHost::start_misconfigured(&built, &dir.join("db.sqlite"), settings).await;
        for path in [
            "/health",
            "/.well-known/oauth-authorization-server",
            "/admin/users",
        ] {
            let r = client
                .get(host.target.url(path))
                .send()
                .await
                .expect("the component answers");
            assert_eq!(r.status().as_u16(), 503, "{settings:?} {path}");
            let body: serde_json::Value = r.json().await.expect("problem details JSON");
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
            let text = body.to_string();
            for leak in ["code_ttl", "ten minutes", "master"] {
                assert!(!text.contains(leak), "{settings:?}: {leak} in {text}");
            }
        }
        let log = host.log_text();
        assert!(
            log.contains("configuration refused") || log.contains("start refused"),
            "{settings:?}: the reason is logged:\n{log}"
        );
    }
}

/// Client ID metadata documents through Spin's outbound HTTP (`wasi:http`, the component's
/// fetcher), with outbound HTTP to loopback allowed as spin.toml's `allowed_outbound_hosts`
/// would (`hosts::cimd`: fetched once and cached in key-value, no redirects, size limit,
/// private addresses refused).
#[tokio::test]
async fn cimd_documents_through_spin_outbound_http() {
    let Some(built) = artifacts() else { return };
    let (dir, _guard) = common::temp_dir("spin-cimd");
    let host = SpinHost::start_with_outbound(
        &built,
        &dir.join("db.sqlite"),
        &[("cimd__allow_loopback", "true")],
        &["http://127.0.0.1:*"],
    )
    .await;
    portcullis_tests::hosts::cimd::cimd_documents_through_outbound_http(&host.target, || {
        host.log_text()
    })
    .await;
}
