//! Authorization endpoint, consent and the authorization code grant.

use http::StatusCode;

use super::harness::*;
use crate::crypto::token_hash;
use crate::store::repo::{codes, refresh};

#[test]
fn full_flow_issues_rfc9068_token_and_refresh_token() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let (status, body) = h.redeem(PUBLIC, &code);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "mcp:tools mcp:resources");
    assert!(body["refresh_token"].is_string());
    let at = body["access_token"].as_str().unwrap();
    let claims = block(crate::access_token::verify_access_token(&h.server, at))
        .unwrap()
        .expect("valid token");
    assert_eq!(claims.aud, RESOURCE);
    assert_eq!(claims.client_id, PUBLIC);
    assert_eq!(claims.iss, "http://127.0.0.1:9000");
    assert_eq!(claims.exp - claims.iat, 900);
    let header = at.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&crate::crypto::b64_decode(header).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
}

#[test]
fn m3_iss_exactly_once_on_success_and_error() {
    let h = H::new();
    let ok = h.authorize(PUBLIC, &[], true);
    assert_eq!(count_param(&ok, "iss"), 1);
    assert_eq!(query(&ok, "state").as_deref(), Some("xyz"));
    let denied = h.authorize(PUBLIC, &[], false);
    assert_eq!(count_param(&denied, "iss"), 1);
    assert_eq!(query(&denied, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&denied, "state").as_deref(), Some("xyz"));
}

#[test]
fn r8_error_redirect_carries_state_and_iss() {
    let h = H::new();
    let resp = h.get(
        &format!("/oauth/authorize?response_type=code&client_id={PUBLIC}&redirect_uri={REDIRECT}&state=s1&code_challenge_method=S256"),
        "",
    );
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let url = url::Url::parse(&location(&resp)).unwrap();
    assert_eq!(query(&url, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&url, "state").as_deref(), Some("s1"));
    assert_eq!(count_param(&url, "iss"), 1);
}

#[test]
fn r1_unregistered_redirect_is_an_error_page_without_redirect() {
    let h = H::new();
    let resp = h.get(
        &format!("/oauth/authorize?response_type=code&client_id={PUBLIC}&redirect_uri=https://evil.example/cb&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    assert!(body_of(&resp).contains("redirect_uri"));
}

#[test]
fn r2_unknown_client_is_an_error_page() {
    let h = H::new();
    let resp = h.get(
        &format!("/oauth/authorize?response_type=code&client_id=nobody&redirect_uri={REDIRECT}"),
        "",
    );
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
}

#[test]
fn m1_resource_with_fragment_or_unknown_is_invalid_target() {
    let h = H::new();
    for resource in [
        "https://mcp.example.com/mcp#frag",
        "https://other.example.com/mcp",
    ] {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", PUBLIC)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", resource)
            .finish();
        let resp = h.get(&format!("/oauth/authorize?{q}"), "");
        let url = url::Url::parse(&location(&resp)).unwrap();
        assert_eq!(
            query(&url, "error").as_deref(),
            Some("invalid_target"),
            "{resource}"
        );
    }
}

#[test]
fn unknown_scope_is_invalid_scope() {
    let h = H::new();
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", PUBLIC)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scope", "mcp:tools admin")
        .finish();
    let resp = h.get(&format!("/oauth/authorize?{q}"), "");
    let url = url::Url::parse(&location(&resp)).unwrap();
    assert_eq!(query(&url, "error").as_deref(), Some("invalid_scope"));
}

#[test]
fn c3_another_clients_code_is_refused_and_not_burned() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let (status, body) = h.redeem(CONFIDENTIAL, &code);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(h.redeem(PUBLIC, &code).0, StatusCode::OK);
}

#[test]
fn c4_code_valid_one_second_before_expiry_refused_one_second_after() {
    let h = H::new();
    let code = h.code(PUBLIC);
    h.clock.advance(599);
    assert_eq!(h.redeem(PUBLIC, &code).0, StatusCode::OK);
    let late = h.code(PUBLIC);
    h.clock.advance(601);
    let (status, body) = h.redeem(PUBLIC, &late);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[test]
fn c5_failed_client_authentication_does_not_burn_the_code() {
    let h = H::new();
    let code = h.code(CONFIDENTIAL);
    let resp = h.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", CONFIDENTIAL),
            ("client_secret", "wrong"),
        ],
        &[],
    );
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h.redeem(CONFIDENTIAL, &code).0, StatusCode::OK);
}

#[test]
fn c5_resource_mismatch_does_not_burn_the_code() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let (status, body) = h.token(
        PUBLIC,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example.com/mcp"),
        ],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    assert_eq!(h.redeem(PUBLIC, &code).0, StatusCode::OK);
}

#[test]
fn r6_redirect_uri_mismatch_is_invalid_grant_and_code_survives() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let (status, body) = h.token(
        PUBLIC,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example.com/callback/"),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(h.redeem(PUBLIC, &code).0, StatusCode::OK);
}

#[test]
fn p4_wrong_verifier_is_invalid_grant_and_burns_the_code() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let wrong = "A".repeat(43);
    let (status, body) = h.token(
        PUBLIC,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &wrong),
        ],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = h.redeem(PUBLIC, &code);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

fn stored_code(h: &H, code: &str, challenge: Option<&str>, method: Option<&str>) {
    block(crate::store::repo::grants::insert(
        h.sql.as_ref(),
        &crate::store::repo::grants::GrantRow {
            id: format!("g-{code}"),
            client_id: PUBLIC.into(),
            subject: "sub".into(),
            scope: "mcp:tools".into(),
            resource: Some(RESOURCE.into()),
            created_at: h.server.now(),
            revoked_at: None,
        },
    ))
    .unwrap();
    block(codes::insert(
        h.sql.as_ref(),
        &codes::CodeRow {
            code_hash: token_hash(code),
            grant_id: format!("g-{code}"),
            client_id: PUBLIC.into(),
            redirect_uri: REDIRECT.into(),
            subject: "sub".into(),
            scope: "mcp:tools".into(),
            resource: Some(RESOURCE.into()),
            code_challenge: challenge.map(str::to_owned),
            code_challenge_method: method.map(str::to_owned),
            auth_time: h.server.now(),
            expires_at: h.server.now() + 600,
            used_at: None,
            created_at: h.server.now(),
            redirect_uri_sent: true,
        },
    ))
    .unwrap();
}

#[test]
fn p3_code_without_challenge_redeemed_with_verifier_is_invalid_grant() {
    let h = H::new();
    stored_code(&h, "no-challenge-code", None, None);
    let (status, body) = h.redeem(PUBLIC, "no-challenge-code");
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[test]
fn p6_stored_grant_with_corrupt_method_fails_closed() {
    let h = H::new();
    for (i, method) in ["plain", "s256", "", "S512"].iter().enumerate() {
        let code = format!("corrupt-{i}");
        stored_code(&h, &code, Some(CHALLENGE), Some(method));
        let (status, body) = h.redeem(PUBLIC, &code);
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{method}"
        );
    }
}

#[test]
fn c2_replayed_code_is_refused_and_revokes_issued_tokens() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let (_, first) = h.redeem(PUBLIC, &code);
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let at = first["access_token"].as_str().unwrap().to_owned();
    let (status, body) = h.redeem(PUBLIC, &code);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = h.token(
        PUBLIC,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let row = block(refresh::get(h.sql.as_ref(), &token_hash(&rt)))
        .unwrap()
        .unwrap();
    assert!(row.consumed_at.is_some());
    let jti = block(crate::access_token::verify_access_token(&h.server, &at))
        .unwrap()
        .unwrap()
        .jti;
    assert!(block(crate::store::repo::access::is_revoked(h.sql.as_ref(), &jti)).unwrap());
}

#[test]
fn r7_consent_revalidates_redirect_against_client_record() {
    let h = H::new();
    let p = h.begin(PUBLIC, &[]);
    let cookies = h.login_ok(&p);
    // The client's registration changes while the user is on the consent page.
    let mut row = block(crate::store::repo::clients::get(h.sql.as_ref(), PUBLIC))
        .unwrap()
        .unwrap();
    row.metadata.redirect_uris = vec!["https://app.example.com/other".into()];
    block(crate::store::repo::clients::upsert(h.sql.as_ref(), &row)).unwrap();
    let resp = h.decide(&p, &cookies, "approve");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
}

#[test]
fn h5_consent_is_single_use_and_bound_to_the_session() {
    let h = H::new();
    let p = h.begin(PUBLIC, &[]);
    let cookies = h.login_ok(&p);
    // Another browser (no session) cannot answer it.
    let other = h.decide(&p, &format!("pc_csrf={}", p.csrf_cookie), "approve");
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    let first = h.decide(&p, &cookies, "approve");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = h.decide(&p, &cookies, "approve");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.headers().get("location").is_none());
}

#[test]
fn h2_login_with_wrong_csrf_is_refused() {
    let h = H::new();
    let mut p = h.begin(PUBLIC, &[]);
    p.csrf = "forged-token-forged-token-forged-token".into();
    let resp = h.login(&p, "alice", "correct horse battery");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&resp, "pc_session").is_none());
}

#[test]
fn h4_failed_logins_are_indistinguishable_and_throttled() {
    let h = H::new();
    let p = h.begin(PUBLIC, &[]);
    let wrong_pw = h.login(&p, "alice", "nope");
    let no_user = h.login(&p, "mallory", "nope");
    assert_eq!(wrong_pw.status(), no_user.status());
    assert!(body_of(&wrong_pw).contains(crate::endpoints::login::LOGIN_FAILED));
    assert!(body_of(&no_user).contains(crate::endpoints::login::LOGIN_FAILED));
    for _ in 0..4 {
        h.login(&p, "alice", "nope");
    }
    // Now even the right password is throttled.
    let throttled = h.login(&p, "alice", "correct horse battery");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    // After the window it works again.
    h.clock.advance(301);
    let ok = h.login(&p, "alice", "correct horse battery");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
}

#[test]
fn client_credentials_token_for_confidential_client() {
    let h = H::new();
    let (status, body) = h.token(
        CONFIDENTIAL,
        &[
            ("grant_type", "client_credentials"),
            ("resource", RESOURCE),
            ("scope", "mcp:tools"),
        ],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 3600);
    assert!(body.get("refresh_token").is_none());
    let claims = block(crate::access_token::verify_access_token(
        &h.server,
        body["access_token"].as_str().unwrap(),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.aud.as_str(),
            claims.scope.as_str()
        ),
        (CONFIDENTIAL, RESOURCE, "mcp:tools")
    );
}

#[test]
fn public_client_cannot_use_client_credentials() {
    let h = H::new();
    let (status, body) = h.token(PUBLIC, &[("grant_type", "client_credentials")]);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}

#[test]
fn unsupported_grant_type_and_h1_no_store() {
    let h = H::new();
    let resp = h.post_form(
        "/oauth/token",
        &[("grant_type", "password"), ("client_id", PUBLIC)],
        &[],
    );
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let (_, body) = json_of(resp);
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(body["status"], 400);
}
