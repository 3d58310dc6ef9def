//! The pages a person meets, in a real browser (headless Chromium, [`crate::chromium`]):
//! authorize → sign in → consent → the authorization response at the client (RFC 6749 §4.1.2,
//! RFC 9207), a second authorization without a password, deny, sign-out, a wrong password,
//! stale and replayed forms, the error pages, and the CSRF and clickjacking protections of
//! SECURITY-CHECKLIST H2 as a browser enforces them (Fetch Metadata, `Origin`, SameSite
//! cookies, CSP `form-action` and `frame-ancestors`). Every scenario fails on any CSP
//! violation or console error the browser reports, unless it expects that very one.

use serde_json::json;

use super::support::*;
use super::Target;
use crate::chromium::{app::ClientApp, screenshot_path, Chromium};

/// A resource, a user, a dynamically registered public client whose redirect URI is the
/// loopback [`ClientApp`], and a browser.
struct Journey {
    resource: String,
    user: User,
    client_id: String,
    app: ClientApp,
    browser: Chromium,
}

/// One authorization request of a [`Journey`].
struct Request {
    url: String,
    state: String,
    verifier: String,
}

impl Journey {
    async fn start(t: &Target) -> Option<Self> {
        let browser = Chromium::start().await?;
        let app = ClientApp::start();
        let resource = new_resource(t, &SCOPES).await;
        let user = new_user(t).await;
        let client_id = register_native_client(t, "Browser MCP client", &app.redirect_uri()).await;
        Some(Self {
            resource,
            user,
            client_id,
            app,
            browser,
        })
    }

    fn request(&self, t: &Target) -> Request {
        let p = pkce();
        let state = random_b64(12);
        let params = authz_params(
            &self.client_id,
            &self.app.redirect_uri(),
            &self.resource,
            "mcp:tools",
            &state,
            &p.challenge,
        );
        Request {
            url: authorize_url(t, &pairs(&params)),
            state,
            verifier: p.verifier,
        }
    }

    /// Opens the authorization URL and expects the sign-in page.
    async fn open_sign_in(&mut self, req: &Request) {
        self.browser.goto(&req.url).await;
        assert_eq!(
            self.browser.heading().await,
            "Sign in",
            "an anonymous browser sees the sign-in page: {}",
            self.browser.text().await
        );
        self.browser.assert_no_problems("the sign-in page").await;
    }

    /// Types the credentials and presses "Sign in".
    async fn sign_in_with(&mut self, username: &str, password: &str) {
        let b = &mut self.browser;
        b.fill("#username", username).await;
        b.fill("#password", password).await;
        b.click("form button[type=submit]").await;
    }

    /// Signs in with the journey's user and expects the consent page.
    async fn sign_in(&mut self) {
        let (u, p) = (self.user.username.clone(), self.user.password.clone());
        self.sign_in_with(&u, &p).await;
        self.expect_consent().await;
    }

    async fn expect_consent(&mut self) {
        let heading = self.browser.heading().await;
        assert!(
            heading.starts_with("Authorize"),
            "the consent page follows: {heading}: {}",
            self.browser.text().await
        );
        let text = self.browser.text().await;
        assert!(
            text.contains("Browser MCP client"),
            "names the client: {text}"
        );
        assert!(text.contains("mcp:tools"), "lists the scope: {text}");
        assert!(text.contains(&self.user.username), "names the user: {text}");
        self.browser.assert_no_problems("the consent page").await;
    }

    /// Presses Approve or Deny and returns the authorization response the client received.
    async fn decide(&mut self, t: &Target, button: &str, req: &Request) -> AuthzResponse {
        let before = self.app.callbacks().len();
        self.browser.click(&format!("button[value={button}]")).await;
        let at = self.browser.url().await;
        assert_eq!(
            at.path(),
            "/callback",
            "{button} lands the browser at the client's redirect URI, not {at}: {}",
            self.browser.text().await
        );
        let callbacks = self.app.callbacks();
        assert_eq!(
            callbacks.len(),
            before + 1,
            "the client received one response"
        );
        let location = callbacks[before].clone();
        let resp = AuthzResponse {
            params: location.query_pairs().into_owned().collect(),
            location,
        };
        assert_eq!(
            resp.get("state"),
            Some(req.state.as_str()),
            "state returned"
        );
        assert_eq!(resp.count("iss"), 1, "M3: iss exactly once");
        assert_eq!(resp.get("iss"), Some(t.base.as_str()), "RFC 9207 iss");
        resp
    }

    /// Redeems a code at the token endpoint and checks the access token.
    async fn redeem(&self, t: &Target, code: &str, req: &Request) {
        let r = exchange(
            t,
            code,
            &self.app.redirect_uri(),
            &req.verifier,
            Some(&self.resource),
            Auth::Public(&self.client_id),
        )
        .await;
        let tok = tokens(&r);
        let claims = verify_access_token(t, &tok.access, &self.resource).await;
        assert_eq!(
            claims["sub"],
            json!(self.user.id),
            "the token is the user's"
        );
        assert_eq!(claims["scope"], json!("mcp:tools"));
    }
}

/// A person authorizes an MCP client: sign-in page → password → consent → Approve → the code,
/// `state` and `iss` reach the client's redirect URI → the code is redeemed. Writes the
/// screenshots of the sign-in and consent pages ([`screenshot_path`]).
pub async fn browser_sign_in_consent_and_redeem(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    j.open_sign_in(&req).await;
    j.browser.screenshot(&screenshot_path("sign-in")).await;
    j.sign_in().await;
    j.browser.screenshot(&screenshot_path("consent")).await;
    let resp = j.decide(t, "approve", &req).await;
    let code = resp.get("code").expect("a code").to_owned();
    j.redeem(t, &code, &req).await;
    assert_eq!(
        j.browser.heading().await,
        "Back at the application",
        "the client's page is shown"
    );
    j.browser.finish("a full authorization").await;
}

/// On-behalf-of in a real browser: the authorization names an agent (`requested_actor`); the
/// consent page says which agent will act for the person and through which client; after
/// Approve the code is redeemed with the agent's own token, and the access token's `act` is
/// the agent. Writes the consent page's screenshot (`consent-agent`).
pub async fn browser_consent_names_the_agent(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let agent = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let mut req = j.request(t);
    req.url = format!(
        "{}&requested_actor={}",
        req.url,
        form_urlencoded::byte_serialize(agent.id.as_bytes()).collect::<String>()
    );
    j.open_sign_in(&req).await;
    j.sign_in().await;
    let text = j.browser.text().await;
    assert!(
        text.contains("will act on your behalf, through Browser MCP client")
            && text.contains(&agent.id),
        "the consent page names the agent: {text}"
    );
    j.browser
        .screenshot(&screenshot_path("consent-agent"))
        .await;
    let resp = j.decide(t, "approve", &req).await;
    let code = resp.get("code").expect("a code").to_owned();
    let secret = agent.secret.as_deref().expect("a secret");
    let agent_token = tokens(
        &token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &j.resource),
            ],
            Auth::Basic(&agent.id, secret),
        )
        .await,
    )
    .access;
    let redirect_uri = j.app.redirect_uri();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", req.verifier.as_str()),
        ("resource", j.resource.as_str()),
        ("actor_token", agent_token.as_str()),
        (
            "actor_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ];
    let r = token(t, &form, Auth::Public(&j.client_id)).await;
    let claims = verify_access_token(t, &tokens(&r).access, &j.resource).await;
    assert_eq!(claims["sub"], json!(j.user.id));
    assert_eq!(claims["act"]["sub"], json!(agent.id));
    j.browser.finish("an on-behalf-of authorization").await;
}

/// A second authorization in the same browser goes straight to consent (the session cookie
/// is sent), without a password prompt.
pub async fn browser_second_authorization_without_password(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let first = j.request(t);
    j.open_sign_in(&first).await;
    j.sign_in().await;
    let code = j.decide(t, "approve", &first).await;
    j.redeem(t, code.get("code").expect("a code"), &first).await;

    let second = j.request(t);
    j.browser.goto(&second.url).await;
    assert!(
        !j.browser.has("input[type=password]").await,
        "no password prompt while signed in: {}",
        j.browser.text().await
    );
    j.expect_consent().await;
    let resp = j.decide(t, "approve", &second).await;
    j.redeem(t, resp.get("code").expect("a code"), &second)
        .await;
    j.browser.finish("a second authorization").await;
}

/// Deny sends `error=access_denied` with `state` and `iss` to the client, and no code.
pub async fn browser_consent_deny(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    j.open_sign_in(&req).await;
    j.sign_in().await;
    let resp = j.decide(t, "deny", &req).await;
    assert_eq!(resp.get("error"), Some("access_denied"));
    assert_eq!(resp.count("code"), 0, "a denial carries no code");
    j.browser.finish("a denial").await;
}

/// "Not you? Sign out" on the consent page ends the session; the next authorization asks for
/// the password again. `GET /logout` asks before signing out.
pub async fn browser_sign_out(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    j.open_sign_in(&req).await;
    j.sign_in().await;
    j.browser.click("form.signout button").await;
    assert_eq!(j.browser.heading().await, "Signed out");
    j.browser
        .assert_no_problems("signing out from consent")
        .await;

    let again = j.request(t);
    j.open_sign_in(&again).await;
    j.sign_in().await;
    j.browser.goto(&t.url("/logout")).await;
    assert_eq!(j.browser.heading().await, "Sign out");
    let text = j.browser.text().await;
    assert!(
        text.contains(&j.user.username),
        "names who is signed in: {text}"
    );
    j.browser.click("form button[type=submit]").await;
    assert_eq!(j.browser.heading().await, "Signed out");
    let third = j.request(t);
    j.open_sign_in(&third).await;
    j.browser.finish("signing out").await;
}

/// A wrong password shows the one failure message on the sign-in page (H4); the right one
/// then signs in.
pub async fn browser_wrong_password_then_sign_in(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    j.open_sign_in(&req).await;
    let user = j.user.username.clone();
    j.sign_in_with(&user, "not-the-password").await;
    assert_eq!(
        j.browser.heading().await,
        "Sign in",
        "the form is shown again"
    );
    let text = j.browser.text().await;
    assert!(
        text.contains("The username or password is incorrect."),
        "the one failure message: {text}"
    );
    j.sign_in().await;
    let resp = j.decide(t, "approve", &req).await;
    j.redeem(t, resp.get("code").expect("a code"), &req).await;
    j.browser.finish("a wrong password").await;
}

/// A sign-in form whose CSRF cookie has expired is refused with a page that says so; a
/// sign-in form submitted again after its request was answered is refused as expired.
pub async fn browser_stale_and_replayed_sign_in_forms_refused(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    // The CSRF cookie expired while the form was open.
    let req = j.request(t);
    j.open_sign_in(&req).await;
    j.browser.delete_cookie("pc_csrf").await;
    let (u, p) = (j.user.username.clone(), j.user.password.clone());
    j.sign_in_with(&u, &p).await;
    assert_eq!(j.browser.heading().await, "Sign-in failed");
    let text = j.browser.text().await;
    assert!(text.contains("expired"), "says the form expired: {text}");
    assert!(j.app.callbacks().is_empty(), "nothing reached the client");
    j.browser.expect_error_document(400).await;

    // A form answered once, posted again from the same origin (another tab, a resubmission).
    let req = j.request(t);
    j.open_sign_in(&req).await;
    let handle = j.browser.value_of("input[name=request]").await;
    let csrf = j.browser.value_of("input[name=csrf]").await;
    j.sign_in().await;
    j.decide(t, "approve", &req).await;
    j.browser.goto(&t.url("/logout")).await;
    j.browser
        .post_from_page(
            &t.url("/oauth/login"),
            &[
                ("request", &handle),
                ("csrf", &csrf),
                ("username", &u),
                ("password", &p),
            ],
        )
        .await;
    assert_eq!(j.browser.heading().await, "Request expired");
    assert_eq!(
        j.app.callbacks().len(),
        1,
        "no second response reached the client"
    );
    j.browser.expect_error_document(400).await;
    j.browser.finish("stale and replayed forms").await;
}

/// H2 in a browser: a page on another origin of the same site (another loopback port) and a
/// page on another site (`localhost`) post the consent form with the real request handle and
/// even the real CSRF token: both are refused and no code is issued; the request still works
/// from the real consent page afterwards.
pub async fn h2_browser_cross_origin_consent_post_refused(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    j.open_sign_in(&req).await;
    j.sign_in().await;
    let handle = j.browser.value_of("input[name=request]").await;
    let csrf = j.browser.value_of("input[name=csrf]").await;
    let fields = [
        ("request", handle.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
    ];
    for origin in [j.app.same_site_origin(), j.app.cross_site_origin()] {
        let attack = j
            .app
            .attack_post_url(&origin, &t.url("/oauth/consent"), &fields);
        j.browser.goto(&attack).await;
        j.browser.click("#go").await;
        let heading = j.browser.heading().await;
        assert_eq!(
            heading,
            "Authorization failed",
            "a consent post from {origin} is refused: {}",
            j.browser.text().await
        );
        assert!(j.app.callbacks().is_empty(), "no code reached the client");
        j.browser.expect_error_document(400).await;
    }
    let mut consent = url::Url::parse(&t.url("/oauth/consent")).expect("a URL");
    consent.query_pairs_mut().append_pair("request", &handle);
    j.browser.goto(consent.as_str()).await;
    j.expect_consent().await;
    let resp = j.decide(t, "approve", &req).await;
    j.redeem(t, resp.get("code").expect("a code"), &req).await;
    j.browser.finish("a cross-origin consent post").await;
}

/// H2 in a browser: another site framing the sign-in page gets nothing (CSP
/// `frame-ancestors 'none'`, `X-Frame-Options: DENY`): the browser blocks it and says so.
pub async fn h2_browser_framing_refused(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    let attack = j.app.attack_frame_url(&j.app.cross_site_origin(), &req.url);
    j.browser.goto(&attack).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let inside = j.browser.frame_text().await.unwrap_or_default();
    assert!(
        !inside.contains("Password") && !inside.contains("Sign in"),
        "the framed sign-in page must not render: {inside}"
    );
    let problems = j.browser.take_problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("frame-ancestors")),
        "the browser reports the frame-ancestors refusal: {problems:#?}"
    );
    j.browser.finish("framing").await;
}

/// The error pages a person can meet at the authorization endpoint render as pages (not a
/// redirect), with no CSP violation: an unknown client (R2), an unregistered redirect URI
/// (R1), a method the sign-in endpoint does not take, and a refused request of a
/// self-registered client (O1), whose link back to the client works.
pub async fn browser_error_pages(t: &Target) {
    let Some(mut j) = Journey::start(t).await else {
        return;
    };
    let req = j.request(t);
    let mut unknown = url::Url::parse(&req.url).expect("a URL");
    let pairs: Vec<(String, String)> = unknown
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "client_id" {
                (k, "no-such-client".into())
            } else {
                (k, v)
            }
        })
        .collect();
    unknown.query_pairs_mut().clear().extend_pairs(pairs);
    let cases = [
        (
            unknown.to_string(),
            400,
            "Authorization request refused",
            "not known",
        ),
        (
            req.url.replace("%2Fcallback", "%2Fother"),
            400,
            "Authorization request refused",
            "not registered",
        ),
        (t.url("/oauth/login"), 405, "Method not allowed", "POST"),
    ];
    for (url, status, heading, says) in cases {
        j.browser.goto(&url).await;
        assert_eq!(j.browser.heading().await, heading, "{url}");
        let text = j.browser.text().await;
        assert!(text.contains(says), "{url}: {text}");
        assert!(
            j.app.callbacks().is_empty(),
            "an error page, not a redirect"
        );
        j.browser.expect_error_document(status).await;
    }
    // O1: the journey's client registered itself, so an error before consent is a page with a
    // link back to it, never an automatic redirect; following the link delivers the error
    // response (with state and iss) to the client.
    let mut no_type = url::Url::parse(&req.url).expect("a URL");
    let kept: Vec<(String, String)> = no_type
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "response_type")
        .collect();
    no_type.query_pairs_mut().clear().extend_pairs(kept);
    j.browser.goto(no_type.as_str()).await;
    assert_eq!(j.browser.heading().await, "Authorization request refused");
    assert!(j.app.callbacks().is_empty(), "no automatic redirect");
    j.browser.expect_error_document(400).await;
    j.browser.click("main a").await;
    let callbacks = j.app.callbacks();
    assert_eq!(callbacks.len(), 1, "the link leads to the client");
    let resp = AuthzResponse {
        params: callbacks[0].query_pairs().into_owned().collect(),
        location: callbacks[0].clone(),
    };
    assert_eq!(resp.get("error"), Some("invalid_request"));
    assert_eq!(resp.get("state"), Some(req.state.as_str()));
    assert_eq!(resp.get("iss"), Some(t.base.as_str()));
    j.browser.finish("the error pages").await;
}
