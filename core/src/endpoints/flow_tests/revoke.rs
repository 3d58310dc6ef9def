//! Revocation and introspection (V1–V4).

use http::StatusCode;

use super::harness::*;

fn tokens(h: &H, client: &str) -> (String, String) {
    let code = h.code(client);
    let (_, body) = h.redeem(client, &code);
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn revoke_as_public(h: &H, token: &str, hint: Option<&str>) -> StatusCode {
    let mut form = vec![("token", token), ("client_id", PUBLIC)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint));
    }
    h.post_form("/oauth/revoke", &form, &[]).status()
}

#[test]
fn v1_client_b_cannot_revoke_client_a_token() {
    let h = H::new();
    let (at, rt) = tokens(&h, PUBLIC);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{CONFIDENTIAL}:{SECRET}")
        )
    );
    for t in [&at, &rt] {
        let resp = h.post_form(
            "/oauth/revoke",
            &[("token", t)],
            &[("authorization", &basic)],
        );
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let (status, _) = h.token(
        PUBLIC,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn v2_revoking_refresh_ends_family_revoking_access_leaves_refresh() {
    let h = H::new();
    let (at, rt) = tokens(&h, CONFIDENTIAL);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{CONFIDENTIAL}:{SECRET}")
        )
    );
    let resp = h.post_form(
        "/oauth/revoke",
        &[("token", &at)],
        &[("authorization", &basic)],
    );
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.introspect(&at)["active"], false);
    assert_eq!(h.introspect(&rt)["active"], true);
    let (status, body) = h.token(
        CONFIDENTIAL,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(status, StatusCode::OK);
    let at2 = body["access_token"].as_str().unwrap().to_owned();
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    let resp = h.post_form(
        "/oauth/revoke",
        &[("token", &rt2)],
        &[("authorization", &basic)],
    );
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.introspect(&rt2)["active"], false);
    assert_eq!(
        h.introspect(&at2)["active"],
        false,
        "access tokens of the family end too"
    );
}

#[test]
fn v3_wrong_token_type_hint_still_finds_the_token() {
    let h = H::new();
    let (at, rt) = tokens(&h, PUBLIC);
    assert_eq!(
        revoke_as_public(&h, &rt, Some("access_token")),
        StatusCode::OK
    );
    let (status, _) = h.token(
        PUBLIC,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        revoke_as_public(&h, &at, Some("refresh_token")),
        StatusCode::OK
    );
    let jti = block(crate::access_token::verify_access_token(&h.server, &at))
        .unwrap()
        .unwrap()
        .jti;
    assert!(block(crate::store::repo::access::is_revoked(h.sql.as_ref(), &jti)).unwrap());
    assert_eq!(revoke_as_public(&h, "not-a-token", None), StatusCode::OK);
}

#[test]
fn v4_introspection_requires_authentication_and_hides_other_clients_tokens() {
    let h = H::new();
    let (at_public, _) = tokens(&h, PUBLIC);
    let (at_conf, rt_conf) = tokens(&h, CONFIDENTIAL);
    // Public clients cannot introspect.
    let resp = h.post_form(
        "/oauth/introspect",
        &[("token", &at_public), ("client_id", PUBLIC)],
        &[],
    );
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // No credentials at all.
    let resp = h.post_form("/oauth/introspect", &[("token", &at_public)], &[]);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Another client's token is inactive to us.
    assert_eq!(
        h.introspect(&at_public),
        serde_json::json!({ "active": false })
    );
    let own = h.introspect(&at_conf);
    assert_eq!(own["active"], true);
    assert_eq!(own["aud"], RESOURCE);
    assert_eq!(own["client_id"], CONFIDENTIAL);
    assert_eq!(h.introspect(&rt_conf)["active"], true);
    assert_eq!(h.introspect("garbage")["active"], false);
    // Expired access tokens are inactive.
    h.clock.advance(901 + 60);
    assert_eq!(h.introspect(&at_conf)["active"], false);
}

fn admin_delete(h: &H, path: &str) -> StatusCode {
    let req = http::Request::builder()
        .method(http::Method::DELETE)
        .uri(path)
        .body(bytes::Bytes::new())
        .unwrap();
    block(crate::admin::route_trusted(&h.server, req)).status()
}

#[test]
fn deleting_a_user_or_client_revokes_their_grants() {
    let h = H::new();
    let (at, rt) = tokens(&h, CONFIDENTIAL);
    assert_eq!(
        admin_delete(&h, "/admin/users/alice"),
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.introspect(&at)["active"], false);
    assert_eq!(h.introspect(&rt)["active"], false);

    let h = H::new();
    let (_, rt) = tokens(&h, PUBLIC);
    assert_eq!(
        admin_delete(&h, &format!("/admin/clients/{PUBLIC}")),
        StatusCode::NO_CONTENT
    );
    let row = block(crate::store::repo::refresh::get(
        h.sql.as_ref(),
        &crate::crypto::token_hash(&rt),
    ))
    .unwrap()
    .unwrap();
    assert!(row.consumed_at.is_some());
}

#[test]
fn v4_client_listed_for_the_audience_may_introspect_other_clients_tokens() {
    let mut cfg = config();
    cfg.resources[0].introspection_clients = vec![CONFIDENTIAL.into()];
    let h = H::with_config(cfg);
    let (at, rt) = tokens(&h, PUBLIC);
    let view = h.introspect(&at);
    assert_eq!(view["active"], true);
    assert_eq!(view["client_id"], PUBLIC);
    assert_eq!(h.introspect(&rt)["active"], true);
}
