//! Runs the black-box scenario suite against the native host on PostgreSQL: `portcullis serve`
//! with `PORTCULLIS_DATABASE_URL` pointing at a database of its own, created on the server of
//! `TEST_POSTGRES_URL` (`scripts/test` starts a throwaway cluster and sets it) and dropped when
//! the test binary exits. Like `native.rs` (one SQLite file per server), every server gets a
//! fresh database: the shared one, the nonce-requiring one and each isolated one. Without
//! `TEST_POSTGRES_URL` every scenario is skipped (and passes), unless `TEST_REQUIRE_POSTGRES`
//! is set. The scenario lists are those of `native.rs`; `same_scenarios_as_native` fails when
//! the two drift apart.

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

/// The scenario lists here and in `native.rs` name the same scenarios.
#[test]
fn same_scenarios_as_native() {
    let here = common::scenario_lists(include_str!("native_postgres.rs"));
    let native = common::scenario_lists(include_str!("native.rs"));
    assert!(
        here.values().map(Vec::len).sum::<usize>() > 0,
        "no scenario list found in native_postgres.rs"
    );
    assert_eq!(
        here, native,
        "native_postgres.rs must run the scenario lists of native.rs (copy them over)"
    );
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
    jwt_bearer::jwt_bearer_id_jag_grant,
    jwt_bearer::x5_id_jag_violations_refused,
    jwt_bearer::jwt_bearer_no_policy_access_denied,
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
