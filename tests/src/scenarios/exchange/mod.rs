//! Token exchange (RFC 8693) scenarios: SECURITY-CHECKLIST X1–X4, the request's parameters,
//! the response and its audit event, and the per-resource exchange policy. Revocation
//! reaching exchanged tokens is in [`revocation`], DPoP bindings carried through an exchange
//! in [`binding`].

mod binding;
mod revocation;

pub use binding::*;
pub use revocation::*;

use serde_json::{json, Value};

use super::support::*;
use super::Target;

/// RFC 8693 grant type.
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 access token type.
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 JWT token type.
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A user's client (A) with tokens for resource `source`, an orchestrator (confidential,
/// client_credentials) listed in the `exchange_clients` of resource `target`.
struct Setup {
    f: Fixture,
    target: String,
    orch: ClientCreds,
}

impl Setup {
    async fn new(t: &Target) -> Self {
        Self::with_exchangers(t, &[]).await
    }

    /// Like [`Setup::new`], with more clients in the target's `exchange_clients`.
    async fn with_exchangers(t: &Target, more: &[&str]) -> Self {
        let orch = new_client(t, "client_secret_basic", &["client_credentials", GRANT]).await;
        let target = format!("https://tools.example.com/{}/mcp", uid());
        let mut exchangers = vec![orch.id.as_str()];
        exchangers.extend_from_slice(more);
        admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/resources",
            Some(json!({
                "uri": target,
                "scopes": ["mcp:tools", "tools:admin"],
                "name": "Scenario exchange target",
                "exchange_clients": exchangers,
            })),
        )
        .await;
        let f = Fixture {
            resource: new_resource(t, &SCOPES).await,
            user: new_user(t).await,
            client: new_client(
                t,
                "client_secret_basic",
                &["authorization_code", "refresh_token", GRANT],
            )
            .await,
        };
        Self { f, target, orch }
    }

    fn orch_auth(&self) -> Auth<'_> {
        Auth::Basic(&self.orch.id, self.orch.secret.as_deref().unwrap())
    }

    /// A client_credentials token of the orchestrator (its actor token) for `resource`.
    async fn orch_token_for(&self, t: &Target, resource: &str) -> String {
        let r = token(
            t,
            &[("grant_type", "client_credentials"), ("resource", resource)],
            self.orch_auth(),
        )
        .await;
        tokens(&r).access
    }

    /// A client_credentials token of the orchestrator (its actor token).
    async fn orch_token(&self, t: &Target) -> String {
        self.orch_token_for(t, &self.f.resource).await
    }

    /// The user's tokens for the source resource with `scope`.
    async fn user_tokens(&self, t: &Target, scope: &str) -> Tokens {
        user_tokens(t, &self.f, scope).await
    }
}

/// Runs the browser flow for `f` asking for `scope` and returns the tokens.
async fn user_tokens(t: &Target, f: &Fixture, scope: &str) -> Tokens {
    let b = Browser::new();
    let p = pkce();
    let state = random_b64(12);
    let mut params = f.params(&p, &state);
    set_param(&mut params, "scope", Some(scope));
    let resp = authorize(&b, t, &params, &f.user, "approve").await;
    resp.assert_to_client(t, &f.client.redirect_uri, &state);
    f.redeem(t, resp.get("code").expect("a code"), &p.verifier)
        .await
}

fn uid() -> String {
    crate::conformance::uid("x")
}

/// POSTs a token exchange of `subject` with extra parameters.
async fn exchange_token(t: &Target, subject: &str, extra: &[(&str, &str)], auth: Auth<'_>) -> Resp {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    form.extend_from_slice(extra);
    token(t, &form, auth).await
}

/// A successful exchange: checks the RFC 8693 §2.2.1 response and returns it.
async fn exchanged(t: &Target, subject: &str, extra: &[(&str, &str)], auth: Auth<'_>) -> Value {
    let r = exchange_token(t, subject, extra, auth).await;
    let tok = tokens(&r);
    assert_eq!(tok.raw["issued_token_type"], json!(ACCESS), "{}", tok.raw);
    assert!(
        tok.refresh.is_none(),
        "no refresh token from an exchange: {}",
        tok.raw
    );
    tok.raw
}

fn access(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

/// Asserts a refusal with `error` (400) whose description contains `needle`.
fn assert_refused(r: &Resp, error: &str, needle: &str) {
    r.assert_oauth_error(400, error);
    let why = r.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains(needle), "'{needle}' in the description: {why}");
}

/// Signs `claims` as an `at+jwt` with a throwaway P-256 key (not one of the server's).
async fn foreign_jwt(kid: &str, claims: &Value) -> String {
    use portcullis_core::crypto::{rustcrypto, CryptoProvider, RustCrypto};
    let seed = u64::from_le_bytes(random_b64(8).as_bytes()[..8].try_into().unwrap());
    let scalar = rustcrypto::generate_scalar(&portcullis_core::runtime::SeededRng::new(seed));
    let signer = RustCrypto.es256_signer(&scalar).unwrap();
    portcullis_core::jose::sign_es256(signer.as_ref(), kid, "at+jwt", claims)
        .await
        .unwrap()
}

/// X1: a subject token signed by another key (a forgery with our issuer and `kid`, or
/// another issuer's token), or not a JWT at all, is refused with `invalid_grant` naming the
/// `subject_token`, and so is such an actor token; a revoked subject token is refused as
/// revoked, also when its grant was revoked through a rotated refresh token.
pub async fn x1_exchange_foreign_or_revoked_subject_refused(t: &Target) {
    let s = Setup::new(t).await;
    let tok = s.f.tokens(t).await;
    let genuine = tok.access.clone();
    let header = jsonwebtoken::decode_header(&genuine).unwrap();
    let claims = jwt_claims(&genuine);
    let forged = foreign_jwt(header.kid.as_deref().unwrap(), &claims).await;
    let mut other = claims.clone();
    other["iss"] = json!("https://idp.attacker.example");
    let foreign = foreign_jwt("attacker-key", &other).await;
    for bad in [forged.as_str(), foreign.as_str(), "not-a-jwt"] {
        let r = exchange_token(t, bad, &[], s.f.auth()).await;
        assert_refused(&r, "invalid_grant", "subject_token");
        exchange_token(t, bad, &[("resource", s.target.as_str())], s.orch_auth())
            .await
            .assert_oauth_error(400, "invalid_grant");
        let actor = [("actor_token", bad), ("actor_token_type", ACCESS)];
        let r = exchange_token(t, &genuine, &actor, s.f.auth()).await;
        assert_refused(&r, "invalid_grant", "actor_token");
    }
    // The genuine token works until its owner revokes it.
    exchanged(t, &genuine, &[], s.f.auth()).await;
    let r = revoke(t, &genuine, None, s.f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exchange_token(t, &genuine, &[], s.f.auth()).await;
    assert_refused(&r, "invalid_grant", "revoked");
    // Through its grant: revoking the rotated refresh token ends the grant's access tokens.
    let rotated = tokens(&refresh(t, tok.refresh.as_deref().unwrap(), s.f.auth()).await);
    exchanged(t, &rotated.access, &[], s.f.auth()).await;
    let r = revoke(t, rotated.refresh.as_deref().unwrap(), None, s.f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    exchange_token(t, &rotated.access, &[], s.f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// X1: an actor token issued to another client, or a revoked one, is refused with
/// `invalid_grant`.
pub async fn x1_exchange_foreign_or_revoked_actor_refused(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let orch = s.orch_token(t).await;
    let to_target = ("resource", s.target.as_str());
    let theirs = [
        ("actor_token", subject.as_str()),
        ("actor_token_type", ACCESS),
        to_target,
    ];
    let r = exchange_token(t, &subject, &theirs, s.orch_auth()).await;
    assert_refused(&r, "invalid_grant", "actor_token");
    let r = revoke(t, &orch, None, s.orch_auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let revoked = [
        ("actor_token", orch.as_str()),
        ("actor_token_type", ACCESS),
        to_target,
    ];
    let r = exchange_token(t, &subject, &revoked, s.orch_auth()).await;
    assert_refused(&r, "invalid_grant", "revoked");
}

/// X1 (a host whose clock the test controls): an expired subject token is refused as
/// expired.
pub async fn x1_exchange_expired_subject_refused(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let exp = jwt_claims(&subject)["exp"].as_i64().expect("exp");
    exchanged(t, &subject, &[], s.f.auth()).await;
    t.advance_clock(exp - t.now() + 1);
    let r = exchange_token(t, &subject, &[], s.f.auth()).await;
    assert_refused(&r, "invalid_grant", "expired");
}

/// X2: without an actor token the `act` chain is kept exactly (and a token without one gets
/// none); with one a hop is added, the new actor outermost.
pub async fn x2_exchange_act_chain_kept_or_extended(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let plain = exchanged(t, &subject, &[], s.f.auth()).await;
    let c = verify_access_token(t, &access(&plain), &s.f.resource).await;
    assert!(c.get("act").is_none(), "no chain from nothing: {c}");
    let orch = s.orch_token(t).await;
    let delegated = exchanged(
        t,
        &subject,
        &[
            ("actor_token", &orch),
            ("actor_token_type", ACCESS),
            ("audience", &s.target),
        ],
        s.orch_auth(),
    )
    .await;
    let c = verify_access_token(t, &access(&delegated), &s.target).await;
    let hop = json!({ "sub": s.orch.id, "client_id": s.orch.id });
    assert_eq!(c["act"], hop, "the orchestrator is the actor: {c}");
    assert_eq!(
        c["sub"],
        json!(s.f.user.id),
        "the subject is still the user"
    );
    assert_eq!(c["client_id"], json!(s.orch.id));

    // Impersonation from the delegated token keeps the chain (no laundering).
    let again = exchanged(t, &access(&delegated), &[], s.orch_auth()).await;
    let c2 = verify_access_token(t, &access(&again), &s.target).await;
    assert_eq!(
        c2["act"], hop,
        "X2: the chain survives an exchange without actor"
    );
    assert_eq!(c2["sub"], json!(s.f.user.id));

    // A second hop nests the first.
    let twice = exchanged(
        t,
        &access(&delegated),
        &[("actor_token", &orch), ("actor_token_type", ACCESS)],
        s.orch_auth(),
    )
    .await;
    let c3 = verify_access_token(t, &access(&twice), &s.target).await;
    let mut nested = hop.clone();
    nested["act"] = hop.clone();
    assert_eq!(c3["act"], nested);
    assert_eq!(c3["client_id"], json!(s.orch.id));
    let info = introspect(t, &access(&twice), s.orch_auth())
        .await
        .ok_json();
    assert_eq!(info["active"], json!(true), "{info}");
    assert_eq!(info["act"], nested, "introspection returns the chain");
}

/// X3: a delegation chain deeper than the configured maximum (default 5) is refused;
/// impersonation of a token at the limit is still allowed.
pub async fn x3_exchange_delegation_depth_limit(t: &Target) {
    let s = Setup::new(t).await;
    let orch = s.orch_token(t).await;
    let actor = [("actor_token", orch.as_str()), ("actor_token_type", ACCESS)];
    let first = exchanged(
        t,
        &s.f.tokens(t).await.access,
        &[actor[0], actor[1], ("resource", &s.target)],
        s.orch_auth(),
    )
    .await;
    let mut tok = access(&first);
    for _ in 1..5 {
        tok = access(&exchanged(t, &tok, &actor, s.orch_auth()).await);
    }
    let mut depth = 0;
    let claims = jwt_claims(&tok);
    let mut cur = &claims["act"];
    while cur.is_object() {
        depth += 1;
        cur = &cur["act"];
    }
    assert_eq!(depth, 5);
    let r = exchange_token(t, &tok, &actor, s.orch_auth()).await;
    assert_refused(&r, "invalid_request", "at most 5");
    exchanged(t, &tok, &[], s.orch_auth()).await;
}

/// The settings of [`x3_exchange_configured_depth_limit`]'s host: one actor at most.
pub const ONE_ACTOR: &[(&str, &str)] = &[("token_exchange__max_delegation_depth", "1")];

/// X3 (a host with `token_exchange.max_delegation_depth = 1`, [`ONE_ACTOR`]): the configured
/// maximum is enforced, not the default.
pub async fn x3_exchange_configured_depth_limit(t: &Target) {
    let s = Setup::new(t).await;
    let orch = s.orch_token(t).await;
    let actor = [("actor_token", orch.as_str()), ("actor_token_type", ACCESS)];
    let one = exchanged(
        t,
        &s.f.tokens(t).await.access,
        &[actor[0], actor[1], ("resource", &s.target)],
        s.orch_auth(),
    )
    .await;
    let r = exchange_token(t, &access(&one), &actor, s.orch_auth()).await;
    assert_refused(&r, "invalid_request", "at most 1");
}

/// X4: a requested scope wider than the subject token's is `invalid_scope` naming the extra
/// scope, also into another resource; narrowing works; the default is the subject token's
/// scope within the target's catalog, and nothing in common is `invalid_scope`.
pub async fn x4_exchange_scope_cannot_widen(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    assert_eq!(jwt_claims(&subject)["scope"], json!("mcp:tools"));
    let r = exchange_token(t, &subject, &[("scope", "mcp:tools mcp:read")], s.f.auth()).await;
    assert_refused(&r, "invalid_scope", "mcp:read");
    exchange_token(
        t,
        &subject,
        &[("resource", &s.target), ("scope", "tools:admin")],
        s.orch_auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_scope");
    let ok = exchanged(t, &subject, &[("resource", &s.target)], s.orch_auth()).await;
    assert_eq!(ok["scope"], json!("mcp:tools"));

    let wide = s.user_tokens(t, "mcp:tools mcp:read").await.access;
    let narrowed = exchanged(t, &wide, &[("scope", "mcp:read")], s.f.auth()).await;
    assert_eq!(narrowed["scope"], json!("mcp:read"));
    let into = exchanged(t, &wide, &[("resource", &s.target)], s.orch_auth()).await;
    assert_eq!(
        into["scope"],
        json!("mcp:tools"),
        "the subject's scope within the target's catalog"
    );
    let read_only = s.user_tokens(t, "mcp:read").await.access;
    exchange_token(t, &read_only, &[("resource", &s.target)], s.orch_auth())
        .await
        .assert_oauth_error(400, "invalid_scope");
}

/// RFC 8693 §2.2.1: the response (issued token type, bearer, scope, no refresh token) and
/// the token (the user as subject, the exchanging client, the target audience, a new `jti`,
/// never past the subject token's `exp`); `requested_token_type` jwt is echoed, others are
/// refused; the exchange is audited with its parent's `jti` and the resource.
pub async fn exchange_response_and_claims(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let sc = jwt_claims(&subject);
    let body = exchanged(t, &subject, &[("audience", &s.target)], s.orch_auth()).await;
    assert_eq!(body["token_type"], json!("Bearer"));
    assert_eq!(body["scope"], json!("mcp:tools"));
    let c = verify_access_token(t, &access(&body), &s.target).await;
    assert_eq!(c["sub"], sc["sub"]);
    assert_eq!(c["client_id"], json!(s.orch.id));
    assert_eq!(c["exp"], sc["exp"], "never past the subject token's expiry");
    assert_ne!(c["jti"], sc["jti"]);
    assert_eq!(
        body["expires_in"].as_i64(),
        Some(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap())
    );
    let r = exchange_token(t, &subject, &[("requested_token_type", JWT)], s.f.auth()).await;
    assert_eq!(tokens(&r).raw["issued_token_type"], json!(JWT));
    let refresh_type = "urn:ietf:params:oauth:token-type:refresh_token";
    exchange_token(
        t,
        &subject,
        &[("requested_token_type", refresh_type)],
        s.f.auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let events = audit_events(t, "token.exchanged", &s.orch.id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], json!("success"));
    assert_eq!(events[0]["detail"]["parent_jti"], sc["jti"]);
    assert_eq!(events[0]["detail"]["resource"], json!(s.target));
}

/// (A host whose clock the test controls.) Ten minutes into the subject token's life, an
/// exchanged token lives only for what remains of it.
pub async fn exchange_lifetime_capped_by_the_subject_token(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let exp = jwt_claims(&subject)["exp"].as_i64().expect("exp");
    t.advance_clock(600);
    let body = exchanged(t, &subject, &[("audience", &s.target)], s.orch_auth()).await;
    assert_eq!(body["expires_in"].as_i64(), Some(exp - t.now()));
    assert_eq!(jwt_claims(&access(&body))["exp"], json!(exp));
}

/// The request's parameters: a missing `subject_token` or `subject_token_type`, an
/// unsupported token type, an `actor_token` without its type or the reverse are
/// `invalid_request`; unknown or malformed targets, and `resource` and `audience` naming
/// different resources, are `invalid_target`.
pub async fn exchange_parameters_checked(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    let id_token = "urn:ietf:params:oauth:token-type:id_token";
    for form in [
        vec![("grant_type", GRANT)],
        vec![("grant_type", GRANT), ("subject_token", subject.as_str())],
        vec![
            ("grant_type", GRANT),
            ("subject_token", subject.as_str()),
            ("subject_token_type", id_token),
        ],
    ] {
        token(t, &form, s.f.auth())
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    for extra in [
        [("actor_token", subject.as_str())],
        [("actor_token_type", ACCESS)],
    ] {
        exchange_token(t, &subject, &extra, s.f.auth())
            .await
            .assert_oauth_error(400, "invalid_request");
    }
    let fragment = format!("{}#frag", s.f.resource);
    for extra in [
        [("resource", "https://unknown.example.com/mcp")],
        [("audience", "https://unknown.example.com/mcp")],
        [("resource", fragment.as_str())],
    ] {
        exchange_token(t, &subject, &extra, s.f.auth())
            .await
            .assert_oauth_error(400, "invalid_target");
    }
    let both = [
        ("resource", s.f.resource.as_str()),
        ("audience", s.target.as_str()),
    ];
    exchange_token(t, &subject, &both, s.f.auth())
        .await
        .assert_oauth_error(400, "invalid_target");
}

/// The exchange policy: only the subject token's own client (same audience) or a client in
/// the target's `exchange_clients` may exchange, and only a confidential client may exchange
/// another client's token; a client not registered for the grant may not use it. Others get
/// `unauthorized_client`.
pub async fn exchange_policy_refused(t: &Target) {
    let public = new_client(t, "none", &["authorization_code", "refresh_token", GRANT]).await;
    let s = Setup::with_exchangers(t, &[&public.id]).await;
    let outsider = new_client(t, "client_secret_basic", &["client_credentials", GRANT]).await;
    let outsider_auth = Auth::Basic(&outsider.id, outsider.secret.as_deref().unwrap());
    let subject = s.f.tokens(t).await.access;
    for target in [s.f.resource.as_str(), s.target.as_str()] {
        exchange_token(t, &subject, &[("resource", target)], outsider_auth)
            .await
            .assert_oauth_error(400, "unauthorized_client");
    }
    exchanged(t, &subject, &[], s.f.auth()).await;
    exchange_token(t, &subject, &[("resource", &s.target)], s.f.auth())
        .await
        .assert_oauth_error(400, "unauthorized_client");
    exchange_token(
        t,
        &subject,
        &[("resource", "https://unknown.example.com/mcp")],
        s.orch_auth(),
    )
    .await
    .assert_oauth_error(400, "invalid_target");

    // A listed public client proves nothing about itself: no cross-client exchange, but its
    // own tokens it may exchange (same audience, or the target where it is listed).
    let public_auth = Auth::Public(&public.id);
    let r = exchange_token(t, &subject, &[("resource", &s.target)], public_auth).await;
    r.assert_oauth_error(400, "unauthorized_client");
    assert!(r.body.contains("confidential"), "{}", r.body);
    let f = Fixture {
        resource: s.f.resource.clone(),
        user: s.f.user.clone(),
        client: public.clone(),
    };
    let own = f.tokens(t).await.access;
    exchanged(t, &own, &[("scope", "mcp:tools")], public_auth).await;
    exchanged(t, &own, &[("resource", &s.target)], public_auth).await;

    // A client not registered for the grant.
    let plain = Fixture {
        resource: s.f.resource.clone(),
        user: s.f.user.clone(),
        client: new_client(
            t,
            "client_secret_basic",
            &["authorization_code", "refresh_token"],
        )
        .await,
    };
    let theirs = plain.tokens(t).await.access;
    exchange_token(t, &theirs, &[], plain.auth())
        .await
        .assert_oauth_error(400, "unauthorized_client");
}

/// The metadata advertises the grant.
pub async fn exchange_grant_advertised(t: &Target) {
    let doc = send(http().get(t.url("/.well-known/oauth-authorization-server")))
        .await
        .ok_json();
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .is_some_and(|g| g.contains(&json!(GRANT))),
        "{doc}"
    );
}
