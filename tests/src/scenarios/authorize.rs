//! Authorization endpoint scenarios (RFC 6749 §4.1.2.1, RFC 9207, RFC 8707, RFC 7636):
//! where errors go (R1, R2, R8), `iss` exactly once (M3), resource checks (M1), PKCE at
//! authorize (P1, P2), the client record re-checked at consent (R7).

use serde_json::json;

use super::support::*;
use super::Target;

/// Asserts an error page rendered at the server: no redirect, no code (R1, R2).
fn assert_error_page(r: &Resp, why: &str) {
    assert_eq!(
        r.status,
        400,
        "{why}: expected a 400 error page at the server, got {}: {}",
        r.status,
        short(&r.body)
    );
    assert!(r.header("location").is_none(), "{why}: no redirect");
    assert_eq!(mime(r), "text/html", "{why}: the error is an HTML page");
    assert!(!r.body.contains("code="), "{why}: no code anywhere");
    assert_no_store(r);
}

/// GETs an authorization request without any session.
async fn get_authorize(t: &Target, params: &[(String, String)]) -> Resp {
    Browser::new().get(&authorize_url(t, &pairs(params))).await
}

/// R1: an unregistered `redirect_uri` gives an error page at the server, never a redirect.
pub async fn r1_unregistered_redirect_uri_error_page(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let reg = f.client.redirect_uri.clone();
    for bad in [
        "https://evil.example/cb".to_owned(),
        format!("{reg}/"),
        format!("{reg}?x=1"),
        reg.replace("https://client.example", "https://CLIENT.example:443"),
        reg.to_uppercase(),
        "javascript:alert(1)".to_owned(),
    ] {
        let mut params = f.params(&p, "st");
        set_param(&mut params, "redirect_uri", Some(&bad));
        let r = get_authorize(t, &params).await;
        assert_error_page(&r, &format!("R1 {bad}"));
        assert!(
            r.body.contains("redirect_uri"),
            "R1 {bad}: the page says what is wrong: {}",
            short(&r.body)
        );
    }
}

/// R2: an unknown `client_id` (or none) gives an error page, never a redirect.
pub async fn r2_unknown_client_error_page(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let mut params = f.params(&p, "st");
    set_param(&mut params, "client_id", Some("no-such-client-ever"));
    assert_error_page(&get_authorize(t, &params).await, "R2 unknown client");
    set_param(&mut params, "client_id", None);
    assert_error_page(&get_authorize(t, &params).await, "R2 missing client_id");
}

/// R8 and M3: error redirects carry `state` and exactly one `iss`.
pub async fn r8_error_redirects_carry_state_and_iss(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("response_type", Some("token"), "unsupported_response_type"),
        ("response_type", None, "invalid_request"),
        ("scope", Some("mcp:tools admin:everything"), "invalid_scope"),
        ("code_challenge", None, "invalid_request"),
    ];
    for (name, value, error) in cases {
        let state = random_b64(9);
        let mut params = f.params(&p, &state);
        set_param(&mut params, name, value);
        let r = get_authorize(t, &params).await;
        let resp = AuthzResponse::from_redirect(&r);
        resp.assert_error(t, &f.client.redirect_uri, &state, error);
    }
}

/// M3: `iss` appears exactly once in a successful authorization response too.
pub async fn m3_iss_exactly_once(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let state = random_b64(9);
    let resp = authorize(
        &Browser::new(),
        t,
        &f.params(&p, &state),
        &f.user,
        "approve",
    )
    .await;
    resp.assert_to_client(t, &f.client.redirect_uri, &state);
    assert_eq!(resp.count("code"), 1);
    let denied = authorize(&Browser::new(), t, &f.params(&p, &state), &f.user, "deny").await;
    denied.assert_error(t, &f.client.redirect_uri, &state, "access_denied");
}

/// M1 at authorize: a `resource` with a fragment, or one not registered, is `invalid_target`.
pub async fn m1_authorize_invalid_target(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    for bad in [
        format!("{}#fragment", f.resource),
        "https://unregistered.example/mcp".to_owned(),
        format!("{}/", f.resource),
        "not a uri".to_owned(),
    ] {
        let state = random_b64(9);
        let mut params = f.params(&p, &state);
        set_param(&mut params, "resource", Some(&bad));
        let resp = AuthzResponse::from_redirect(&get_authorize(t, &params).await);
        resp.assert_error(t, &f.client.redirect_uri, &state, "invalid_target");
    }
}

/// P1: a missing `code_challenge` is `invalid_request`.
pub async fn p1_missing_code_challenge(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let state = random_b64(9);
    let mut params = f.params(&p, &state);
    set_param(&mut params, "code_challenge", None);
    set_param(&mut params, "code_challenge_method", None);
    let resp = AuthzResponse::from_redirect(&get_authorize(t, &params).await);
    resp.assert_error(t, &f.client.redirect_uri, &state, "invalid_request");
}

/// P2 and P5: `plain`, a missing, unknown or case-changed method, and malformed challenges
/// are refused with `invalid_request`.
pub async fn p2_challenge_methods_refused(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("code_challenge_method", Some("plain".into())),
        ("code_challenge_method", None),
        ("code_challenge_method", Some("S512".into())),
        ("code_challenge_method", Some("s256".into())),
        ("code_challenge", Some("short".into())),
        ("code_challenge", Some("a".repeat(129))),
        ("code_challenge", Some(format!("{}!", &p.challenge[..42]))),
    ];
    for (name, value) in cases {
        let state = random_b64(9);
        let mut params = f.params(&p, &state);
        set_param(&mut params, name, value.as_deref());
        let r = get_authorize(t, &params).await;
        let resp = AuthzResponse::from_redirect(&r);
        resp.assert_error(t, &f.client.redirect_uri, &state, "invalid_request");
    }
}

/// R7: the consent decision re-checks the client record, trusting nothing that round-tripped
/// through the browser: when the client is registered again under the same id with another
/// redirect URI while the user is on the consent page, approving gives an error page at the
/// server, no redirect, no code.
pub async fn r7_consent_revalidates_redirect_against_client_record(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let b = Browser::new();
    let first = b
        .follow_local(
            t,
            b.get(&authorize_url(t, &pairs(&f.params(&p, "r7")))).await,
        )
        .await;
    let consent_page = login(&b, t, &first, &f.user).await;
    assert!(
        is_consent_page(&consent_page),
        "{}",
        short(&consent_page.body)
    );
    let id: String = url::form_urlencoded::byte_serialize(f.client.id.as_bytes()).collect();
    admin_ok(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/clients/{id}"),
        None,
    )
    .await;
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/clients",
        Some(serde_json::json!({
            "client_id": f.client.id,
            "client_name": "Re-registered client",
            "redirect_uris": [format!("{}/elsewhere", f.client.redirect_uri)],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })),
    )
    .await;
    let r = consent(&b, t, &consent_page, "approve").await;
    assert_error_page(&r, "R7");
    assert!(
        r.body.contains("registration changed"),
        "R7: refused because the registration changed: {}",
        short(&r.body)
    );
}

/// Step-up (MCP scope challenges): a client that registered itself with the scope of its
/// first challenge authorizes again with a wider scope of the same resource and gets it; a
/// client an admin created with a `scope` ceiling does not.
pub async fn step_up_beyond_the_self_registered_scope(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let user = new_user(t).await;
    let redirect = "http://127.0.0.1:9/callback";
    let r = register(
        t,
        json!({
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "scope": SCOPES[0],
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let client_id = r.json()["client_id"].as_str().unwrap().to_owned();
    let wider = SCOPES.join(" ");
    let b = Browser::new();
    let p = pkce();
    let params = authz_params(&client_id, redirect, &resource, &wider, "s1", &p.challenge);
    let resp = authorize(&b, t, &params, &user, "approve").await;
    let code = resp
        .get("code")
        .expect("a code for the wider scope")
        .to_owned();
    let tok = tokens(
        &token(
            t,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &p.verifier),
                ("resource", &resource),
            ],
            Auth::Public(&client_id),
        )
        .await,
    );
    let granted: Vec<&str> = tok.raw["scope"].as_str().unwrap().split(' ').collect();
    for s in SCOPES {
        assert!(granted.contains(&s), "{granted:?}");
    }

    // An admin's ceiling holds.
    let capped = admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({
            "client_name": "Capped",
            "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "scope": SCOPES[0],
        })),
    )
    .await;
    let capped_id = capped["client_id"].as_str().unwrap();
    let params = authz_params(capped_id, redirect, &resource, &wider, "s2", &p.challenge);
    let r = b.get(&authorize_url(t, &pairs(&params))).await;
    AuthzResponse::from_redirect(&r).assert_error(t, redirect, "s2", "invalid_scope");
}

/// Step-up consent shows only what is new: after the user granted `SCOPES[0]`, a request for
/// every scope lists only the others and says the granted one is kept; once the grant is
/// revoked, the next consent lists every scope again.
pub async fn step_up_consent_lists_only_the_new_scopes(t: &Target) {
    let f = Fixture::confidential(t).await;
    let b = Browser::new();
    let p = pkce();
    let first = authz_params(
        &f.client.id,
        &f.client.redirect_uri,
        &f.resource,
        SCOPES[0],
        "s1",
        &p.challenge,
    );
    let code = authorize(&b, t, &first, &f.user, "approve")
        .await
        .get("code")
        .expect("a code for the first scope")
        .to_owned();
    let tok = f.redeem(t, &code, &p.verifier).await;

    let wider = SCOPES.join(" ");
    let all = authz_params(
        &f.client.id,
        &f.client.redirect_uri,
        &f.resource,
        &wider,
        "s2",
        &p.challenge,
    );
    let page = b
        .follow_local(t, b.get(&authorize_url(t, &pairs(&all))).await)
        .await;
    assert!(is_consent_page(&page), "{}", short(&page.body));
    assert!(
        !page.body.contains(&format!("<code>{}</code>", SCOPES[0])),
        "the granted scope is not asked again: {}",
        page.body
    );
    for s in &SCOPES[1..] {
        assert!(
            page.body.contains(&format!("<code>{s}</code>")),
            "the new scope {s} is listed: {}",
            page.body
        );
    }
    assert!(
        page.body.contains("1 permission you already granted"),
        "{}",
        page.body
    );

    // Revoked grants count for nothing: every scope is asked again.
    let rt = tok.refresh.expect("refresh token");
    assert_eq!(
        revoke(t, &rt, Some("refresh_token"), f.auth()).await.status,
        200
    );
    let page = b
        .follow_local(t, b.get(&authorize_url(t, &pairs(&all))).await)
        .await;
    for s in SCOPES {
        assert!(
            page.body.contains(&format!("<code>{s}</code>")),
            "{s} is asked again after revocation: {}",
            page.body
        );
    }
    assert!(!page.body.contains("already granted"), "{}", page.body);
}
