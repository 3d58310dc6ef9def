//! Security hardening, black box (docs/security.md): machine tokens only for clients the
//! operator trusts (K1), suspension (K2), per-client rate limits (K3), deleted clients (K4),
//! default scopes (K5), users that are disabled, change their password or are deleted (U1,
//! U2), `redirect_uri` at the token endpoint (R9), no open redirector for self-registered
//! clients (O1, O2), throttling that parallel guesses cannot slip past (T1), and client names
//! that cannot impersonate (E2).

use serde_json::json;

use super::support::*;
use super::Target;

/// A confidential static client (operator-created) with `client_credentials`.
async fn machine_client(t: &Target) -> ClientCreds {
    new_client(t, "client_secret_basic", &["client_credentials"]).await
}

async fn cc(t: &Target, c: &ClientCreds, resource: &str, scope: Option<&str>) -> Resp {
    let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token(
        t,
        &form,
        Auth::Basic(&c.id, c.secret.as_deref().unwrap_or_default()),
    )
    .await
}

fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// K1: with default settings, a client that registered itself gets no token without a user:
/// registering for `client_credentials` is refused, and a self-registered confidential client
/// is refused the grant.
pub async fn k1_self_registered_clients_get_no_machine_token(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let machine = register(
        t,
        json!({
            "client_name": "Anonymous machine",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    machine.assert_oauth_error(400, "invalid_client_metadata");

    let reg = register(
        t,
        json!({
            "client_name": "Anonymous web app",
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    let v = reg.json();
    let (id, secret) = (
        v["client_id"].as_str().expect("client_id"),
        v["client_secret"].as_str().expect("client_secret"),
    );
    for grant in [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let r = token(
            t,
            &[("grant_type", grant), ("resource", &resource)],
            Auth::Basic(id, secret),
        )
        .await;
        assert!(
            r.status == 400 || r.status == 401,
            "{grant}: no token for a self-registered client: {} {}",
            r.status,
            short(&r.body)
        );
        assert!(
            r.json().get("access_token").is_none(),
            "{grant}: {}",
            r.body
        );
    }
}

/// K1, K5: an operator-created machine client gets tokens; a self-registered one only after
/// the operator allows it (`PUT /admin/clients/{id}/policy`); without `scope` a client gets
/// its registered scopes, never the whole catalogue, and one that registered none must ask.
pub async fn k5_default_scopes_are_the_clients_registered_scopes(t: &Target) {
    let resource = new_resource(t, &["mcp:tools", "mcp:read", "mcp:admin"]).await;
    let c = machine_client(t).await;
    let r = cc(t, &c, &resource, None).await;
    let granted = tokens(&r).raw["scope"].clone();
    assert_eq!(
        granted,
        json!("mcp:tools mcp:read"),
        "the registered scopes offered by the resource, not mcp:admin"
    );
    let no_scope = admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({
            "client_name": "Machine without scopes",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        })),
    )
    .await;
    let bare = ClientCreds {
        id: no_scope["client_id"].as_str().expect("id").into(),
        secret: no_scope["client_secret"].as_str().map(str::to_owned),
        redirect_uri: String::new(),
    };
    cc(t, &bare, &resource, None)
        .await
        .assert_oauth_error(400, "invalid_scope");
    tokens(&cc(t, &bare, &resource, Some("mcp:admin")).await);
}

/// K2: suspending a client stops issuance at once and its tokens introspect as inactive;
/// resuming restores both.
pub async fn k2_suspended_client_refused_and_tokens_inactive(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = machine_client(t).await;
    let secret = c.secret.clone().expect("secret");
    let at = tokens(&cc(t, &c, &resource, Some("mcp:tools")).await).access;
    assert!(is_active(t, &at, Auth::Basic(&c.id, &secret)).await);
    let path = format!("/admin/clients/{}", path_segment(&c.id));
    admin_ok(t, reqwest::Method::POST, &format!("{path}/suspend"), None).await;
    cc(t, &c, &resource, Some("mcp:tools"))
        .await
        .assert_oauth_error(400, "unauthorized_client");
    assert!(
        !is_active(t, &at, Auth::Basic(&c.id, &secret)).await,
        "a suspended client's token is inactive"
    );
    let policy = admin_ok(t, reqwest::Method::GET, &format!("{path}/policy"), None).await;
    assert_eq!(policy["suspended"], json!(true), "{policy}");
    admin_ok(t, reqwest::Method::POST, &format!("{path}/resume"), None).await;
    assert!(is_active(t, &at, Auth::Basic(&c.id, &secret)).await);
    tokens(&cc(t, &c, &resource, Some("mcp:tools")).await);
}

/// K3: a client over its rate limit gets 429 `slow_down` with `Retry-After` and an OAuth
/// error body, and the refusal is audited.
pub async fn k3_client_rate_limit_429(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let c = machine_client(t).await;
    let path = format!("/admin/clients/{}/policy", path_segment(&c.id));
    let set = admin_ok(
        t,
        reqwest::Method::PUT,
        &path,
        Some(json!({ "client_credentials": true, "rate_limit_per_minute": 2 })),
    )
    .await;
    assert_eq!(set["effective_rate_limit_per_minute"], json!(2), "{set}");
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(cc(t, &c, &resource, Some("mcp:tools")).await);
    }
    // Two fit in one minute window; a window boundary in between only helps the client, so
    // retry once if the first two straddled it.
    if answers.iter().all(|r| r.status == 200) {
        answers.push(cc(t, &c, &resource, Some("mcp:tools")).await);
    }
    let refused = answers
        .iter()
        .find(|r| r.status == 429)
        .unwrap_or_else(|| panic!("the third request in a minute is refused"));
    refused.assert_oauth_error(429, "slow_down");
    let retry: i64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let audit = admin_ok(
        t,
        reqwest::Method::GET,
        "/admin/audit?action=token.denied&limit=50",
        None,
    )
    .await;
    assert!(
        audit.to_string().contains("slow_down") && audit.to_string().contains(&c.id),
        "the refusal is audited: {audit}"
    );
}

/// K4: deleting a client makes the tokens it holds inactive at introspection (asked by the
/// resource server's own introspection client).
pub async fn k4_deleted_client_tokens_inactive(t: &Target) {
    let rs = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let rs_secret = rs.secret.clone().expect("secret");
    let resource = format!(
        "https://mcp.example.com/{}/mcp",
        crate::conformance::uid("k4")
    );
    new_resource_with(t, &resource, &SCOPES, &[&rs.id]).await;
    let c = machine_client(t).await;
    let at = tokens(&cc(t, &c, &resource, Some("mcp:tools")).await).access;
    assert!(is_active(t, &at, Auth::Basic(&rs.id, &rs_secret)).await);
    admin(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/clients/{}", path_segment(&c.id)),
        None,
    )
    .await;
    assert!(
        !is_active(t, &at, Auth::Basic(&rs.id, &rs_secret)).await,
        "a deleted client's token is inactive"
    );
}

/// U1: a disabled user cannot sign in and their tokens introspect as inactive; enabling
/// lets them sign in again.
pub async fn u1_disabled_user_cannot_sign_in_and_tokens_inactive(t: &Target) {
    let f = Fixture::confidential(t).await;
    let secret = f.client.secret.clone().expect("secret");
    let p = pkce();
    let b = Browser::new();
    let resp = authorize(&b, t, &f.params(&p, "s1"), &f.user, "approve").await;
    let code = resp.get("code").expect("a code").to_owned();
    let tok = f.redeem(t, &code, &p.verifier).await;
    assert!(is_active(t, &tok.access, Auth::Basic(&f.client.id, &secret)).await);
    let user_path = format!("/admin/users/{}", path_segment(&f.user.username));
    admin_ok(
        t,
        reqwest::Method::POST,
        &format!("{user_path}/disable"),
        None,
    )
    .await;
    assert!(!is_active(t, &tok.access, Auth::Basic(&f.client.id, &secret)).await);
    let rt = tok.refresh.clone().expect("a refresh token");
    refresh(t, &rt, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    // A fresh browser cannot sign in.
    let b2 = Browser::new();
    let page = b2
        .follow_local(
            t,
            b2.get(&authorize_url(t, &pairs(&f.params(&p, "s2")))).await,
        )
        .await;
    let after = login(&b2, t, &page, &f.user).await;
    assert!(is_login_page(&after), "a disabled user gets the form again");
    assert!(after.body.contains("incorrect"), "{}", short(&after.body));
    admin_ok(
        t,
        reqwest::Method::POST,
        &format!("{user_path}/enable"),
        None,
    )
    .await;
    let again = authorize(&Browser::new(), t, &f.params(&p, "s3"), &f.user, "approve").await;
    assert!(again.get("code").is_some(), "enabled again");
}

/// U2: changing a user's password ends their sessions and revokes what they granted.
pub async fn u2_password_change_ends_sessions_and_grants(t: &Target) {
    let f = Fixture::confidential(t).await;
    let p = pkce();
    let b = Browser::new();
    let resp = authorize(&b, t, &f.params(&p, "s1"), &f.user, "approve").await;
    let tok = f
        .redeem(t, resp.get("code").expect("a code"), &p.verifier)
        .await;
    admin_ok(
        t,
        reqwest::Method::POST,
        &format!("/admin/users/{}/password", path_segment(&f.user.username)),
        Some(json!({ "password": "a-brand-new-password-42" })),
    )
    .await;
    refresh(t, &tok.refresh.clone().expect("refresh token"), f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
    let secret = f.client.secret.clone().expect("secret");
    assert!(!is_active(t, &tok.access, Auth::Basic(&f.client.id, &secret)).await);
    let page = b
        .follow_local(
            t,
            b.get(&authorize_url(t, &pairs(&f.params(&p, "s2")))).await,
        )
        .await;
    assert!(
        is_login_page(&page),
        "the browser's session ended: {}",
        short(&page.body)
    );
}

/// R9: a code whose authorization request named `redirect_uri` needs it at the token
/// endpoint too (RFC 6749 §4.1.3); the refusal does not burn the code.
pub async fn r9_redirect_uri_required_when_sent_at_authorize(t: &Target) {
    let f = Fixture::confidential(t).await;
    let p = pkce();
    let resp = authorize(&Browser::new(), t, &f.params(&p, "s"), &f.user, "approve").await;
    let code = resp.get("code").expect("a code");
    token(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", &p.verifier),
            ("resource", &f.resource),
        ],
        f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    f.redeem(t, code, &p.verifier).await;
}

/// O1: an error before consent for a client that registered itself is shown at the server,
/// with a link to the client, never an automatic redirect (RFC 9700 §4.11.2).
pub async fn o1_self_registered_client_errors_shown_locally(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let reg = register(
        t,
        json!({
            "client_name": "Self-registered",
            "redirect_uris": [LOOPBACK_REDIRECT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    )
    .await;
    let id = reg.json()["client_id"]
        .as_str()
        .expect("client_id")
        .to_owned();
    let p = pkce();
    let mut params = authz_params(
        &id,
        LOOPBACK_REDIRECT,
        &resource,
        "mcp:tools",
        "st8",
        &p.challenge,
    );
    set_param(&mut params, "response_type", None);
    let r = http()
        .get(authorize_url(t, &pairs(&params)))
        .send()
        .await
        .expect("authorize answers");
    assert_eq!(r.status().as_u16(), 400, "a page, not a redirect");
    assert!(r.headers().get("location").is_none());
    let body = r.text().await.expect("a body");
    assert!(
        body.contains("Return to the application"),
        "{}",
        short(&body)
    );
    assert!(
        body.contains("error=invalid_request") && body.contains("state=st8"),
        "the link carries the error response: {}",
        short(&body)
    );
}

/// O2: a self-registered client cannot use an operating system's protocol handler as its
/// redirect URI; reverse-domain private-use schemes are fine (RFC 8252 §7.1).
pub async fn o2_os_protocol_handler_schemes_refused(t: &Target) {
    for bad in ["ms-settings:privacy", "myapp://callback"] {
        register(
            t,
            json!({
                "redirect_uris": [bad],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }),
        )
        .await
        .assert_oauth_error(400, "invalid_redirect_uri");
    }
    let ok = register(
        t,
        json!({
            "redirect_uris": ["com.example.app:/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

/// E2: a client name with bidirectional or zero-width format characters is refused.
pub async fn e2_client_name_format_characters_refused(t: &Target) {
    for name in ["Goo\u{202e}elgo", "Git\u{200b}Hub"] {
        register(
            t,
            json!({
                "client_name": name,
                "redirect_uris": ["https://app.example.com/cb"],
            }),
        )
        .await
        .assert_oauth_error(400, "invalid_client_metadata");
    }
}

/// T1: parallel wrong passwords for one user cannot exceed the limit (each attempt is
/// reserved atomically in the system of record before it is checked): at most
/// `login.max_failures` (5) are checked, the rest are throttled (429), and then even the right
/// password is throttled for the window.
pub async fn t1_parallel_guesses_cannot_exceed_the_limit(t: &Target) {
    let f = Fixture::public(t).await;
    let p = pkce();
    let mut pages = Vec::new();
    for i in 0..16 {
        let b = Browser::new();
        let page = b
            .follow_local(
                t,
                b.get(&authorize_url(t, &pairs(&f.params(&p, &format!("s{i}")))))
                    .await,
            )
            .await;
        pages.push((b, page));
    }
    let attempts = pages.iter().map(|(b, page)| {
        let username = f.user.username.clone();
        async move { login_with(b, t, page, &username, "wrong-password").await }
    });
    let answers = futures::future::join_all(attempts).await;
    let checked = answers.iter().filter(|r| r.status != 429).count();
    assert!(
        checked <= 5,
        "at most max_failures attempts are checked; {checked} of 16 were"
    );
    assert!(
        answers.iter().any(|r| r.status == 429),
        "the rest are throttled"
    );
    let b = Browser::new();
    let page = b
        .follow_local(
            t,
            b.get(&authorize_url(t, &pairs(&f.params(&p, "last"))))
                .await,
        )
        .await;
    let last = login(&b, t, &page, &f.user).await;
    assert_eq!(
        last.status, 429,
        "the window is used up, even for the right password"
    );
}

/// Deleting a user revokes what they granted: their access and refresh tokens introspect as
/// inactive and the refresh token is refused. Deleting a client ends its grants too: a client
/// registered again under the same id inherits none of them (K4 covers the access tokens).
pub async fn deleting_a_user_or_client_revokes_their_grants(t: &Target) {
    let f = Fixture::confidential(t).await;
    let tok = f.tokens(t).await;
    let rt = tok.refresh.clone().expect("a refresh token");
    let r = admin(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/users/{}", path_segment(&f.user.username)),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!is_active(t, &tok.access, f.auth()).await, "access token");
    assert!(!is_active(t, &rt, f.auth()).await, "refresh token");
    refresh(t, &rt, f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");

    let g = Fixture::public(t).await;
    let rt = g.tokens(t).await.refresh.expect("a refresh token");
    let r = admin(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/clients/{}", path_segment(&g.client.id)),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({
            "client_id": g.client.id,
            "redirect_uris": [g.client.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })),
    )
    .await;
    refresh(t, &rt, g.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
}
