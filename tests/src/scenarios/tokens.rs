//! Revocation (RFC 7009) and introspection (RFC 7662) scenarios: SECURITY-CHECKLIST V1–V4
//! (the expiry of V4 is clocked: it moves the server's clock).

use serde_json::json;

use super::support::*;
use super::Target;

/// V1: client B cannot revoke client A's tokens; A's tokens keep working.
pub async fn v1_other_client_cannot_revoke(t: &Target) {
    let f = Fixture::confidential(t).await;
    let other = new_client(
        t,
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    )
    .await;
    let b_auth = Auth::Basic(&other.id, other.secret.as_deref().unwrap());
    let tok = f.tokens(t).await;
    let rt = tok.refresh.clone().expect("refresh token");
    for (token, hint) in [(&tok.access, "access_token"), (&rt, "refresh_token")] {
        let r = revoke(t, token, Some(hint), b_auth).await;
        assert_eq!(
            r.status, 200,
            "RFC 7009 §2.2: the endpoint answers 200: {}",
            r.body
        );
        assert_no_store(&r);
    }
    assert!(
        is_active(t, &tok.access, f.auth()).await,
        "A's access token still works"
    );
    tokens(&refresh(t, &rt, f.auth()).await);
}

/// V2: revoking a refresh token ends its family (and the access tokens issued under it);
/// revoking an access token leaves the refresh token working.
pub async fn v2_revocation_scope(t: &Target) {
    let f = Fixture::confidential(t).await;

    let tok = f.tokens(t).await;
    let r = revoke(t, &tok.access, Some("access_token"), f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !is_active(t, &tok.access, f.auth()).await,
        "the revoked access token is inactive"
    );
    let rotated = tokens(&refresh(t, tok.refresh.as_deref().unwrap(), f.auth()).await);
    assert!(is_active(t, &rotated.access, f.auth()).await);

    let rt = rotated.refresh.clone().expect("rotated refresh token");
    let r = revoke(t, &rt, Some("refresh_token"), f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    refresh(t, &rt, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert!(
        !is_active(t, &rotated.access, f.auth()).await,
        "RFC 7009 §2.1: revoking the refresh token invalidates the grant's access tokens"
    );
    assert!(
        !is_active(t, &rt, f.auth()).await,
        "the refresh token introspects inactive"
    );
}

/// V3: a wrong `token_type_hint` still finds the token; an unknown token answers 200.
pub async fn v3_wrong_hint_still_revokes(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    let r = revoke(t, &tok.access, Some("refresh_token"), f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!is_active(t, &tok.access, f.auth()).await);

    let rt = tok.refresh.clone().expect("refresh token");
    let r = revoke(t, &rt, Some("access_token"), f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    refresh(t, &rt, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");

    let r = revoke(t, "not-a-token-we-issued", None, f.auth()).await;
    assert_eq!(
        r.status, 200,
        "RFC 7009 §2.2: invalid tokens answer 200: {}",
        r.body
    );
    revoke(t, &rt, Some("id_token"), f.auth())
        .await
        .assert_oauth_error(400, "unsupported_token_type");
}

/// Revocation requires the client to authenticate as registered.
pub async fn revocation_requires_client_auth(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    revoke(t, &tok.access, None, Auth::Nothing)
        .await
        .assert_oauth_error(401, "invalid_client");
    revoke(t, &tok.access, None, Auth::Basic(&f.client.id, "wrong"))
        .await
        .assert_oauth_error(401, "invalid_client");
    assert!(is_active(t, &tok.access, f.auth()).await);
}

/// V4: introspection requires client authentication; a client that is not the token's
/// client gets `{"active": false}`; the token's client sees its claims.
pub async fn v4_introspection_requires_client_auth(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;

    let r = introspect(t, &tok.access, Auth::Nothing).await;
    r.assert_oauth_error(401, "invalid_client");
    assert!(
        r.header("www-authenticate").is_some(),
        "RFC 6749 §5.2: WWW-Authenticate"
    );
    introspect(t, &tok.access, Auth::Basic(&f.client.id, "wrong"))
        .await
        .assert_oauth_error(401, "invalid_client");
    let public = new_client(t, "none", &["authorization_code"]).await;
    introspect(t, &tok.access, Auth::Public(&public.id))
        .await
        .assert_oauth_error(401, "invalid_client");

    let other = new_client(t, "client_secret_basic", &["authorization_code"]).await;
    let v = introspect(
        t,
        &tok.access,
        Auth::Basic(&other.id, other.secret.as_deref().unwrap()),
    )
    .await
    .ok_json();
    assert_eq!(
        v,
        json!({ "active": false }),
        "V4: nothing leaks to another client"
    );

    let r = introspect(t, &tok.access, f.auth()).await;
    assert_no_store(&r);
    let v = r.ok_json();
    assert_eq!(v["active"], json!(true), "{v}");
    assert_eq!(v["client_id"], json!(f.client.id));
    assert_eq!(v["sub"], json!(f.user.id));
    assert_eq!(v["scope"], json!("mcp:tools"));
    assert_eq!(v["iss"], json!(t.base));
    assert!(
        v["aud"] == json!(f.resource) || v["aud"] == json!([f.resource]),
        "{v}"
    );
    assert!(v["exp"].as_i64().is_some(), "{v}");
    let rt = tok.refresh.clone().expect("a refresh token");
    assert!(
        is_active(t, &rt, f.auth()).await,
        "the client's own refresh token introspects active"
    );

    let v = introspect(t, "garbage.token.value", f.auth())
        .await
        .ok_json();
    assert_eq!(v, json!({ "active": false }));

    // The resource server, entitled to the token's audience, may introspect it.
    let rs = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let rs_auth = Auth::Basic(&rs.id, rs.secret.as_deref().unwrap());
    assert!(
        !is_active(t, &tok.access, rs_auth).await,
        "not entitled yet"
    );
    new_resource_with(t, &f.resource, &SCOPES, &[&rs.id]).await;
    let v = introspect(t, &tok.access, rs_auth).await.ok_json();
    assert_eq!(
        v["active"],
        json!(true),
        "an entitled resource server sees the token: {v}"
    );
    assert_eq!(v["sub"], json!(f.user.id));
    assert!(
        is_active(t, &rt, rs_auth).await,
        "and the refresh token issued for that audience"
    );
}

/// V4 (clocked): an access token introspects active until its lifetime (15 minutes) is over
/// and inactive from its `exp` on.
pub async fn v4_expired_access_token_inactive(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    t.advance_clock(899);
    assert!(
        is_active(t, &tok.access, f.auth()).await,
        "active one second before it expires"
    );
    t.advance_clock(1);
    assert!(
        !is_active(t, &tok.access, f.auth()).await,
        "an expired access token is inactive"
    );
    let rt = tok.refresh.clone().expect("refresh token");
    assert!(
        is_active(t, &rt, f.auth()).await,
        "the refresh token lives on"
    );
}

/// Revocation is not reuse: a refresh token revoked through RFC 7009 is refused with
/// `invalid_grant` saying it was revoked, and no `refresh.reuse_detected` event is written;
/// a rotated token presented again (F2) still is reuse, with its event (the control that
/// shows the audit query would see one).
pub async fn refresh_with_a_revoked_token_says_revoked_not_reused(t: &Target) {
    let f = Fixture::confidential(t).await;
    let rt = f.tokens(t).await.refresh.expect("refresh token");
    let r = revoke(t, &rt, Some("refresh_token"), f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = refresh(t, &rt, f.auth()).await;
    refused.assert_oauth_error(400, "invalid_grant");
    let description = refused.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        description.contains("revoked") && !description.contains("already been used"),
        "the refusal says the token was revoked: {description}"
    );

    let g = Fixture::confidential(t).await;
    let rt1 = g.tokens(t).await.refresh.expect("refresh token");
    tokens(&refresh(t, &rt1, g.auth()).await);
    refresh(t, &rt1, g.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    let mut seen = 0;
    for _ in 0..50 {
        seen = audit_events(t, "refresh.reuse_detected", &g.client.id)
            .await
            .len();
        if seen > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1, "F2 reuse is audited");
    assert_eq!(
        audit_events(t, "refresh.reuse_detected", &f.client.id)
            .await
            .len(),
        0,
        "a revoked token presented again is not reuse"
    );
}

/// Agent identity: every access token names the agent (client) it was issued to, with its
/// registered name as `agent_name` and how it registered as `client_registration` (`static`
/// for an operator's client, `dynamic` for RFC 7591); introspection reports the same.
pub async fn access_tokens_carry_the_agent_identity(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    let claims = verify_access_token(t, &tok.access, &f.resource).await;
    assert_eq!(claims["client_id"], json!(f.client.id), "{claims}");
    assert_eq!(claims["client_registration"], json!("static"), "{claims}");
    let name = claims["agent_name"].as_str().unwrap_or_default().to_owned();
    assert!(name.starts_with("Scenario client"), "{claims}");
    let seen = introspect(t, &tok.access, f.auth()).await.ok_json();
    assert_eq!(seen["agent_name"], json!(name), "{seen}");
    assert_eq!(seen["client_registration"], json!("static"), "{seen}");

    // A dynamically registered public client.
    let redirect = "http://127.0.0.1:9/agent/callback";
    let r = register(
        t,
        json!({
            "client_name": "Research agent",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let client_id = r.json()["client_id"].as_str().unwrap().to_owned();
    let b = Browser::new();
    let p = pkce();
    let params = authz_params(
        &client_id,
        redirect,
        &f.resource,
        "mcp:tools",
        "s",
        &p.challenge,
    );
    let code = authorize(&b, t, &params, &f.user, "approve")
        .await
        .get("code")
        .expect("a code")
        .to_owned();
    let issued = tokens(
        &token(
            t,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &p.verifier),
                ("resource", &f.resource),
            ],
            Auth::Public(&client_id),
        )
        .await,
    );
    let claims = verify_access_token(t, &issued.access, &f.resource).await;
    assert_eq!(claims["sub"], json!(f.user.id), "{claims}");
    assert_eq!(claims["client_id"], json!(client_id), "{claims}");
    assert_eq!(claims["agent_name"], json!("Research agent"), "{claims}");
    assert_eq!(claims["client_registration"], json!("dynamic"), "{claims}");
}
