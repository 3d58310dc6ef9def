//! The authorization code flow end to end (OAuth 2.1 §4.1, RFC 7636, RFC 8707, RFC 9068,
//! RFC 9207) and its adversarial cases at the token endpoint: code replay (C2), another
//! client's code (C3), code expiry (C4, clocked), failures that must not burn the code (C5,
//! R6), wrong verifier (P4), consent denial, refresh scope (F4) and resource and expiry (F6),
//! and client_credentials (RFC 6749 §4.4).

use serde_json::json;

use super::support::*;
use super::Target;
use crate::conformance::uid;

/// The whole journey of an MCP client: RFC 7591 registration of a public native client →
/// authorize → login → consent → code → token with PKCE → an RFC 9068 access token that
/// verifies against the JWKS → refresh rotation → revocation.
pub async fn full_flow_public_client(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let user = new_user(t).await;
    let reg = register(
        t,
        json!({
            "client_name": "Scenario MCP client",
            "redirect_uris": [LOOPBACK_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    )
    .await;
    assert_eq!(
        reg.status, 201,
        "RFC 7591 §3.2.1: 201 Created: {}",
        reg.body
    );
    assert_no_store(&reg);
    let meta = reg.json();
    let client_id = meta["client_id"].as_str().expect("client_id").to_owned();
    assert!(
        meta.get("client_secret").is_none(),
        "a public client gets no secret: {meta}"
    );
    assert_eq!(meta["token_endpoint_auth_method"], json!("none"));
    assert_eq!(meta["redirect_uris"], json!([LOOPBACK_REDIRECT]));

    // R4: a loopback redirect URI matches on any port.
    let redirect = "http://127.0.0.1:51234/callback";
    let b = Browser::new();
    let p = pkce();
    let state = random_b64(12);
    let params = authz_params(
        &client_id,
        redirect,
        &resource,
        "mcp:tools",
        &state,
        &p.challenge,
    );
    let first = b
        .follow_local(t, b.get(&authorize_url(t, &pairs(&params))).await)
        .await;
    assert!(
        is_login_page(&first),
        "an anonymous browser sees the login page: {}",
        short(&first.body)
    );
    assert_eq!(first.status, 200, "the login page is served with 200");
    let consent_page = login(&b, t, &first, &user).await;
    assert!(
        is_consent_page(&consent_page),
        "after login, the consent page: {}",
        short(&consent_page.body)
    );
    assert!(
        consent_page.body.contains("Scenario MCP client"),
        "consent shows the client name"
    );
    assert!(
        consent_page.body.contains("mcp:tools"),
        "consent shows the scopes"
    );
    assert!(
        consent_page.body.contains(&resource),
        "consent shows the resource"
    );
    assert!(
        consent_page.body.contains("127.0.0.1"),
        "consent shows the redirect host"
    );
    let resp = AuthzResponse::from_redirect(&consent(&b, t, &consent_page, "approve").await);
    resp.assert_to_client(t, redirect, &state);
    let code = resp.get("code").expect("a code").to_owned();

    let r = exchange(
        t,
        &code,
        redirect,
        &p.verifier,
        Some(&resource),
        Auth::Public(&client_id),
    )
    .await;
    let tok = tokens(&r);
    assert_eq!(
        tok.raw["scope"],
        json!("mcp:tools"),
        "the granted scope is returned"
    );
    let rt1 = tok
        .refresh
        .clone()
        .expect("a public client that registered refresh_token gets one");
    let claims = verify_access_token(t, &tok.access, &resource).await;
    assert_eq!(claims["iss"], json!(t.base));
    assert_eq!(
        claims["sub"],
        json!(user.id),
        "sub is the user's subject id"
    );
    assert_eq!(claims["client_id"], json!(client_id));
    assert_eq!(claims["scope"], json!("mcp:tools"));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(claims["nbf"].as_i64().unwrap() <= iat + 1);
    assert_eq!(
        exp - iat,
        900,
        "user tokens live 15 minutes by default (access_token_ttl)"
    );
    assert_eq!(
        tok.raw["expires_in"],
        json!(900),
        "expires_in is the token's lifetime"
    );

    // F1: rotation.
    let tok2 = tokens(&refresh(t, &rt1, Auth::Public(&client_id)).await);
    let rt2 = tok2
        .refresh
        .clone()
        .expect("rotation returns a new refresh token");
    assert_ne!(rt1, rt2);
    let claims2 = verify_access_token(t, &tok2.access, &resource).await;
    assert_ne!(
        claims2["jti"], claims["jti"],
        "each access token has its own jti"
    );
    assert_eq!(claims2["sub"], json!(user.id));

    // Revocation ends the family (V2).
    let rv = revoke(t, &rt2, Some("refresh_token"), Auth::Public(&client_id)).await;
    assert_eq!(rv.status, 200, "RFC 7009 §2.2: {}", rv.body);
    refresh(t, &rt2, Auth::Public(&client_id))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// Without `scope` at authorize, the grant is the resource's whole catalog within the
/// client's registered scope: everything for a client that registered none, only `mcp:tools`
/// for one registered with just that.
pub async fn authorize_without_scope_grants_the_catalog_within_the_client_scope(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let user = new_user(t).await;
    for (registered, expected) in [
        (None, vec!["mcp:read", "mcp:tools"]),
        (Some("mcp:tools"), vec!["mcp:tools"]),
    ] {
        let redirect = format!("https://client.example/{}/cb", uid("cb"));
        let mut meta = json!({
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none",
        });
        if let Some(scope) = registered {
            meta["scope"] = json!(scope);
        }
        let c = admin_ok(t, reqwest::Method::POST, "/admin/clients", Some(meta)).await;
        let id = c["client_id"].as_str().expect("client_id").to_owned();
        let p = pkce();
        let mut params = authz_params(&id, &redirect, &resource, "", "st", &p.challenge);
        set_param(&mut params, "scope", None);
        let resp = authorize(&Browser::new(), t, &params, &user, "approve").await;
        let code = resp.get("code").expect("a code");
        let r = exchange(
            t,
            code,
            &redirect,
            &p.verifier,
            Some(&resource),
            Auth::Public(&id),
        )
        .await;
        let tok = tokens(&r);
        let mut granted: Vec<&str> = tok.raw["scope"].as_str().unwrap_or("").split(' ').collect();
        granted.sort_unstable();
        assert_eq!(granted, expected, "registered {registered:?}: {}", tok.raw);
    }
}

/// F1: each refresh returns a new refresh token and consumes the old one.
pub async fn f1_refresh_rotation(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    let rt1 = tok.refresh.expect("refresh token");
    let tok2 = tokens(&refresh(t, &rt1, f.auth()).await);
    let rt2 = tok2.refresh.expect("a rotated refresh token");
    assert_ne!(rt1, rt2, "rotation issues a new refresh token");
    verify_access_token(t, &tok2.access, &f.resource).await;
    let tok3 = tokens(&refresh(t, &rt2, f.auth()).await);
    assert!(tok3.refresh.is_some());
    assert!(is_active(t, &tok3.access, f.auth()).await);
}

/// F2: replaying a consumed refresh token revokes the whole family, new tokens included.
pub async fn f2_refresh_replay_revokes_family(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    let rt1 = tok.refresh.expect("refresh token");
    let tok2 = tokens(&refresh(t, &rt1, f.auth()).await);
    let rt2 = tok2.refresh.clone().expect("rotated");
    assert!(is_active(t, &tok2.access, f.auth()).await);

    refresh(t, &rt1, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    refresh(t, &rt2, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert!(
        !is_active(t, &tok2.access, f.auth()).await,
        "F2: the access token issued by the family is revoked too"
    );
    assert!(!is_active(t, &tok.access, f.auth()).await);
}

/// F5: another client presenting the token gets `invalid_grant`; the owner's token still works.
pub async fn f5_other_client_refresh_refused(t: &Target) {
    let f = Fixture::confidential(t).await;
    let other = new_client(
        t,
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    )
    .await;
    let rt = f.tokens(t).await.refresh.expect("refresh token");
    refresh(
        t,
        &rt,
        Auth::Basic(&other.id, other.secret.as_deref().unwrap()),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    tokens(&refresh(t, &rt, f.auth()).await);
}

/// C2: a replayed code is refused, and the tokens already issued from it are revoked.
pub async fn c2_code_replay_revokes_tokens(t: &Target) {
    let f = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let ok = exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&f.resource),
        f.auth(),
    )
    .await;
    let tok = tokens(&ok);
    let replay = exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&f.resource),
        f.auth(),
    )
    .await;
    replay.assert_oauth_error(400, "invalid_grant");
    refresh(t, tok.refresh.as_deref().expect("refresh token"), f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert!(
        !is_active(t, &tok.access, f.auth()).await,
        "C2: the access token issued from a replayed code is revoked"
    );
}

/// C3: client B cannot redeem client A's code, and its attempt does not burn the code.
pub async fn c3_other_client_cannot_redeem_code(t: &Target) {
    let f = Fixture::confidential(t).await;
    let other = new_client(
        t,
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    )
    .await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&f.resource),
        Auth::Basic(&other.id, other.secret.as_deref().unwrap()),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    f.redeem(t, &code, &p.verifier).await;
}

/// C5: failed client authentication at the token endpoint does not burn the code.
pub async fn c5_failed_client_auth_keeps_code(t: &Target) {
    let f = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let bad = exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&f.resource),
        Auth::Basic(&f.client.id, "wrong-secret"),
    )
    .await;
    bad.assert_oauth_error(401, "invalid_client");
    assert!(
        bad.header("www-authenticate").is_some(),
        "RFC 6749 §5.2: WWW-Authenticate"
    );
    tokens(
        &exchange(
            t,
            &code,
            &f.client.redirect_uri,
            &p.verifier,
            Some(&f.resource),
            f.auth(),
        )
        .await,
    );
}

/// R6: a token-endpoint `redirect_uri` that differs from the authorize one is
/// `invalid_grant`, and the code is not consumed.
pub async fn r6_token_redirect_uri_mismatch_keeps_code(t: &Target) {
    let f = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let wrong = format!("{}/", f.client.redirect_uri);
    exchange(t, &code, &wrong, &p.verifier, Some(&f.resource), f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    tokens(
        &exchange(
            t,
            &code,
            &f.client.redirect_uri,
            &p.verifier,
            Some(&f.resource),
            f.auth(),
        )
        .await,
    );
}

/// P4: a wrong verifier is `invalid_grant`, and the code is burned.
pub async fn p4_wrong_verifier_burns_code(t: &Target) {
    let f = Fixture::public(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let other = pkce();
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &other.verifier,
        Some(&f.resource),
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&f.resource),
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
}

/// M1 at the token endpoint: a `resource` the grant does not cover is `invalid_target`; the
/// refusal does not burn the code (C5).
pub async fn m1_token_resource_not_covered(t: &Target) {
    let f = Fixture::confidential(t).await;
    let elsewhere = new_resource(t, &SCOPES).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&elsewhere),
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_target");
    let frag = format!("{}#frag", f.resource);
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &p.verifier,
        Some(&frag),
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_target");
    f.redeem(t, &code, &p.verifier).await;
}

/// Consent denied: `access_denied` back to the client, with state and iss (RFC 6749 §4.1.2.1).
pub async fn consent_deny_access_denied(t: &Target) {
    let f = Fixture::public(t).await;
    let b = Browser::new();
    let p = pkce();
    let state = random_b64(12);
    let resp = authorize(&b, t, &f.params(&p, &state), &f.user, "deny").await;
    resp.assert_error(t, &f.client.redirect_uri, &state, "access_denied");
}

/// client_credentials (RFC 6749 §4.4): a confidential client gets an RFC 9068 token for
/// the resource, valid about an hour, and no refresh token.
pub async fn client_credentials_confidential_client(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = c.secret.as_deref().unwrap();
    let r = token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
            ("scope", "mcp:read"),
        ],
        Auth::Basic(&c.id, secret),
    )
    .await;
    let tok = tokens(&r);
    assert!(tok.refresh.is_none(), "RFC 6749 §4.4.3: no refresh token");
    assert_eq!(tok.raw["scope"], json!("mcp:read"));
    assert_eq!(tok.raw["expires_in"], json!(3600));
    let claims = verify_access_token(t, &tok.access, &resource).await;
    assert_eq!(claims["client_id"], json!(c.id));
    assert_eq!(
        claims["sub"],
        json!(c.id),
        "RFC 9068 §2.2: sub is the client for client_credentials"
    );
    assert_eq!(claims["scope"], json!("mcp:read"));
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(
        life, 3600,
        "client_credentials tokens live one hour by default"
    );

    // client_secret_post is refused for a client_secret_basic client (A3).
    token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
        ],
        Auth::Post(&c.id, secret),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    // A scope outside the resource's catalog.
    token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
            ("scope", "admin:all"),
        ],
        Auth::Basic(&c.id, secret),
    )
    .await
    .assert_oauth_error(400, "invalid_scope");
    // An unregistered resource.
    token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://unknown.example/mcp"),
        ],
        Auth::Basic(&c.id, secret),
    )
    .await
    .assert_oauth_error(400, "invalid_target");
    // A grant the client did not register.
    token(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", &c.redirect_uri),
            ("code_verifier", &pkce().verifier),
        ],
        Auth::Basic(&c.id, secret),
    )
    .await
    .assert_oauth_error(400, "unauthorized_client");
    // Unsupported grant types.
    for g in ["password", "implicit", "urn:example:nope"] {
        let r = token(t, &[("grant_type", g)], Auth::Basic(&c.id, secret)).await;
        r.assert_oauth_error(400, "unsupported_grant_type");
        assert_eq!(
            r.json()["status"],
            json!(400),
            "RFC 9457 problem details carry the status: {}",
            r.body
        );
    }
}

/// A public client may not use client_credentials (RFC 6749 §4.4: confidential clients only).
pub async fn client_credentials_public_client_refused(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "none", &["authorization_code"]).await;
    token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
        ],
        Auth::Public(&c.id),
    )
    .await
    .assert_oauth_error(400, "unauthorized_client");
}

/// F4: a refresh may narrow the scope, never widen it: the narrowed family stays narrow.
pub async fn f4_scope_can_shrink_never_grow(t: &Target) {
    let f = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let mut params = f.params(&p, "f4");
    set_param(&mut params, "scope", Some("mcp:tools mcp:read"));
    let resp = authorize(&b, t, &params, &f.user, "approve").await;
    let tok = f
        .redeem(t, resp.get("code").expect("a code"), &p.verifier)
        .await;
    let mut granted: Vec<&str> = tok.raw["scope"].as_str().unwrap_or("").split(' ').collect();
    granted.sort_unstable();
    assert_eq!(granted, ["mcp:read", "mcp:tools"], "{}", tok.raw);
    let narrowed = tokens(
        &token(
            t,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tok.refresh.as_deref().expect("refresh token"),
                ),
                ("scope", "mcp:tools"),
            ],
            f.auth(),
        )
        .await,
    );
    assert_eq!(narrowed.raw["scope"], json!("mcp:tools"));
    let claims = verify_access_token(t, &narrowed.access, &f.resource).await;
    assert_eq!(claims["scope"], json!("mcp:tools"));
    let rt2 = narrowed.refresh.expect("a rotated refresh token");
    token(
        t,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("scope", "mcp:tools mcp:read"),
        ],
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_scope");
}

/// F6: the resource is re-validated at refresh: once the operator removed it, the refresh is
/// `invalid_target`.
pub async fn f6_removed_resource_refused_at_refresh(t: &Target) {
    let f = Fixture::confidential(t).await;
    let rt = f.tokens(t).await.refresh.expect("refresh token");
    let uri: String = url::form_urlencoded::byte_serialize(f.resource.as_bytes()).collect();
    admin_ok(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/resources?uri={uri}"),
        None,
    )
    .await;
    refresh(t, &rt, f.auth())
        .await
        .assert_oauth_error(400, "invalid_target");
}

/// C4 (clocked): a code lives at most 10 minutes: redeemable one second before it expires,
/// refused one second after.
pub async fn c4_code_valid_one_second_before_expiry_refused_one_second_after(t: &Target) {
    let f = Fixture::public(t).await;
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    t.advance_clock(599);
    f.redeem(t, &code, &p.verifier).await;
    let late = pkce();
    let code = f.code(t, &b, &late).await;
    t.advance_clock(601);
    exchange(
        t,
        &code,
        &f.client.redirect_uri,
        &late.verifier,
        Some(&f.resource),
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
}

/// F6 (clocked): a refresh token is refused once its lifetime (30 days by default) is over.
pub async fn f6_expired_refresh_token_refused(t: &Target) {
    let f = Fixture::confidential(t).await;
    let early = f.tokens(t).await.refresh.expect("refresh token");
    let late = f.tokens(t).await.refresh.expect("refresh token");
    t.advance_clock(30 * 24 * 3600 - 1);
    tokens(&refresh(t, &early, f.auth()).await);
    t.advance_clock(2);
    refresh(t, &late, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
}
