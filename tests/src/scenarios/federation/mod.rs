//! Federation, black box: a person signs in through an OIDC connector to a real
//! node-oidc-provider ([`idp`], RS256 ID tokens, its own login and consent pages) in a real
//! browser, and the MCP client's authorization completes (consent, code, token whose `sub` is
//! the linked user); the refusals (an ID token with a wrong `nonce`, a wrong `aud`, or expired,
//! each signed by the IdP's real key; a group not allowed; an unverified email; Entra's groups
//! overage; taking over a local account by email); and the admin API of connectors and
//! identities.

pub mod idp;
mod refresh;
mod vault_sign_in;

pub use refresh::*;
pub use vault_sign_in::*;

use serde_json::{json, Value};

use super::support::*;
use super::Target;
use crate::chromium::{app::ClientApp, Chromium};
use crate::conformance::uid;
use idp::idp;

/// The IdP runs on loopback: outbound calls to loopback allowed (`cimd.allow_loopback`, the
/// one loopback switch).
pub const SETTINGS: &[(&str, &str)] = &[("cimd__allow_loopback", "true")];

/// A connector on the host, registered as a client at the IdP.
struct Connector {
    id: String,
    name: String,
    idp_client_id: String,
}

/// Declares a connector (its JSON with `extra` merged in) and registers it at the IdP.
async fn connector(t: &Target, extra: Value) -> Connector {
    let idp = idp().await;
    let id = uid("oidc").to_lowercase().replace(['.', ' '], "-");
    let name = format!("Test IdP {}", &id[id.len().saturating_sub(6)..]);
    let redirect_uri = t.url(&format!("/oauth/connectors/{id}/callback"));
    let (client_id, secret) = idp.register(&redirect_uri, "client_secret_basic").await;
    let mut body = json!({
        "id": id, "name": name, "issuer": idp.issuer,
        "client_id": client_id, "client_secret": secret,
        "scopes": ["email", "profile", "groups"],
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let r = admin(t, reqwest::Method::POST, "/admin/connectors", Some(body)).await;
    assert_eq!(r.status, 201, "creating a connector: {}", r.body);
    let v = r.json();
    assert_eq!(v["redirect_uri"], json!(redirect_uri), "{v}");
    assert!(!r.body.contains(&secret), "the client secret is write-only");
    Connector {
        id,
        name,
        idp_client_id: client_id,
    }
}

/// A browser, a resource and a registered MCP client whose redirect URI is a loopback app.
struct Journey {
    browser: Chromium,
    app: ClientApp,
    resource: String,
    client_id: String,
    scope: String,
}

/// One authorization request.
struct Request {
    url: String,
    state: String,
    verifier: String,
}

impl Journey {
    async fn start(t: &Target) -> Option<Self> {
        let resource = new_resource(t, &["mcp:tools"]).await;
        Self::start_at(t, resource, "mcp:tools").await
    }

    /// A journey asking for `scope` at `resource` (which exists).
    async fn start_at(t: &Target, resource: String, scope: &str) -> Option<Self> {
        let browser = Chromium::start().await?;
        let app = ClientApp::start();
        let client_id =
            register_native_client(t, "Federated MCP client", &app.redirect_uri()).await;
        Some(Self {
            browser,
            app,
            resource,
            client_id,
            scope: scope.to_owned(),
        })
    }

    /// Opens a new authorization request and presses "Sign in with {name}".
    async fn sign_in_with(&mut self, t: &Target, c: &Connector) -> Request {
        let p = pkce();
        let state = random_b64(12);
        let params = authz_params(
            &self.client_id,
            &self.app.redirect_uri(),
            &self.resource,
            &self.scope,
            &state,
            &p.challenge,
        );
        let req = Request {
            url: authorize_url(t, &pairs(&params)),
            state,
            verifier: p.verifier,
        };
        let b = &mut self.browser;
        b.goto(&req.url).await;
        assert_eq!(b.heading().await, "Sign in", "{}", b.text().await);
        let text = b.text().await;
        assert!(
            text.contains(&format!("Sign in with {}", c.name)),
            "the sign-in page offers the connector: {text}"
        );
        b.assert_no_problems("the sign-in page with connectors")
            .await;
        b.click(&format!("a[href*=\"/oauth/connectors/{}/start\"]", c.id))
            .await;
        req
    }

    /// At the IdP: its login form (any password) when asked, then its consent; returns when
    /// the browser is back at the host. The IdP's development pages import a web font, which
    /// cannot load here, and have no favicon: those console errors (and only those, about the
    /// IdP's own resources) are dropped.
    async fn at_idp(&mut self, login: &str) -> Vec<crate::chromium::LogEntry> {
        let idp_issuer = idp().await.issuer.clone();
        let idp_origin = url::Url::parse(&idp_issuer).unwrap().origin();
        let b = &mut self.browser;
        for _ in 0..4 {
            if b.url().await.origin() != idp_origin {
                break;
            }
            if b.has("input[name=login]").await {
                b.fill("input[name=login]", login).await;
                b.fill("input[name=password]", "any password").await;
            }
            b.click("button[type=submit]").await;
        }
        assert_ne!(
            b.url().await.origin(),
            idp_origin,
            "the IdP sent the browser back: {}",
            b.text().await
        );
        let problems = b.take_problems().await;
        problems
            .into_iter()
            .filter(|p| {
                !p.message.contains("fonts.googleapis.com") && !p.message.contains(&idp_issuer)
            })
            .collect()
    }

    /// [`Self::at_idp`], expecting the host's next page to have no problem.
    async fn through_idp(&mut self, login: &str) {
        let ours = self.at_idp(login).await;
        assert!(ours.is_empty(), "the browser reported problems: {ours:#?}");
    }

    /// [`Self::at_idp`], expecting the host's "Sign-in failed" page saying `says`: its 403
    /// document is the only problem the browser may report.
    async fn refused_after_idp(&mut self, login: &str, says: &str) {
        let ours = self.at_idp(login).await;
        let b = &mut self.browser;
        assert_eq!(b.heading().await, "Sign-in failed", "{}", b.text().await);
        let text = b.text().await;
        assert!(text.contains(says), "the page says why: {text}");
        let unexpected: Vec<_> = ours
            .iter()
            .filter(|p| !(p.message.contains("/callback?") && p.message.contains("status of 403")))
            .collect();
        assert!(unexpected.is_empty(), "problems: {unexpected:#?}");
    }

    /// On the host's consent page: Approve, then redeem the code; the access token's claims.
    async fn approve_and_redeem(&mut self, t: &Target, req: &Request) -> Value {
        let tok = self.approve_and_redeem_tokens(t, req).await;
        verify_access_token(t, &tok.access, &self.resource).await
    }

    /// On the host's consent page: Approve, then redeem the code; the token response.
    async fn approve_and_redeem_tokens(&mut self, t: &Target, req: &Request) -> Tokens {
        let b = &mut self.browser;
        let heading = b.heading().await;
        assert!(
            heading.starts_with("Authorize"),
            "the consent page follows the IdP: {heading}: {}",
            b.text().await
        );
        b.assert_no_problems("the consent page after federation")
            .await;
        let before = self.app.callbacks().len();
        b.click("button[value=approve]").await;
        let callbacks = self.app.callbacks();
        assert_eq!(callbacks.len(), before + 1, "the client got one response");
        let params: std::collections::HashMap<String, String> =
            callbacks[before].query_pairs().into_owned().collect();
        assert_eq!(params.get("state"), Some(&req.state));
        let code = params.get("code").expect("a code");
        let r = exchange(
            t,
            code,
            &self.app.redirect_uri(),
            &req.verifier,
            Some(&self.resource),
            Auth::Public(&self.client_id),
        )
        .await;
        tokens(&r)
    }
}

async fn identities(t: &Target, connector: &str) -> Vec<Value> {
    let v = admin_ok(
        t,
        reqwest::Method::GET,
        &format!("/admin/identities?connector={connector}"),
        None,
    )
    .await;
    v["identities"].as_array().cloned().unwrap_or_default()
}

async fn login_reasons(t: &Target) -> Vec<String> {
    let v = admin_ok(t, reqwest::Method::GET, "/admin/audit?action=login", None).await;
    v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect()
}

/// A person signs in through the IdP (its own login and consent pages), approves the MCP
/// client, and the client's code becomes a token for the user linked to that identity; a
/// second authorization in the same browser needs no IdP round trip; the identity is listed
/// and can be unlinked.
pub async fn federation_sign_in_in_a_browser(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let c = connector(t, json!({})).await;
    let login = uid("alice").to_lowercase();
    idp()
        .await
        .account(
            json!({ "sub": login, "email": format!("{login}@example.test"),
                         "groups": ["eng"] }),
        )
        .await;
    let req = j.sign_in_with(t, &c).await;
    j.through_idp(&login).await;
    j.browser
        .screenshot(&crate::chromium::screenshot_path("federated-consent"))
        .await;
    let text = j.browser.text().await;
    assert!(
        text.contains(&format!("{}:{login}", c.id)),
        "signed in as the federated user: {text}"
    );
    let sub = j.approve_and_redeem(t, &req).await["sub"].clone();
    let linked = identities(t, &c.id).await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["subject"], json!(login));
    assert_eq!(
        linked[0]["user_id"],
        json!(sub),
        "the token is the linked user's"
    );
    assert_eq!(linked[0]["email"], json!(format!("{login}@example.test")));

    // Signed in now: the next authorization goes straight to consent.
    let p = pkce();
    let params = authz_params(
        &j.client_id,
        &j.app.redirect_uri(),
        &j.resource,
        "mcp:tools",
        "s2",
        &p.challenge,
    );
    j.browser.goto(&authorize_url(t, &pairs(&params))).await;
    assert!(j.browser.heading().await.starts_with("Authorize"));

    let path = format!("/admin/identities/{}/{login}", c.id);
    let r = admin(t, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(identities(t, &c.id).await.is_empty());
    j.browser.finish("a federated sign-in").await;
}

/// ID tokens the IdP's real key signed but that are not for this login: a wrong `nonce`, a
/// wrong `aud`, an expired one. Each ends on the host's error page, with no session and an
/// audit row naming the reason.
pub async fn federation_id_token_refusals_in_a_browser(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let login = uid("bob").to_lowercase();
    for (mode, says, reason) in [
        ("nonce", "nonce does not match", "id_token_nonce"),
        ("aud", "not for this application", "id_token_aud"),
        ("expired", "expired", "id_token_expired"),
    ] {
        let c = connector(t, json!({})).await;
        idp().await.tamper(&c.idp_client_id, mode).await;
        j.sign_in_with(t, &c).await;
        j.refused_after_idp(&login, says).await;
        assert!(
            identities(t, &c.id).await.is_empty(),
            "{mode}: nobody linked"
        );
        assert!(
            login_reasons(t).await.iter().any(|r| r == reason),
            "{mode}: the audit row says {reason}"
        );
    }
    j.browser.finish("ID token refusals").await;
}

/// The admission rules: a person outside `allowed_groups`, one whose email is not verified
/// where `allowed_email_domains` needs it, and one whose groups overflow into Entra-style
/// `_claim_sources` are refused with a page saying so.
pub async fn federation_admission_refusals_in_a_browser(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let idp = idp().await;
    let cases = [
        (
            json!({ "allowed_groups": ["eng"] }),
            json!({ "groups": ["sales"] }),
            "not in a group",
            "group_not_allowed",
        ),
        (
            json!({ "allowed_email_domains": ["example.test"] }),
            json!({ "email_verified": false }),
            "not verified",
            "email_not_verified",
        ),
        (
            json!({ "allowed_groups": ["eng"] }),
            json!({ "overage": true }),
            "too many groups",
            "groups_overage",
        ),
    ];
    // One account whose claims change per case: the browser stays signed in at the IdP.
    let login = uid("carol").to_lowercase();
    for (rules, claims, says, reason) in cases {
        let c = connector(t, rules).await;
        let mut account = claims.clone();
        account["sub"] = json!(login);
        idp.account(account).await;
        j.sign_in_with(t, &c).await;
        j.refused_after_idp(&login, says).await;
        assert!(
            identities(t, &c.id).await.is_empty(),
            "{reason}: nobody linked"
        );
        assert!(
            login_reasons(t).await.iter().any(|r| r == reason),
            "the audit row says {reason}"
        );
    }
    j.browser.finish("admission refusals").await;
}

/// Someone who controls an IdP account asserting a local user's email (verified, even) does
/// not get that account: without `link_by_email_domains` the login makes a new user. With
/// the domain declared as owned, the same verified email links the local account.
pub async fn federation_no_takeover_by_email_in_a_browser(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let victim_name = format!("{}@example.test", uid("victim").to_lowercase());
    let v = admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/users",
        Some(json!({ "username": victim_name, "password": "victim password 123" })),
    )
    .await;
    let victim_id = v["id"].as_str().unwrap().to_owned();
    let attacker = uid("mallory").to_lowercase();
    idp()
        .await
        .account(json!({ "sub": attacker, "email": victim_name, "email_verified": true }))
        .await;

    let c = connector(t, json!({})).await;
    let req = j.sign_in_with(t, &c).await;
    j.through_idp(&attacker).await;
    let sub = j.approve_and_redeem(t, &req).await["sub"].clone();
    assert!(sub.is_string(), "{sub}");
    assert_ne!(
        sub,
        json!(victim_id),
        "the local account was not taken over by email"
    );

    // The operator owns example.test for this connector: the verified email links (signed
    // out first, so the sign-in page is shown again).
    j.browser.delete_cookie("pc_session").await;
    let owned = connector(t, json!({ "link_by_email_domains": ["example.test"] })).await;
    let req = j.sign_in_with(t, &owned).await;
    j.through_idp(&attacker).await;
    let sub = j.approve_and_redeem(t, &req).await["sub"].clone();
    assert_eq!(
        sub,
        json!(victim_id),
        "an owned domain's verified email links the account"
    );
    j.browser.finish("linking by email").await;
}

/// The admin API of connectors: validation (each refusal names the field), the secret never
/// returned, the redirect URI, listing and deletion.
pub async fn federation_connector_admin_api(t: &Target) {
    let id = uid("conn").to_lowercase().replace(['.', ' '], "-");
    let good = json!({
        "id": id, "name": "Okta", "issuer": "https://acme.okta.example",
        "client_id": "0oa1", "client_secret": "connector-admin-secret",
        "claims": { "groups": "roles" }, "allowed_groups": ["eng"],
    });
    let r = admin(
        t,
        reqwest::Method::POST,
        "/admin/connectors",
        Some(good.clone()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["redirect_uri"],
        json!(t.url(&format!("/oauth/connectors/{id}/callback")))
    );
    assert_eq!(v["claims"]["groups"], "roles");
    assert_eq!(v["claims"]["subject"], "sub", "defaults for unnamed claims");
    assert!(!r.body.contains("connector-admin-secret"));
    let list = admin_ok(t, reqwest::Method::GET, "/admin/connectors", None).await;
    assert!(list.to_string().contains(&id));
    assert!(!list.to_string().contains("connector-admin-secret"));
    for (field, value) in [
        ("client_secret", Value::Null),
        ("issuer", json!("http://acme.okta.example")),
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("id", json!("Has Spaces")),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        let r = admin(t, reqwest::Method::POST, "/admin/connectors", Some(bad)).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert!(r.body.contains(field), "{field}: {}", r.body);
    }
    let path = format!("/admin/connectors/{id}");
    assert_eq!(
        admin(t, reqwest::Method::DELETE, &path, None).await.status,
        204
    );
    assert_eq!(
        admin(t, reqwest::Method::DELETE, &path, None).await.status,
        404
    );
    let r = admin(
        t,
        reqwest::Method::DELETE,
        "/admin/identities/nope/nobody",
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    for limit in ["0", "1001", "ten"] {
        let path = format!("/admin/identities?limit={limit}");
        let r = admin(t, reqwest::Method::GET, &path, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("invalid_request"), "{path}: {}", r.body);
    }
}

/// Local passwords switched off, with a connector.
pub const NO_PASSWORDS: &[(&str, &str)] = &[
    ("cimd__allow_loopback", "true"),
    ("login__local_passwords", "false"),
];

/// `login.local_passwords = false`: the sign-in page offers the connector and no password form.
pub async fn federation_local_passwords_switched_off(t: &Target) {
    let c = connector(t, json!({})).await;
    let resource = new_resource(t, &["mcp:tools"]).await;
    let redirect = "http://127.0.0.1:9/callback";
    let reg = register(
        t,
        json!({
            "client_name": "No-password client", "redirect_uris": [redirect],
            "grant_types": ["authorization_code"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "application_type": "native",
        }),
    )
    .await;
    let client_id = reg.json()["client_id"].as_str().unwrap().to_owned();
    let p = pkce();
    let params = authz_params(
        &client_id,
        redirect,
        &resource,
        "mcp:tools",
        "s",
        &p.challenge,
    );
    let page = Browser::new().get(&authorize_url(t, &pairs(&params))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&format!("Sign in with {}", c.name)),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("type=\"password\""),
        "no password form: {}",
        page.body
    );
}

/// The group-gated resource of [`GROUP_SCOPES`].
const GATED: &str = "https://mcp.example.com/federated-groups/mcp";

/// `[[group_scopes]]`: at [`GATED`], members of `eng` may consent to `mcp:tools` only.
pub const GROUP_SCOPES: &[(&str, &str)] = &[
    ("cimd__allow_loopback", "true"),
    (
        "group_scopes",
        r#"[{"resource":"https://mcp.example.com/federated-groups/mcp","group":"eng","scopes":["mcp:tools"]}]"#,
    ),
];

/// Groups map to the scopes a person may consent to at a group-gated resource: a member of
/// `eng` asking for `mcp:tools mcp:read` is shown and granted `mcp:tools` only; a local account
/// (no IdP groups) approving is answered `access_denied`.
pub async fn federation_groups_map_to_scopes_in_a_browser(t: &Target) {
    new_resource_at(t, GATED, &["mcp:tools", "mcp:read"]).await;
    let Some(mut j) = Journey::start_at(t, GATED.to_owned(), "mcp:tools mcp:read").await else {
        return;
    };
    let c = connector(t, json!({})).await;
    let person = uid("erin").to_lowercase();
    idp()
        .await
        .account(json!({ "sub": person, "groups": ["eng", "other"] }))
        .await;
    let req = j.sign_in_with(t, &c).await;
    j.through_idp(&person).await;
    let text = j.browser.text().await;
    assert!(
        text.contains("mcp:tools") && !text.contains("mcp:read"),
        "the consent page lists only what the groups grant: {text}"
    );
    let claims = j.approve_and_redeem(t, &req).await;
    assert_eq!(claims["scope"], json!("mcp:tools"));
    j.browser.finish("a group-gated consent").await;

    let user = new_user(t).await;
    let b = Browser::new();
    let p = pkce();
    let params = authz_params(
        &j.client_id,
        &j.app.redirect_uri(),
        GATED,
        "mcp:tools",
        "s-local",
        &p.challenge,
    );
    let page = b.get(&authorize_url(t, &pairs(&params))).await;
    let page = login(&b, t, &page, &user).await;
    let r = consent(&b, t, &page, "approve").await;
    let resp = AuthzResponse::from_redirect(&r);
    assert_eq!(
        resp.get("error"),
        Some("access_denied"),
        "{:?}",
        r.location()
    );
    assert_eq!(resp.count("code"), 0);
}
