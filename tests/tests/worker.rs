//! Runs the black-box scenario suite against the Cloudflare Worker: the built test Worker in
//! Miniflare (workerd) on loopback with a fresh D1 database and KV namespace, started once
//! per test binary and shared by the scenarios (those in `isolated!` get a Worker of their
//! own). The runner is `portcullis_tests::hosts::suite`, the lists are every runner's
//! (`common/scenario_lists.rs`).
//!
//! Skips (with a message) when the test Worker has not been built, unless
//! `TEST_REQUIRE_WORKER=1`. Build it with `scripts/build-worker --test`; choose the crypto
//! provider with `PORTCULLIS_WORKER_CRYPTO=webcrypto|rustcrypto`.
//!
//! Also checks that the D1 migration files match the core's migrations.

use async_trait::async_trait;
use portcullis_tests::hosts::suite::{env_name, ScenarioHost};
use portcullis_tests::hosts::worker::{self, WorkerHost};
use portcullis_tests::scenarios::{self, Target};

async fn start(settings: &[(&str, &str)]) -> Option<WorkerHost> {
    let build = worker::build_dir()?;
    Some(WorkerHost::start(&build, settings).await)
}

/// The test Worker in Miniflare with a fresh D1 database and KV namespace, or `None` (skip)
/// when it has not been built.
struct Worker;

#[async_trait]
impl ScenarioHost for Worker {
    type Guard = WorkerHost;

    async fn start(settings: &[(&str, &str)]) -> Option<(Target, WorkerHost)> {
        let vars: Vec<(String, &str)> = settings.iter().map(|(k, v)| (env_name(k), *v)).collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let host = start(&vars).await?;
        Some((host.target.clone(), host))
    }
}

portcullis_tests::scenario_runner!(Worker);
include!("common/scenario_lists.rs");

/// The files under `adapters/cloudflare/migrations/` are exactly what the core's migrations
/// generate (no stale, missing or edited file). `PORTCULLIS_WRITE_D1_MIGRATIONS=1` rewrites
/// them instead.
#[test]
fn d1_migrations_match_the_core() {
    let dir = worker::d1_migrations_dir();
    let expected = worker::d1_migration_files();
    if std::env::var("PORTCULLIS_WRITE_D1_MIGRATIONS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).expect("creating the migrations directory");
        for entry in std::fs::read_dir(&dir).expect("reading the migrations directory") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "sql") {
                std::fs::remove_file(&path).expect("removing an old migration file");
            }
        }
        for (name, sql) in &expected {
            std::fs::write(dir.join(name), sql).expect("writing a migration file");
        }
    }
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("reading adapters/cloudflare/migrations")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".sql"))
        .collect();
    found.sort();
    let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    let hint = "regenerate with PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations_match";
    assert_eq!(
        found, names,
        "D1 migration files differ from the core's migrations; {hint}"
    );
    for (name, sql) in &expected {
        let on_disk = std::fs::read_to_string(dir.join(name)).expect("reading a migration file");
        assert_eq!(
            &on_disk, sql,
            "{name} differs from the core's migration; {hint}"
        );
    }
}

#[test]
fn d1_file_names_are_stable() {
    assert_eq!(
        worker::d1_file_name(1, "initial schema"),
        "0001_initial_schema.sql"
    );
    assert_eq!(
        worker::d1_file_name(12, "DPoP, key pre-publication!"),
        "0012_dpop_key_pre_publication.sql"
    );
}

/// wrangler.toml and the Miniflare runner describe the same Worker: compatibility date,
/// bindings the adapter reads (`DB`, `CACHE`), the production build as `main`, the
/// generated migrations as `migrations_dir`, and a build command without test features.
#[test]
fn wrangler_toml_matches_the_adapter_and_the_runner() {
    let root = worker::repo_root();
    let toml = std::fs::read_to_string(root.join("wrangler.toml")).expect("wrangler.toml");
    let runner =
        std::fs::read_to_string(root.join("tests/worker/run.mjs")).expect("tests/worker/run.mjs");
    let adapter = std::fs::read_to_string(root.join("adapters/cloudflare/src/lib.rs"))
        .expect("adapters/cloudflare/src/lib.rs");
    let value = |text: &str, key: &str| -> String {
        text.lines()
            .map(str::trim)
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| panic!("no {key} in wrangler.toml"))
    };
    let date = value(&toml, "compatibility_date");
    assert!(
        runner.contains(&format!("COMPATIBILITY_DATE = \"{date}\"")),
        "tests/worker/run.mjs must use wrangler.toml's compatibility_date {date}"
    );
    assert_eq!(
        value(&toml, "main"),
        "adapters/cloudflare/build/prod/index.js"
    );
    assert_eq!(
        value(&toml, "migrations_dir"),
        "adapters/cloudflare/migrations"
    );
    let command = value(&toml, "command");
    assert_eq!(
        command, "scripts/build-worker",
        "the production build, no --test"
    );
    for (binding, constant) in [("DB", "DB_BINDING"), ("CACHE", "KV_BINDING")] {
        assert!(
            toml.contains(&format!("binding = \"{binding}\"")),
            "wrangler.toml binds {binding}"
        );
        assert!(
            adapter.contains(&format!("const {constant}: &str = \"{binding}\";")),
            "the adapter reads the {binding} binding"
        );
        assert!(
            runner.contains(&format!("{binding}: {{ type:")),
            "the runner binds {binding}"
        );
    }
}

/// The provider the suite above does not use (`PORTCULLIS_WORKER_CRYPTO` picks that one):
/// a Worker of its own runs the scenarios that sign and verify ES256 (access tokens, client
/// assertions, DPoP proofs, zero signatures), so both providers are covered in every run.
mod other_crypto_provider {
    use super::*;

    static OTHER: tokio::sync::OnceCell<Option<WorkerHost>> = tokio::sync::OnceCell::const_new();

    async fn target() -> Option<Target> {
        let other = match std::env::var("PORTCULLIS_WORKER_CRYPTO").as_deref() {
            Ok("rustcrypto") => "webcrypto",
            _ => "rustcrypto",
        };
        OTHER
            .get_or_init(|| async move { start(&[("PORTCULLIS_CRYPTO_PROVIDER", other)]).await })
            .await
            .as_ref()
            .map(|h| h.target.clone())
    }

    macro_rules! other {
        ($($module:ident :: $name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                let Some(t) = target().await else { return };
                scenarios::$module::$name(&t).await;
            }
        )*};
    }

    other!(
        discovery::jwks_public_keys_only,
        flow::full_flow_public_client,
        flow::client_credentials_confidential_client,
        private_key_jwt::a5_private_key_jwt_client_authenticates,
        private_key_jwt::j4_client_assertion_zero_signature_refused,
        dpop::dpop_bound_token_carries_cnf_jkt,
        dpop::d2_replayed_proof_refused,
        jwt_bearer::jwt_bearer_id_jag_grant,
        exchange::x2_exchange_act_chain_kept_or_extended,
    );
}

/// A configuration the Worker refuses (no issuer; an unknown crypto provider; a public
/// issuer without a master key) answers 503 problem details on every request, without the
/// reason (which goes to the Worker's log only), and is retried, not cached.
#[tokio::test]
async fn refused_configuration_answers_503_without_detail() {
    let Some(build) = worker::build_dir() else {
        return;
    };
    let cases: [&[(&str, &str)]; 3] = [
        &[("PORTCULLIS_ISSUER", "")],
        &[("PORTCULLIS_CRYPTO_PROVIDER", "bogus-provider")],
        &[
            ("PORTCULLIS_ISSUER", "https://auth.example.com"),
            ("PORTCULLIS_MASTER_KEY", ""),
        ],
    ];
    let client = reqwest::Client::new();
    for settings in cases {
        let host = WorkerHost::start_misconfigured(&build, settings).await;
        for path in ["/health", "/.well-known/oauth-authorization-server"] {
            let r = client
                .get(host.target.url(path))
                .send()
                .await
                .expect("the Worker answers");
            assert_eq!(r.status().as_u16(), 503, "{settings:?} {path}");
            let body: serde_json::Value = r.json().await.expect("problem details JSON");
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
            let text = body.to_string();
            for leak in ["PORTCULLIS_", "bogus-provider", "master"] {
                assert!(!text.contains(leak), "{settings:?}: {leak} in {text}");
            }
        }
        assert!(
            host.wait_for_log("configuration refused: PORTCULLIS_", 15)
                .await,
            "{settings:?}: the reason, naming the variable, is logged:\n{}",
            host.log_text()
        );
    }
}

/// Client ID metadata documents through the Workers `fetch` (`hosts::cimd`).
#[tokio::test]
async fn cimd_documents_through_workers_fetch() {
    let Some(build) = worker::build_dir() else {
        return;
    };
    let host = WorkerHost::start(&build, &[("PORTCULLIS_CIMD__ALLOW_LOOPBACK", "true")]).await;
    portcullis_tests::hosts::cimd::cimd_documents_through_outbound_http(&host.target, || {
        host.log_text()
    })
    .await;
}

/// Signing keys are sealed at rest with AES-256-GCM through the crypto provider (WebCrypto's
/// `crypto.subtle` or the core's RustCrypto), in one format: a key sealed by either opens with
/// the other. A Worker on persisted D1 creates its key with one provider; a second Worker on
/// the same D1 and master key, with the other provider, must unseal that key to start and
/// then publishes the same single key.
#[tokio::test]
async fn keys_sealed_by_one_provider_open_with_the_other() {
    use portcullis_tests::scenarios::support::random_b64;
    let Some(build) = worker::build_dir() else {
        return;
    };
    let master = random_b64(32);
    let kids = |host: &WorkerHost| {
        let url = host.target.url("/.well-known/jwks.json");
        async move {
            let jwks: serde_json::Value = reqwest::get(url)
                .await
                .expect("the JWKS answers")
                .json()
                .await
                .expect("the JWKS is JSON");
            jwks["keys"]
                .as_array()
                .expect("a key array")
                .iter()
                .map(|k| k["kid"].as_str().expect("a kid").to_owned())
                .collect::<Vec<_>>()
        }
    };
    for (first, second) in [("webcrypto", "rustcrypto"), ("rustcrypto", "webcrypto")] {
        let state = tempfile::tempdir().expect("a state directory");
        let settings = |provider| {
            [
                ("PORTCULLIS_CRYPTO_PROVIDER", provider),
                ("PORTCULLIS_MASTER_KEY", master.as_str()),
            ]
        };
        let a = WorkerHost::start_persisted(&build, &settings(first), Some(state.path())).await;
        let created = kids(&a).await;
        a.stop();
        drop(a);
        let b = WorkerHost::start_persisted(&build, &settings(second), Some(state.path())).await;
        let opened = kids(&b).await;
        assert_eq!(created.len(), 1, "{first}: one key created: {created:?}");
        assert_eq!(
            opened, created,
            "the {second} Worker started on the key the {first} Worker sealed"
        );
    }
}
