//! On-behalf-of user authorization for AI agents, black box (IETF draft
//! draft-oauth-ai-agents-on-behalf-of-user-02): a client asks, with `requested_actor`, for an
//! agent (a registered client) to act for the user; the consent page names that agent; the
//! code is redeemed with the agent's own access token (`actor_token`, `actor_token_type`);
//! the access token's `sub` is the user and its `act.sub` the agent; refreshing keeps the
//! chain and token exchange composes with it within the delegation depth limit. Refusals:
//! an unknown agent at authorize, a missing or unsupported `actor_token` / `actor_token_type`,
//! another agent's token, the user's own token, a forged, revoked or expired actor token,
//! and an `act` chain past `token_exchange.max_delegation_depth`.

use serde_json::json;

use super::support::*;
use super::Target;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A user's client, an agent (a confidential machine client that may also exchange tokens),
/// and a resource.
struct Setup {
    f: Fixture,
    agent: ClientCreds,
    agent_name: String,
}

impl Setup {
    async fn new(t: &Target) -> Self {
        let f = Fixture {
            resource: new_resource(t, &SCOPES).await,
            user: new_user(t).await,
            client: new_client(
                t,
                "client_secret_basic",
                &["authorization_code", "refresh_token", EXCHANGE],
            )
            .await,
        };
        let agent = new_client(t, "client_secret_basic", &["client_credentials", EXCHANGE]).await;
        let v = admin_ok(
            t,
            reqwest::Method::GET,
            &format!(
                "/admin/clients/{}",
                form_urlencoded::byte_serialize(agent.id.as_bytes()).collect::<String>()
            ),
            None,
        )
        .await;
        let agent_name = v["client_name"]
            .as_str()
            .expect("the agent's name")
            .to_owned();
        Self {
            f,
            agent,
            agent_name,
        }
    }

    /// A resource the agent may exchange others' tokens into (`exchange_clients`).
    async fn exchange_target(&self, t: &Target) -> String {
        let target = format!(
            "https://tools.example.com/{}/mcp",
            crate::conformance::uid("obo")
        );
        admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/resources",
            Some(json!({
                "uri": target, "scopes": ["mcp:tools"], "exchange_clients": [self.agent.id],
            })),
        )
        .await;
        target
    }

    fn agent_auth(&self) -> Auth<'_> {
        Auth::Basic(&self.agent.id, self.agent.secret.as_deref().unwrap())
    }

    /// The agent's own access token (client credentials).
    async fn agent_token(&self, t: &Target) -> String {
        let r = token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &self.f.resource),
            ],
            self.agent_auth(),
        )
        .await;
        tokens(&r).access
    }

    /// Runs authorize (with `requested_actor`) → sign-in → consent page; returns the consent
    /// page, the browser and the PKCE pair.
    async fn consent_page(&self, t: &Target, actor: &str) -> (Browser, Pkce, String, Resp) {
        let b = Browser::new();
        let p = pkce();
        let state = random_b64(12);
        let mut params = self.f.params(&p, &state);
        set_param(&mut params, "requested_actor", Some(actor));
        let first = b
            .follow_local(t, b.get(&authorize_url(t, &pairs(&params))).await)
            .await;
        let page = login(&b, t, &first, &self.f.user).await;
        (b, p, state, page)
    }

    /// A code the user approved for the agent, and its PKCE verifier.
    async fn code(&self, t: &Target) -> (String, String) {
        let (b, p, state, page) = self.consent_page(t, &self.agent.id).await;
        let r = consent(&b, t, &page, "approve").await;
        let resp = AuthzResponse::from_redirect(&r);
        resp.assert_to_client(t, &self.f.client.redirect_uri, &state);
        (resp.get("code").expect("a code").to_owned(), p.verifier)
    }

    /// Redeems `code` with `extra` parameters (the actor token).
    async fn redeem(&self, t: &Target, code: &str, verifier: &str, extra: &[(&str, &str)]) -> Resp {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.f.client.redirect_uri.as_str()),
            ("code_verifier", verifier),
            ("resource", self.f.resource.as_str()),
        ];
        form.extend_from_slice(extra);
        token(t, &form, self.f.auth()).await
    }
}

fn actor(token: &str) -> [(&str, &str); 2] {
    [("actor_token", token), ("actor_token_type", ACCESS)]
}

/// A refusal case: its name, the extra token parameters, the error and what the description
/// says.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);

fn assert_refused(r: &Resp, error: &str, needle: &str) {
    r.assert_oauth_error(400, error);
    let why = r.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains(needle), "'{needle}' in '{why}'");
}

/// The whole flow: the consent page names the agent and the client; without `actor_token` the
/// code is refused (`invalid_request`) and not burned; with the agent's token the access
/// token's `sub` is the user, `act` the agent and `client_id` the client; a refreshed token
/// keeps `act`; an exchange without an actor keeps the chain, and one with another actor
/// nests it (depth 2). The grant is audited with the agent.
pub async fn on_behalf_of_agent_acts_for_the_user(t: &Target) {
    let s = Setup::new(t).await;
    let (b, p, state, page) = s.consent_page(t, &s.agent.id).await;
    assert!(is_consent_page(&page), "{}", short(&page.body));
    assert!(
        page.body.contains(&s.agent_name),
        "the agent is named: {}",
        page.body
    );
    assert!(page.body.contains("on your behalf"), "{}", page.body);
    let r = consent(&b, t, &page, "approve").await;
    let resp = AuthzResponse::from_redirect(&r);
    resp.assert_to_client(t, &s.f.client.redirect_uri, &state);
    let code = resp.get("code").expect("a code").to_owned();

    let r = s.redeem(t, &code, &p.verifier, &[]).await;
    assert_refused(&r, "invalid_request", "actor_token is required");
    let agent_token = s.agent_token(t).await;
    let r = s.redeem(t, &code, &p.verifier, &actor(&agent_token)).await;
    let tok = tokens(&r);
    let claims = verify_access_token(t, &tok.access, &s.f.resource).await;
    let user_id = jwt_claims(&s.f.tokens(t).await.access)["sub"].clone();
    assert_eq!(claims["sub"], user_id, "the user");
    assert_eq!(
        claims["act"],
        json!({ "sub": s.agent.id, "client_id": s.agent.id })
    );
    assert_eq!(claims["client_id"], json!(s.f.client.id));

    let refreshed = tokens(
        &refresh(
            t,
            tok.refresh.as_deref().expect("a refresh token"),
            s.f.auth(),
        )
        .await,
    );
    let again = jwt_claims(&refreshed.access);
    assert_eq!(again["act"], claims["act"], "a refresh keeps the agent");
    assert_eq!(again["sub"], user_id);

    let kept = token(
        t,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &tok.access),
            ("subject_token_type", ACCESS),
        ],
        s.f.auth(),
    )
    .await;
    assert_eq!(
        jwt_claims(&tokens(&kept).access)["act"],
        claims["act"],
        "X2: kept"
    );
}

/// Composition with token exchange: the agent, listed in a target resource's
/// `exchange_clients`, exchanges the on-behalf-of token with its own actor token into the
/// target; the new hop is outermost and the consented one nested (depth 2).
pub async fn on_behalf_of_composes_with_token_exchange(t: &Target) {
    let s = Setup::new(t).await;
    let target = s.exchange_target(t).await;
    let (code, verifier) = s.code(t).await;
    let agent_token = s.agent_token(t).await;
    let obo = tokens(&s.redeem(t, &code, &verifier, &actor(&agent_token)).await).access;
    let r = token(
        t,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &obo),
            ("subject_token_type", ACCESS),
            ("actor_token", &agent_token),
            ("actor_token_type", JWT),
            ("resource", &target),
        ],
        s.agent_auth(),
    )
    .await;
    let nested = verify_access_token(t, &tokens(&r).access, &target).await;
    assert_eq!(nested["act"]["sub"], json!(s.agent.id));
    assert_eq!(
        nested["act"]["act"],
        json!({ "sub": s.agent.id, "client_id": s.agent.id })
    );
}

/// Each refusal on its own; none burns the code, which the agent's token then redeems once.
/// An agent removed before the user decides gets no code.
pub async fn on_behalf_of_refusals(t: &Target) {
    let s = Setup::new(t).await;
    // An unknown agent at authorize: an error for the client (it is not operator-trusted, so
    // shown at the server with a link), never a consent page.
    let b = Browser::new();
    let p = pkce();
    let mut params = s.f.params(&p, "st");
    set_param(&mut params, "requested_actor", Some("no-such-agent"));
    let r = b.get(&authorize_url(t, &pairs(&params))).await;
    assert!(
        !is_consent_page(&r) && !is_login_page(&r),
        "{}",
        short(&r.body)
    );
    assert!(
        r.body.contains("requested_actor")
            || r.location()
                .is_some_and(|l| l.as_str().contains("invalid_request")),
        "{}",
        short(&r.body)
    );

    let (code, verifier) = s.code(t).await;
    let agent_token = s.agent_token(t).await;
    let other = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let other_token = tokens(
        &token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &s.f.resource),
            ],
            Auth::Basic(&other.id, other.secret.as_deref().unwrap()),
        )
        .await,
    )
    .access;
    let user_token = s.f.tokens(t).await.access;
    let mut forged = agent_token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let revoked = s.agent_token(t).await;
    revoke(t, &revoked, None, s.agent_auth()).await;
    // (case, extra token parameters, error, what the description says)
    let cases: Vec<Case> = vec![
        (
            "no actor_token_type",
            vec![("actor_token", agent_token.as_str())],
            "invalid_request",
            "actor_token_type is required",
        ),
        (
            "unsupported type",
            vec![
                ("actor_token", agent_token.as_str()),
                (
                    "actor_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
            "invalid_request",
            "not supported",
        ),
        (
            "another agent",
            actor(&other_token).to_vec(),
            "invalid_grant",
            "not the token of the agent",
        ),
        (
            "the user's own token",
            actor(&user_token).to_vec(),
            "invalid_grant",
            "not the token of the agent",
        ),
        (
            "forged",
            actor(&forged).to_vec(),
            "invalid_grant",
            "not a valid access token",
        ),
        (
            "revoked",
            actor(&revoked).to_vec(),
            "invalid_grant",
            "revoked",
        ),
    ];
    for (case, extra, error, needle) in &cases {
        let r = s.redeem(t, &code, &verifier, extra).await;
        assert_eq!(r.status, 400, "{case}: {}", short(&r.body));
        assert_refused(&r, error, needle);
    }
    let ok = s.redeem(t, &code, &verifier, &actor(&agent_token)).await;
    assert_eq!(
        ok.status,
        200,
        "the code survived the refusals: {}",
        short(&ok.body)
    );

    // An agent removed between the request and the decision: no code.
    let gone = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let (b, _, _, page) = s.consent_page(t, &gone.id).await;
    let path = format!(
        "/admin/clients/{}",
        form_urlencoded::byte_serialize(gone.id.as_bytes()).collect::<String>()
    );
    let deleted = admin(t, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let r = consent(&b, t, &page, "approve").await;
    assert_eq!(r.status, 400, "{}", short(&r.body));
    assert!(
        r.body.contains("no longer registered"),
        "{}",
        short(&r.body)
    );

    // A code issued without requested_actor takes no actor_token.
    let plain = Browser::new();
    let p = pkce();
    let code = s.f.code(t, &plain, &p).await;
    let r = s.redeem(t, &code, &p.verifier, &actor(&agent_token)).await;
    assert_refused(
        &r,
        "invalid_request",
        "only accepted for a code issued with requested_actor",
    );
}

/// On a host with `token_exchange.max_delegation_depth = 1`: the on-behalf-of token (one
/// actor) is issued, and exchanging it with another actor (two) is refused.
pub async fn on_behalf_of_within_the_delegation_depth_limit(t: &Target) {
    let s = Setup::new(t).await;
    let (code, verifier) = s.code(t).await;
    let agent_token = s.agent_token(t).await;
    let obo = tokens(&s.redeem(t, &code, &verifier, &actor(&agent_token)).await).access;
    let target = s.exchange_target(t).await;
    let r = token(
        t,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &obo),
            ("subject_token_type", ACCESS),
            ("actor_token", &agent_token),
            ("actor_token_type", ACCESS),
            ("resource", &target),
        ],
        s.agent_auth(),
    )
    .await;
    assert_refused(&r, "invalid_request", "at most 1");
}

/// An actor token that expired between consent and redemption is refused (the code is still
/// valid): the clock moves past the agent token's lifetime.
pub async fn on_behalf_of_expired_actor_token_refused(t: &Target) {
    let s = Setup::new(t).await;
    let agent_token = s.agent_token(t).await;
    let exp = jwt_claims(&agent_token)["exp"].as_i64().unwrap();
    t.advance_clock(exp - t.now() - 30);
    let (code, verifier) = s.code(t).await;
    t.advance_clock(60);
    let r = s.redeem(t, &code, &verifier, &actor(&agent_token)).await;
    assert_refused(&r, "invalid_grant", "expired");
    let fresh = s.agent_token(t).await;
    let ok = s.redeem(t, &code, &verifier, &actor(&fresh)).await;
    assert_eq!(ok.status, 200, "{}", short(&ok.body));
}
