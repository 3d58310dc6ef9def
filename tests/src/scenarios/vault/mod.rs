//! The token vault, black box: a user connects an upstream provider in the browser, an MCP
//! server exchanges the user's token for the upstream token (RFC 8693), the upstream token
//! expires and is refreshed (once, however many vends race), rotated refresh tokens are kept,
//! an upstream revocation sends the user to connect again, and the refusals. The upstream
//! OAuth server is a real, second Portcullis ([`upstream`]), with a confidential client
//! registered for the host's `/connect/{name}/callback`.

mod lifecycle;
pub mod upstream;

pub use lifecycle::vault_refresh_rotation_and_reauthorization;
use serde_json::{json, Value};
use upstream::upstream;

use super::support::*;
use super::Target;
use crate::conformance::uid;

/// The upstream runs on loopback: outbound calls to loopback allowed (`cimd.allow_loopback`,
/// the one loopback switch).
pub const SETTINGS: &[(&str, &str)] = &[("cimd__allow_loopback", "true")];

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A provider on the upstream, an MCP server that may vend it, and a user with a token for
/// that MCP server and an account at the upstream.
pub(super) struct Setup {
    provider: String,
    up: &'static Target,
    upstream_api: String,
    upstream_user: User,
    mcp: ClientCreds,
    other_mcp: ClientCreds,
    user_token: String,
    browser: Browser,
    f: Fixture,
    upstream_client: String,
}

impl Setup {
    async fn new(t: &Target) -> Self {
        let up = upstream().await;
        let provider = uid("up").to_lowercase().replace(['.', ' '], "-");
        // Upstream side: the API the provider's tokens are for, the person's account there,
        // and our client there.
        let upstream_api = new_resource(up, &["repo", "read"]).await;
        let upstream_user = new_user(up).await;
        let callback = t.url(&format!("/connect/{provider}/callback"));
        let v = admin_ok(
            up,
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({
                "client_name": "Vault upstream client",
                "redirect_uris": [callback],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "repo read",
            })),
        )
        .await;
        let (up_id, up_secret): (String, String) = (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        );
        // The MCP server and the resource whose user tokens may be exchanged.
        let mcp = new_client(t, "client_secret_basic", &["client_credentials", GRANT]).await;
        let other_mcp = new_client(t, "client_secret_basic", &["client_credentials", GRANT]).await;
        let f = Fixture {
            resource: format!("https://mcp.example.com/{}/mcp", uid("vault")),
            user: new_user(t).await,
            client: new_client(t, "none", &["authorization_code", "refresh_token"]).await,
        };
        admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/resources",
            Some(json!({
                "uri": f.resource,
                "scopes": SCOPES,
                "name": "Vault scenario MCP server",
                "exchange_clients": [mcp.id],
            })),
        )
        .await;
        let created = admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/providers",
            Some(json!({
                "name": provider,
                "authorization_endpoint": up.url("/oauth/authorize"),
                "token_endpoint": up.url("/oauth/token"),
                "client_id": up_id,
                "client_secret": up_secret,
                "scopes": ["repo"],
                "resource": upstream_api,
                "vend_resources": [f.resource],
            })),
        )
        .await;
        assert!(
            created.get("client_secret").is_none(),
            "write-only: {created}"
        );
        // The user signs in through the MCP client; the same browser connects later.
        let browser = Browser::new();
        let p = pkce();
        let code = f.code(t, &browser, &p).await;
        let user_token = f.redeem(t, &code, &p.verifier).await.access;
        Self {
            provider,
            up,
            upstream_api,
            upstream_user,
            mcp,
            other_mcp,
            user_token,
            browser,
            f,
            upstream_client: up_id,
        }
    }

    async fn vend(&self, t: &Target, client: &ClientCreds, extra: &[(&str, &str)]) -> Resp {
        let auth = Auth::Basic(&client.id, client.secret.as_deref().unwrap());
        self.vend_as(t, auth, &self.user_token, extra).await
    }

    /// The token exchange for `subject_token` with any client authentication.
    async fn vend_as(
        &self,
        t: &Target,
        auth: Auth<'_>,
        subject_token: &str,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut form = vec![
            ("grant_type", GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS),
            ("resource", self.upstream_api.as_str()),
        ];
        form.extend_from_slice(extra);
        token(t, &form, auth).await
    }

    /// Opens `connect_uri` in the user's browser (signed in here), signs in at the upstream
    /// when it asks and approves there; returns the page the host shows at the end.
    async fn connect(&self, t: &Target, connect_uri: &str) -> Resp {
        let b = &self.browser;
        let to_upstream = b.follow_local(t, b.get(connect_uri).await).await;
        let location = to_upstream.location().unwrap_or_else(|| {
            panic!(
                "the connect link leads to the upstream: {}",
                short(&to_upstream.body)
            )
        });
        assert_eq!(location.origin(), self.up.base_url().origin(), "{location}");
        let mut page = b
            .follow_local(self.up, b.get(location.as_str()).await)
            .await;
        if is_login_page(&page) {
            page = login(b, self.up, &page, &self.upstream_user).await;
        }
        let back = if is_consent_page(&page) {
            consent(b, self.up, &page, "approve").await
        } else {
            page
        };
        let callback = back.location().unwrap_or_else(|| {
            panic!(
                "the upstream sends the browser back: {} {}",
                back.status,
                short(&back.body)
            )
        });
        b.follow_local(t, b.get(callback.as_str()).await).await
    }

    /// The number of times the upstream's token endpoint refreshed a token of our client.
    async fn upstream_refreshes(&self) -> usize {
        let issued = admin_ok(
            self.up,
            reqwest::Method::GET,
            &format!(
                "/admin/audit?action=token.issued&client_id={}&limit=100",
                self.upstream_client
            ),
            None,
        )
        .await;
        issued["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["detail"]["grant_type"] == json!("refresh_token"))
            .count()
    }

    /// The host's `vault.refresh` audit events of this user with `outcome`.
    async fn refresh_events(&self, t: &Target, outcome: &str) -> Vec<Value> {
        let events = admin_ok(
            t,
            reqwest::Method::GET,
            &format!(
                "/admin/audit?action=vault.refresh&subject={}&outcome={outcome}",
                self.f.user.id
            ),
            None,
        )
        .await;
        events["events"].as_array().unwrap().clone()
    }

    /// The admin API's state of this user's connection.
    async fn state(&self, t: &Target) -> Value {
        let list = admin_ok(
            t,
            reqwest::Method::GET,
            &format!("/admin/connections?provider={}", self.provider),
            None,
        )
        .await;
        list["connections"][0]["state"].clone()
    }
}

fn connect_uri(r: &Resp) -> String {
    r.assert_oauth_error(400, "interaction_required");
    r.json()["connect_uri"]
        .as_str()
        .unwrap_or_else(|| panic!("interaction_required carries connect_uri: {}", r.body))
        .to_owned()
}

/// Not connected → `interaction_required` with a `connect_uri`; the user connects in the
/// browser (sign-in session, PKCE, the upstream's consent); the MCP server then gets the
/// upstream access token, never a refresh token; admins see the connection without tokens;
/// revoking it brings `interaction_required` back.
pub async fn vault_connect_then_vend(t: &Target) {
    let s = Setup::new(t).await;
    let first = s.vend(t, &s.mcp, &[]).await;
    let link = connect_uri(&first);
    assert!(
        link.starts_with(&t.url(&format!("/connect/{}", s.provider))),
        "{link}"
    );

    let page = s.connect(t, &link).await;
    assert_eq!(page.status, 200, "{}", short(&page.body));
    assert!(page.body.contains("Connected"), "{}", short(&page.body));

    let r = s.vend(t, &s.mcp, &[]).await;
    let tok = tokens(&r);
    assert_eq!(tok.raw["issued_token_type"], json!(ACCESS), "{}", tok.raw);
    assert_eq!(tok.raw["token_type"], json!("Bearer"), "{}", tok.raw);
    assert!(tok.refresh.is_none(), "never a refresh token: {}", tok.raw);
    crate_vend_gives_a_token(t, &s).await;
    assert!(
        tok.raw["expires_in"].as_i64().is_some_and(|n| n > 0),
        "{}",
        tok.raw
    );
    assert!(
        tok.raw["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "repo"),
        "{}",
        tok.raw
    );
    // The upstream issued it for its API, to the person's account there (its lifetime is
    // seconds, so the claims are read rather than verified against the clock).
    let claims = jwt_claims(&tok.access);
    assert_eq!(claims["iss"], json!(s.up.base), "{claims}");
    assert_eq!(claims["aud"], json!(s.upstream_api), "{claims}");
    assert_eq!(claims["sub"], json!(s.upstream_user.id), "{claims}");
    assert!(
        claims["scope"].as_str().unwrap().contains("repo"),
        "{claims}"
    );

    let list = admin_ok(
        t,
        reqwest::Method::GET,
        &format!("/admin/connections?provider={}", s.provider),
        None,
    )
    .await;
    let conns = list["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{list}");
    assert_eq!(conns[0]["state"], json!("active"));
    let text = list.to_string();
    assert!(
        !text.contains(&tok.access),
        "no upstream token in the admin API"
    );

    let id = conns[0]["id"].as_str().unwrap();
    let del = admin(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/connections/{id}"),
        None,
    )
    .await;
    assert_eq!(del.status, 204, "{}", del.body);
    connect_uri(&s.vend(t, &s.mcp, &[]).await);
    let after = admin_ok(
        t,
        reqwest::Method::GET,
        &format!("/admin/connections?provider={}", s.provider),
        None,
    )
    .await;
    assert_eq!(
        after["connections"][0]["state"],
        json!("revoked"),
        "{after}"
    );
}

/// Refusals: a wider scope than the user granted, an MCP server that is not an exchange client
/// of the user's token's resource, a refresh token asked for, a connect link opened by another
/// user.
pub async fn vault_refusals(t: &Target) {
    let s = Setup::new(t).await;
    let link = connect_uri(&s.vend(t, &s.mcp, &[]).await);
    let page = s.connect(t, &link).await;
    assert_eq!(page.status, 200, "{}", short(&page.body));

    s.vend(t, &s.mcp, &[("scope", "repo admin:org")])
        .await
        .assert_oauth_error(400, "invalid_scope");
    s.vend(t, &s.other_mcp, &[])
        .await
        .assert_oauth_error(400, "unauthorized_client");
    s.vend(
        t,
        &s.mcp,
        &[(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:refresh_token",
        )],
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let narrower = tokens(&s.vend(t, &s.mcp, &[("scope", "repo")]).await);
    assert!(narrower.raw["scope"].as_str().unwrap().contains("repo"));
    // A public client (the MCP client itself) may not obtain upstream tokens.
    s.vend_as(t, Auth::Public(&s.f.client.id), &s.user_token, &[])
        .await
        .assert_oauth_error(400, "unauthorized_client");
    // A token for an MCP server that is not among the provider's `vend_resources`, even
    // though the MCP server may exchange its tokens.
    let elsewhere = Fixture {
        resource: format!("https://mcp.example.com/{}/mcp", uid("other")),
        user: s.f.user.clone(),
        client: s.f.client.clone(),
    };
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/resources",
        Some(
            json!({ "uri": elsewhere.resource, "scopes": SCOPES, "exchange_clients": [s.mcp.id] }),
        ),
    )
    .await;
    let p = pkce();
    let code = elsewhere.code(t, &s.browser, &p).await;
    let other_token = elsewhere.redeem(t, &code, &p.verifier).await.access;
    let auth = Auth::Basic(&s.mcp.id, s.mcp.secret.as_deref().unwrap());
    s.vend_as(t, auth, &other_token, &[])
        .await
        .assert_oauth_error(400, "invalid_target");

    // Another user opens the first user's connect link: refused at the server.
    let other = new_user(t).await;
    let b = Browser::new();
    let login_page = b.follow_local(t, b.get(&link).await).await;
    assert!(is_login_page(&login_page), "{}", short(&login_page.body));
    let r = login(&b, t, &login_page, &other).await;
    assert_eq!(r.status, 403, "{}", short(&r.body));
    assert!(r.body.contains("another user"), "{}", short(&r.body));
}

/// The provider admin API: secrets never returned, unknown presets refused with the field,
/// deletion removes it.
pub async fn vault_provider_admin_api(t: &Target) {
    let name = uid("gh").to_lowercase().replace(['.', ' '], "-");
    // Unique per run: the scenarios share a server, and a resource names one provider.
    let resource = format!("https://api.github.com/{name}");
    let v: Value = admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/providers",
        Some(json!({
            "name": name,
            "preset": "github",
            "client_id": "Iv1.example",
            "client_secret": "a-very-secret-value",
            "scopes": ["repo"],
            "resource": resource,
            "vend_resources": ["https://mcp.example.com/x/mcp"],
        })),
    )
    .await;
    assert_eq!(
        v["token_endpoint_auth_method"],
        json!("client_secret_basic"),
        "{v}"
    );
    let all = admin_ok(t, reqwest::Method::GET, "/admin/providers", None).await;
    assert!(all.to_string().contains(&name));
    assert!(!all.to_string().contains("a-very-secret-value"), "{all}");
    let bad = admin(
        t,
        reqwest::Method::POST,
        "/admin/providers",
        Some(json!({ "name": "x", "preset": "gitlab", "client_id": "c", "client_secret": "s", "resource": "r" })),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("preset"), "{}", bad.body);
    // Another provider for the same resource would make a vend ambiguous.
    let twin = admin(
        t,
        reqwest::Method::POST,
        "/admin/providers",
        Some(json!({
            "name": format!("{name}-twin"),
            "preset": "github",
            "client_id": "Iv1.other",
            "client_secret": "another-secret-value",
            "resource": resource,
            "vend_resources": ["https://mcp.example.com/x/mcp"],
        })),
    )
    .await;
    assert_eq!(twin.status, 400, "{}", twin.body);
    assert!(twin.body.contains("resource"), "{}", twin.body);
    let del = admin(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/providers/{name}"),
        None,
    )
    .await;
    assert_eq!(del.status, 204, "{}", del.body);
    let again = admin(
        t,
        reqwest::Method::DELETE,
        &format!("/admin/providers/{name}"),
        None,
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.body);
    for limit in ["0", "1001", "ten"] {
        let path = format!("/admin/connections?limit={limit}");
        let r = admin(t, reqwest::Method::GET, &path, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("invalid_request"), "{path}: {}", r.body);
    }
}

/// Single-flight refresh: the upstream token expires; 32 concurrent vends all get the same
/// new upstream token, and the upstream saw exactly one refresh.
pub async fn vault_single_flight_refresh_after_expiry(t: &Target) {
    let s = Setup::new(t).await;
    let link = connect_uri(&s.vend(t, &s.mcp, &[]).await);
    assert_eq!(s.connect(t, &link).await.status, 200);
    let first = tokens(&s.vend(t, &s.mcp, &[]).await);
    upstream::pass(t, upstream::ACCESS_TTL + 1).await;

    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (s, t) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move { s.vend(&t, &s.mcp, &[]).await }));
    }
    let mut got = std::collections::BTreeSet::new();
    for task in tasks {
        let r = task.await.expect("the vend task");
        got.insert(tokens(&r).access);
    }
    assert_eq!(got.len(), 1, "every vend got the one refreshed token");
    let refreshed = got.into_iter().next().unwrap();
    assert_ne!(refreshed, first.access, "the expired token was refreshed");
    let claims = jwt_claims(&refreshed);
    assert_eq!(claims["aud"], json!(s.upstream_api), "{claims}");
    assert_eq!(
        s.refresh_events(t, "success").await.len(),
        1,
        "exactly one upstream refresh"
    );
    assert_eq!(
        s.upstream_refreshes().await,
        1,
        "the upstream's token endpoint saw one refresh"
    );
}

/// A user connected to a provider on the upstream, for tests that look at the host's store or
/// restart it between vends.
pub struct Connected(Setup);

impl Connected {
    /// Sets up a provider, an MCP server and a user, and connects the user in the browser.
    pub async fn new(t: &Target) -> Self {
        let s = Setup::new(t).await;
        let link = connect_uri(&s.vend(t, &s.mcp, &[]).await);
        assert_eq!(s.connect(t, &link).await.status, 200);
        Self(s)
    }

    /// Vends the user's upstream token to the MCP server; returns the upstream access token.
    pub async fn vend(&self, t: &Target) -> String {
        tokens(&self.0.vend(t, &self.0.mcp, &[]).await).access
    }
}

/// Connects a user and vends once; returns the vended upstream access token (for checks a
/// host can make on its own store).
pub async fn connect_and_vend(t: &Target) -> String {
    Connected::new(t).await.vend(t).await
}

/// The vault's pages in a real browser: the MCP server's `connect_uri` opened by a signed-out
/// person → the sign-in page says what it is for → the upstream's consent → Approve → the
/// "Connected" page; then the connections page lists the provider and its Remove button
/// revokes the connection. No CSP violation or console error on the way.
pub async fn vault_pages_in_a_browser(t: &Target) {
    let Some(mut b) = crate::chromium::Chromium::start().await else {
        return;
    };
    let s = Setup::new(t).await;
    let link = connect_uri(&s.vend(t, &s.mcp, &[]).await);
    b.goto(&link).await;
    assert_eq!(b.heading().await, "Sign in", "{}", b.text().await);
    let text = b.text().await;
    assert!(
        text.contains(&format!("connect your {} account", s.provider)),
        "the sign-in page says what it is for: {text}"
    );
    b.assert_no_problems("the vault's sign-in page").await;
    b.fill("#username", &s.f.user.username).await;
    b.fill("#password", &s.f.user.password).await;
    b.click("form button[type=submit]").await;
    // The upstream, another site, asks the person to sign in there, then for consent.
    assert_eq!(b.heading().await, "Sign in", "{}", b.text().await);
    assert_eq!(b.url().await.origin(), s.up.base_url().origin());
    b.fill("#username", &s.upstream_user.username).await;
    b.fill("#password", &s.upstream_user.password).await;
    b.click("form button[type=submit]").await;
    let heading = b.heading().await;
    assert!(
        heading.starts_with("Authorize"),
        "{heading}: {}",
        b.text().await
    );
    b.click("button[value=approve]").await;
    assert_eq!(b.heading().await, "Connected", "{}", b.text().await);
    assert!(b.text().await.contains(&s.provider));
    b.screenshot(&crate::chromium::screenshot_path("connected"))
        .await;
    b.assert_no_problems("the connect flow").await;
    tokens(&s.vend(t, &s.mcp, &[]).await);

    b.goto(&t.url("/connections")).await;
    assert_eq!(
        b.heading().await,
        "Connected accounts",
        "{}",
        b.text().await
    );
    let text = b.text().await;
    assert!(
        text.contains(&s.provider) && text.contains("connected"),
        "{text}"
    );
    b.click("form button[type=submit]").await;
    assert_eq!(
        b.heading().await,
        "Connected accounts",
        "{}",
        b.text().await
    );
    assert!(b.text().await.contains("revoked"), "{}", b.text().await);
    connect_uri(&s.vend(t, &s.mcp, &[]).await);
    b.finish("the connections page").await;
}

/// The vault's error pages in a real browser, each a page with its status and no CSP
/// violation: an unknown provider (404); the person denies at the upstream (400, the host says
/// the provider did not connect the account); a callback with a state nobody started (400);
/// another user opens the first user's connect link (403).
pub async fn vault_error_pages_in_a_browser(t: &Target) {
    let Some(mut b) = crate::chromium::Chromium::start().await else {
        return;
    };
    let s = Setup::new(t).await;
    b.goto(&t.url("/connect/no-such-provider")).await;
    assert_eq!(b.heading().await, "Unknown provider", "{}", b.text().await);
    b.expect_error_document(404).await;

    let link = connect_uri(&s.vend(t, &s.mcp, &[]).await);
    b.goto(&link).await;
    b.fill("#username", &s.f.user.username).await;
    b.fill("#password", &s.f.user.password).await;
    b.click("form button[type=submit]").await;
    assert_eq!(b.heading().await, "Sign in", "{}", b.text().await);
    b.fill("#username", &s.upstream_user.username).await;
    b.fill("#password", &s.upstream_user.password).await;
    b.click("form button[type=submit]").await;
    b.click("button[value=deny]").await;
    assert_eq!(
        b.heading().await,
        "Connection refused",
        "{}",
        b.text().await
    );
    assert!(
        b.text().await.contains("did not connect your account"),
        "{}",
        b.text().await
    );
    b.expect_error_document(400).await;
    connect_uri(&s.vend(t, &s.mcp, &[]).await);

    let forged = format!(
        "/connect/{}/callback?state=nobody-started-this&code=x",
        s.provider
    );
    b.goto(&t.url(&forged)).await;
    assert_eq!(b.heading().await, "Connection failed", "{}", b.text().await);
    b.expect_error_document(400).await;
    b.finish("the vault's error pages").await;

    let Some(mut other_browser) = crate::chromium::Chromium::start().await else {
        return;
    };
    let other = new_user(t).await;
    other_browser.goto(&link).await;
    other_browser.fill("#username", &other.username).await;
    other_browser.fill("#password", &other.password).await;
    other_browser.click("form button[type=submit]").await;
    assert_eq!(
        other_browser.heading().await,
        "Cannot connect",
        "{}",
        other_browser.text().await
    );
    assert!(other_browser.text().await.contains("another user"));
    other_browser.expect_error_document(403).await;
    other_browser.finish("another user's connect link").await;
}

/// The resource-server crate's vend helper (`portcullis_resource_server::Vend`), as an MCP
/// server runs it: the user's token verified for the MCP resource against this host's JWKS,
/// then exchanged at the token endpoint it discovers, gives the upstream token.
async fn crate_vend_gives_a_token(t: &Target, s: &Setup) {
    use portcullis_resource_server::vend::{ClientCredentials, Vend, Vended};
    use portcullis_resource_server::{native, Config, Decision};
    let config = Config::new(&t.base, &s.f.resource).expect("a resource-server configuration");
    let verifier = native::verifier(config).expect("a verifier");
    let mut headers = http::HeaderMap::new();
    let bearer = format!("Bearer {}", s.user_token);
    headers.insert(http::header::AUTHORIZATION, bearer.parse().unwrap());
    let caller = match verifier.authorize("POST", &s.f.resource, &headers).await {
        Decision::Allow(caller) => caller,
        Decision::Deny(d) => panic!("the user's token is refused by the crate: {d:?}"),
    };
    let secret = s.mcp.secret.as_deref().unwrap();
    let vend = Vend::new(verifier, ClientCredentials::new(&s.mcp.id, secret));
    match vend.vend(&caller, &s.upstream_api, None).await {
        Ok(Vended::Token { access_token, .. }) => assert!(!access_token.is_empty()),
        other => panic!("the crate's vend helper did not give a token: {other:?}"),
    }
}
