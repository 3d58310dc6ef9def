//! Runs the black-box scenario suite against the native host: `portcullis serve` on free
//! loopback ports with a fresh SQLite file, started once per test binary and shared by the
//! scenarios (those in `ISOLATED` get a server of their own). The binary comes from
//! `PORTCULLIS_BIN`, or the `portcullis` in this test's target directory, brought up to date
//! with `cargo build -p portcullis` first (a no-op when nothing changed).
//!
//! Each server runs under a small shell guard that stops it (and removes its directory) when
//! this process exits, however it exits: the guard waits on a pipe only this process holds.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portcullis_tests::scenarios::{self, Target};

/// A running server and the handle that keeps it alive.
struct Server {
    target: Target,
    _guard: Mutex<(Child, ChildStdin)>,
}

fn binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PORTCULLIS_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/native-<hash> -> target/<profile>/portcullis
        let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let bin = dir.join(format!("portcullis{}", std::env::consts::EXE_SUFFIX));
        build(&bin);
        assert!(
            bin.exists(),
            "the portcullis binary is missing at {}: build it with `cargo build -p portcullis` \
             or set PORTCULLIS_BIN",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Brings the binary up to date with `cargo build --workspace --bins` (a no-op when it is), so
/// the scenarios never run against a stale server. Skipped when cargo is not running us.
fn build(bin: &std::path::Path) {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return;
    };
    let profile_dir = bin.parent().expect("profile dir");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut cmd = Command::new(cargo);
    // `--workspace` keeps feature unification identical to `cargo test --workspace`, so this
    // is a no-op after it rather than a rebuild with other features.
    cmd.args(["build", "--quiet", "--workspace", "--bins"])
        .arg("--manifest-path")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build -p portcullis");
    assert!(status.success(), "cargo build -p portcullis failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn random_hex(n: usize) -> String {
    portcullis_tests::scenarios::support::random_b64(n)
}

async fn start_server() -> Server {
    start_server_with(&[]).await
}

/// A server with extra `PORTCULLIS_*` settings.
async fn start_server_with(settings: &[(&str, &str)]) -> Server {
    let mut last_err = String::new();
    for _attempt in 0..3 {
        match try_start(settings).await {
            Ok(s) => return s,
            Err(e) => last_err = e,
        }
    }
    panic!("portcullis serve did not start: {last_err}");
}

async fn try_start(settings: &[(&str, &str)]) -> Result<Server, String> {
    let bin = binary();
    let dir = std::env::temp_dir().join(format!(
        "portcullis-scenarios-{}",
        portcullis_tests::conformance::uid("srv")
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (port, admin_port) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port}");
    let admin_key = random_hex(32);
    let log = dir.join("server.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            r#"dir="$1"; shift; "$@" & pid=$!; read -r _ignored; kill -TERM "$pid" 2>/dev/null; wait "$pid"; rm -rf "$dir""#,
        )
        .arg("portcullis-guard")
        .arg(&dir)
        .arg(&bin)
        .arg("serve");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORTCULLIS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PORTCULLIS_ISSUER", &issuer)
        .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", dir.join("portcullis.db").display()),
        )
        .env("PORTCULLIS_ADMIN_API_KEY", &admin_key)
        .env("PORTCULLIS_MASTER_KEY", random_hex(32))
        // The suite registers many clients from one IP; the limit itself is a unit test.
        .env("PORTCULLIS_REGISTRATION__RATE_LIMIT_PER_MINUTE", "0")
        .env("PORTCULLIS_LOG_FORMAT", "text")
        .envs(settings.iter().copied())
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
    let stdin = child.stdin.take().expect("piped stdin");

    let target = Target::new(
        &issuer,
        &format!("http://127.0.0.1:{admin_port}"),
        &admin_key,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{issuer}/health")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("the server exited with {status}:\n{out}"));
        }
        if Instant::now() > deadline {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            let mut stdin = stdin;
            let _ = stdin.write_all(b"stop\n");
            return Err(format!("no answer on {issuer}/health within 60 s:\n{out}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Server {
        target,
        _guard: Mutex::new((child, stdin)),
    })
}

static SHARED: tokio::sync::OnceCell<Server> = tokio::sync::OnceCell::const_new();

async fn shared() -> Target {
    SHARED.get_or_init(start_server).await.target.clone()
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

static NONCE_REQUIRED: tokio::sync::OnceCell<Server> = tokio::sync::OnceCell::const_new();

/// Scenarios that share one server requiring DPoP nonces (`scenarios::dpop::NONCE_REQUIRED`).
macro_rules! nonce_required {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = NONCE_REQUIRED
                .get_or_init(|| start_server_with(&[("PORTCULLIS_DPOP__REQUIRE_NONCE", "true")]))
                .await;
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

/// Scenarios that need a server of their own (they trip per-IP throttles).
macro_rules! isolated {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = start_server().await;
            scenarios::$module::$name(&server.target).await;
        }
    )*};
}

shared!(
    discovery::discovery_authorization_server_metadata,
    discovery::discovery_openid_configuration,
    discovery::jwks_public_keys_only,
    discovery::m4_protected_resource_metadata_path_inserted,
    discovery::health_and_ready,
    flow::full_flow_public_client,
    flow::f1_refresh_rotation,
    flow::f2_refresh_replay_revokes_family,
    flow::f5_other_client_refresh_refused,
    flow::c2_code_replay_revokes_tokens,
    flow::c3_other_client_cannot_redeem_code,
    flow::c5_failed_client_auth_keeps_code,
    flow::r6_token_redirect_uri_mismatch_keeps_code,
    flow::p4_wrong_verifier_burns_code,
    flow::m1_token_resource_not_covered,
    flow::consent_deny_access_denied,
    flow::client_credentials_confidential_client,
    flow::client_credentials_public_client_refused,
    tokens::v1_other_client_cannot_revoke,
    tokens::v2_revocation_scope,
    tokens::v3_wrong_hint_still_revokes,
    tokens::revocation_requires_client_auth,
    tokens::v4_introspection_requires_client_auth,
    authorize::r1_unregistered_redirect_uri_error_page,
    authorize::r2_unknown_client_error_page,
    authorize::r8_error_redirects_carry_state_and_iss,
    authorize::m3_iss_exactly_once,
    authorize::m1_authorize_invalid_target,
    authorize::p1_missing_code_challenge,
    authorize::p2_challenge_methods_refused,
    hygiene::h1_no_store_on_token_registration_and_errors,
    hygiene::h2_login_and_consent_page_headers,
    hygiene::h2_login_csrf_refused,
    hygiene::h5_consent_replay_refused,
    hygiene::g2_huge_body_refused,
    hygiene::g3_malformed_requests_are_400,
    hygiene::g4_huge_scope_refused,
    hygiene::cors_headers,
    registration::registration_confidential_client,
    registration::registration_defaults,
    registration::g1_registration_refuses_bad_metadata,
    client_auth::a1_basic_header_edge_cases,
    client_auth::a2_credentials_in_two_places,
    client_auth::a3_registered_auth_method_enforced,
    jwt_bearer::jwt_bearer_id_jag_grant,
    jwt_bearer::x5_id_jag_violations_refused,
    jwt_bearer::jwt_bearer_no_policy_access_denied,
    private_key_jwt::a5_private_key_jwt_client_authenticates,
    private_key_jwt::a5_client_assertion_replay_refused,
    private_key_jwt::a5_client_assertion_aud_and_exp,
    private_key_jwt::a2_client_assertion_with_secret_invalid_request,
    private_key_jwt::a3_private_key_jwt_method_enforced,
    private_key_jwt::j1_client_assertion_alg_none_refused,
    private_key_jwt::j2_client_assertion_hs256_with_public_key_refused,
    private_key_jwt::j3_client_assertion_header_keys_ignored,
    private_key_jwt::j4_client_assertion_zero_signature_refused,
    private_key_jwt::j5_client_assertion_time_and_type_enforced,
    private_key_jwt::registration_private_key_jwt_client,
    dpop::dpop_bound_token_carries_cnf_jkt,
    dpop::d1_wrong_typ_refused,
    dpop::d1_alg_mismatch_refused,
    dpop::d1_private_key_in_header_refused,
    dpop::d1_symmetric_key_in_header_refused,
    dpop::d1_missing_jti_refused,
    dpop::d1_htm_mismatch_refused,
    dpop::d1_htu_mismatch_refused,
    dpop::d1_iat_too_old_refused,
    dpop::d1_iat_in_future_refused,
    dpop::d1_two_proofs_refused,
    dpop::d2_replayed_proof_refused,
    dpop::d3_public_client_refresh_token_bound,
    dpop::d3_dpop_jkt_binds_the_code,
    dpop::d3_dpop_bound_client_requires_proof,
    exchange::x1_exchange_foreign_or_revoked_subject_refused,
    exchange::x2_exchange_act_chain_kept_or_extended,
    exchange::x3_exchange_delegation_depth_limit,
    exchange::x4_exchange_scope_cannot_widen,
    exchange::exchange_policy_refused,
    exchange::exchange_revocation_reaches_descendants,
    exchange::exchange_grant_advertised,
);

nonce_required!(
    dpop::d4_nonce_challenge_round_trips,
    dpop::d4_forged_nonce_refused,
);

isolated!(
    hygiene::h4_failed_login_same_message,
    hygiene::h4_repeated_failures_throttled,
    rotation::key_rotation_zero_verification_failures,
);
