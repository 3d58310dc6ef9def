//! Token exchange (RFC 8693): X1–X4, the exchange policy, the response, DPoP binding carried
//! over, and revocation reaching every token exchanged from a revoked one.

use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use super::harness::*;
use crate::access_token::{self as issue, AccessTokenSpec};
use crate::config::{Config, SeedClient, SeedResource};
use crate::endpoints::token::exchange::{ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE};
use crate::endpoints::token::TOKEN_EXCHANGE;
use crate::store::repo::{access, audit};

/// A second resource; only [`ORCH`] may exchange into it.
const OTHER: &str = "https://tools.example.com/mcp";
/// A confidential orchestrator listed in [`OTHER`]'s `exchange_clients`.
const ORCH: &str = "orchestrator";
const ORCH_SECRET: &str = "orchestrator-secret-0123456789";
/// A confidential client listed nowhere.
const OUTSIDER: &str = "outsider";
const OUTSIDER_SECRET: &str = "outsider-secret-0123456789";

fn exchange_config() -> Config {
    let mut cfg = config();
    for c in &mut cfg.clients {
        c.grant_types.push(TOKEN_EXCHANGE.into());
    }
    cfg.resources.push(SeedResource {
        uri: OTHER.into(),
        scopes: vec!["mcp:tools".into(), "other:admin".into()],
        name: Some("Other MCP".into()),
        introspection_clients: vec![],
        exchange_clients: vec![ORCH.into(), PUBLIC.into()],
    });
    // Machine clients shaped like the confidential one (whatever else a seed client holds).
    let template: SeedClient = cfg.clients[1].clone();
    for (id, secret) in [(ORCH, ORCH_SECRET), (OUTSIDER, OUTSIDER_SECRET)] {
        let mut c = template.clone();
        c.client_id = id.into();
        c.client_secret = Some(secret.into());
        c.client_name = None;
        c.redirect_uris = vec![];
        c.grant_types = vec!["client_credentials".into(), TOKEN_EXCHANGE.into()];
        c.scope = None;
        c.token_endpoint_auth_method = Some("client_secret_basic".into());
        cfg.clients.push(c);
    }
    cfg
}

fn h() -> H {
    H::with_config(exchange_config())
}

fn secret_of(client: &str) -> Option<&'static str> {
    match client {
        CONFIDENTIAL => Some(SECRET),
        ORCH => Some(ORCH_SECRET),
        OUTSIDER => Some(OUTSIDER_SECRET),
        _ => None,
    }
}

fn basic(client: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"))
    )
}

/// POSTs `form` to `path` as `client` (Basic for confidential clients).
fn post_as(h: &H, path: &str, client: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    let auth;
    let mut headers = vec![];
    match secret_of(client) {
        Some(s) => {
            auth = basic(client, s);
            headers.push(("authorization", auth.as_str()));
        }
        None => form.push(("client_id", client)),
    }
    json_of(h.post_form(path, &form, &headers))
}

/// A token exchange by `client` of `subject`, with extra parameters.
fn xchg(h: &H, client: &str, subject: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    form.extend_from_slice(extra);
    post_as(h, "/oauth/token", client, &form)
}

/// Like [`xchg`], requiring success; returns the new access token.
fn xchg_ok(h: &H, client: &str, subject: &str, extra: &[(&str, &str)]) -> String {
    let (status, body) = xchg(h, client, subject, extra);
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn assert_error(got: (StatusCode, Value), error: &str) -> String {
    let (status, body) = got;
    assert_eq!(body["error"], error, "{body}");
    assert!(status.is_client_error(), "{status}");
    body["error_description"].as_str().unwrap_or("").to_owned()
}

/// A user (alice) token of `client` for RESOURCE, with its refresh token.
fn user_tokens(h: &H, client: &str, scope: Option<&str>) -> (String, String) {
    let extra: Vec<(&str, &str)> = scope.map(|s| ("scope", s)).into_iter().collect();
    let url = h.authorize(client, &extra, true);
    let code = query(&url, "code").unwrap();
    let (status, body) = h.redeem(client, &code);
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn user_token(h: &H, client: &str) -> String {
    user_tokens(h, client, None).0
}

/// A client_credentials token of the orchestrator (its actor token) for `resource`.
fn orch_token(h: &H, resource: &str) -> String {
    let (status, body) = post_as(
        h,
        "/oauth/token",
        ORCH,
        &[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "mcp:tools"),
        ],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn actor(token: &str) -> [(&str, &str); 2] {
    [
        ("actor_token", token),
        ("actor_token_type", ACCESS_TOKEN_TYPE),
    ]
}

fn part(jwt: &str, i: usize) -> Value {
    let seg = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(seg)
            .unwrap(),
    )
    .unwrap()
}

fn claims(jwt: &str) -> Value {
    part(jwt, 1)
}

fn introspect_as(h: &H, client: &str, token: &str) -> Value {
    post_as(h, "/oauth/introspect", client, &[("token", token)]).1
}

/// Signs `claims` as an `at+jwt` with a throwaway P-256 key.
fn foreign_jwt(kid: &str, claims: &Value) -> String {
    use crate::crypto::CryptoProvider;
    let scalar = crate::crypto::rustcrypto::generate_scalar(&crate::runtime::SeededRng::new(0xbad));
    let signer = crate::crypto::RustCrypto.es256_signer(&scalar).unwrap();
    block(crate::jose::sign_es256(
        signer.as_ref(),
        kid,
        "at+jwt",
        claims,
    ))
    .unwrap()
}

#[test]
fn x1_subject_token_from_another_issuer_or_key_refused() {
    let h = h();
    let genuine = user_token(&h, CONFIDENTIAL);
    let our_kid = part(&genuine, 0)["kid"].as_str().unwrap().to_owned();
    // A forgery: our issuer and kid, every claim copied, signed with another key.
    let forged = foreign_jwt(&our_kid, &claims(&genuine));
    // Another issuer's token with its own key.
    let mut other = claims(&genuine);
    other["iss"] = json!("https://idp.evil.example");
    let foreign = foreign_jwt("evil-key", &other);
    for bad in [forged.as_str(), foreign.as_str(), "not-a-jwt"] {
        let why = assert_error(xchg(&h, CONFIDENTIAL, bad, &[]), "invalid_grant");
        assert!(why.contains("subject_token"), "{why}");
        // The same goes for an actor token.
        let actor_token = if bad == "not-a-jwt" { bad } else { &forged };
        assert_error(
            xchg(&h, CONFIDENTIAL, &genuine, &actor(actor_token)),
            "invalid_grant",
        );
    }
    // The genuine token is accepted.
    xchg_ok(&h, CONFIDENTIAL, &genuine, &[]);
}

#[test]
fn x1_revoked_subject_token_refused() {
    let h = h();
    let (at, rt) = user_tokens(&h, CONFIDENTIAL, None);
    let (status, _) = post_as(&h, "/oauth/revoke", CONFIDENTIAL, &[("token", &at)]);
    assert_eq!(status, StatusCode::OK);
    let why = assert_error(xchg(&h, CONFIDENTIAL, &at, &[]), "invalid_grant");
    assert!(why.contains("revoked"), "{why}");

    // Through its grant: revoking the refresh token ends the grant.
    let (status, body) = post_as(
        &h,
        "/oauth/token",
        CONFIDENTIAL,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let at2 = body["access_token"].as_str().unwrap().to_owned();
    let rt2 = body["refresh_token"].as_str().unwrap().to_owned();
    post_as(&h, "/oauth/revoke", CONFIDENTIAL, &[("token", &rt2)]);
    assert_error(xchg(&h, CONFIDENTIAL, &at2, &[]), "invalid_grant");
}

#[test]
fn x1_expired_subject_token_refused() {
    let h = h();
    let at = user_token(&h, CONFIDENTIAL);
    h.clock.advance(900);
    let why = assert_error(xchg(&h, CONFIDENTIAL, &at, &[]), "invalid_grant");
    assert!(why.contains("expired"), "{why}");
}

#[test]
fn x1_revoked_or_foreign_client_actor_token_refused() {
    let h = h();
    let subject = user_token(&h, CONFIDENTIAL);
    let orch = orch_token(&h, OTHER);
    // Another client's token as actor token.
    let why = assert_error(
        xchg(
            &h,
            ORCH,
            &subject,
            &[&actor(&subject)[..], &[("resource", OTHER)]].concat(),
        ),
        "invalid_grant",
    );
    assert!(why.contains("actor_token"), "{why}");
    post_as(&h, "/oauth/revoke", ORCH, &[("token", &orch)]);
    let why = assert_error(
        xchg(
            &h,
            ORCH,
            &subject,
            &[&actor(&orch)[..], &[("resource", OTHER)]].concat(),
        ),
        "invalid_grant",
    );
    assert!(why.contains("revoked"), "{why}");
}

#[test]
fn x2_without_actor_the_chain_is_kept() {
    let h = h();
    let subject = user_token(&h, CONFIDENTIAL);
    let orch = orch_token(&h, RESOURCE);
    let delegated = xchg_ok(
        &h,
        ORCH,
        &subject,
        &[&actor(&orch)[..], &[("resource", OTHER)]].concat(),
    );
    let chain = claims(&delegated)["act"].clone();
    assert_eq!(chain, json!({"sub": ORCH, "client_id": ORCH}));
    // Impersonation from the delegated token, by the same client into the same audience:
    // the chain is carried over unchanged, never dropped.
    let again = xchg_ok(&h, ORCH, &delegated, &[("scope", "mcp:tools")]);
    let c = claims(&again);
    assert_eq!(c["act"], chain, "X2: no laundering of the act chain");
    assert_eq!(c["sub"], claims(&subject)["sub"]);
    // A token without a chain gets none.
    let plain = xchg_ok(&h, CONFIDENTIAL, &subject, &[]);
    assert!(claims(&plain).get("act").is_none());
}

#[test]
fn x2_actor_token_adds_a_hop() {
    let h = h();
    let subject = user_token(&h, CONFIDENTIAL);
    let orch = orch_token(&h, RESOURCE);
    let first = xchg_ok(
        &h,
        ORCH,
        &subject,
        &[&actor(&orch)[..], &[("resource", OTHER)]].concat(),
    );
    let second = xchg_ok(&h, ORCH, &first, &actor(&orch));
    let c = claims(&second);
    assert_eq!(
        c["act"],
        json!({"sub": ORCH, "client_id": ORCH, "act": {"sub": ORCH, "client_id": ORCH}}),
        "the new actor is outermost, the earlier one nested"
    );
    assert_eq!(c["client_id"], ORCH);
    assert_eq!(c["aud"], OTHER);
    // Introspection shows the chain to the token's client.
    let info = introspect_as(&h, ORCH, &second);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["act"], c["act"]);
}

#[test]
fn x3_chain_deeper_than_the_default_maximum_refused() {
    let h = h();
    assert_eq!(h.server.config().token_exchange.max_delegation_depth, 5);
    let orch = orch_token(&h, RESOURCE);
    let mut token = xchg_ok(
        &h,
        ORCH,
        &user_token(&h, CONFIDENTIAL),
        &[&actor(&orch)[..], &[("resource", OTHER)]].concat(),
    );
    for _ in 1..5 {
        token = xchg_ok(&h, ORCH, &token, &actor(&orch));
    }
    assert_eq!(
        crate::endpoints::token::exchange::depth(Some(&claims(&token)["act"])),
        5
    );
    let why = assert_error(xchg(&h, ORCH, &token, &actor(&orch)), "invalid_request");
    assert!(why.contains("at most 5"), "{why}");
    // Impersonation at the limit is still fine.
    xchg_ok(&h, ORCH, &token, &[]);
}

#[test]
fn x3_configured_maximum_enforced() {
    let mut cfg = exchange_config();
    cfg.token_exchange.max_delegation_depth = 1;
    let h = H::with_config(cfg);
    let orch = orch_token(&h, RESOURCE);
    let one = xchg_ok(
        &h,
        ORCH,
        &user_token(&h, CONFIDENTIAL),
        &[&actor(&orch)[..], &[("resource", OTHER)]].concat(),
    );
    assert_error(xchg(&h, ORCH, &one, &actor(&orch)), "invalid_request");
}

#[test]
fn x4_scope_wider_than_the_subject_token_refused() {
    let h = h();
    let (narrow, _) = user_tokens(&h, CONFIDENTIAL, Some("mcp:tools"));
    assert_eq!(claims(&narrow)["scope"], "mcp:tools");
    let why = assert_error(
        xchg(
            &h,
            CONFIDENTIAL,
            &narrow,
            &[("scope", "mcp:tools mcp:resources")],
        ),
        "invalid_scope",
    );
    assert!(why.contains("mcp:resources"), "{why}");
    // Into another resource: the catalog's other scopes are not reachable either.
    assert_error(
        xchg(
            &h,
            ORCH,
            &narrow,
            &[("resource", OTHER), ("scope", "other:admin")],
        ),
        "invalid_scope",
    );
    // Narrowing works, and the default is the subject scope within the target catalog.
    let (wide, _) = user_tokens(&h, CONFIDENTIAL, None);
    assert_eq!(claims(&wide)["scope"], "mcp:tools mcp:resources");
    let (status, body) = xchg(&h, CONFIDENTIAL, &wide, &[("scope", "mcp:resources")]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp:resources");
    let (status, body) = xchg(&h, ORCH, &wide, &[("resource", OTHER)]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "mcp:tools", "subject scope ∩ target catalog");
    // Nothing in common with the target: refused.
    let (resources_only, _) = user_tokens(&h, CONFIDENTIAL, Some("mcp:resources"));
    assert_error(
        xchg(&h, ORCH, &resources_only, &[("resource", OTHER)]),
        "invalid_scope",
    );
}

#[test]
fn exchange_response_and_claims() {
    let h = h();
    let subject = user_token(&h, CONFIDENTIAL);
    let sc = claims(&subject);
    h.clock.advance(600);
    let (status, body) = xchg(&h, ORCH, &subject, &[("audience", OTHER)]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:tools");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let now = h.server.now();
    assert_eq!(
        body["expires_in"].as_i64().unwrap(),
        sc["exp"].as_i64().unwrap() - now,
        "never past the subject token's expiry"
    );
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], sc["sub"]);
    assert_eq!(c["client_id"], ORCH);
    assert_eq!(c["aud"], OTHER);
    assert_eq!(c["exp"], sc["exp"]);
    assert_ne!(c["jti"], sc["jti"]);
    // The requested token type jwt is echoed; others are refused.
    let (status, body) = xchg(
        &h,
        CONFIDENTIAL,
        &subject,
        &[("requested_token_type", JWT_TOKEN_TYPE)],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], JWT_TOKEN_TYPE);
    assert_error(
        xchg(
            &h,
            CONFIDENTIAL,
            &subject,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        ),
        "invalid_request",
    );
    // The audit log records the exchange with its parent.
    let events = block(audit::list(
        h.sql.as_ref(),
        &audit::AuditFilter {
            action: Some("token.exchanged".into()),
            limit: 10,
            ..Default::default()
        },
    ))
    .unwrap();
    let last = events
        .iter()
        .find(|e| e.client_id.as_deref() == Some(ORCH))
        .expect("the orchestrator's exchange is audited");
    let detail = last.detail.as_ref().unwrap();
    assert_eq!(detail["parent_jti"], sc["jti"]);
    assert_eq!(detail["resource"], OTHER);
    assert_eq!(last.client_id.as_deref(), Some(ORCH));
}

#[test]
fn exchange_parameters_checked() {
    let h = h();
    let subject = user_token(&h, CONFIDENTIAL);
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![("grant_type", TOKEN_EXCHANGE), ("subject_token", "x")];
        f.extend_from_slice(extra);
        f
    };
    // Missing subject_token / subject_token_type, unsupported types.
    for f in [
        vec![("grant_type", TOKEN_EXCHANGE)],
        form(&[]),
        form(&[(
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        )]),
    ] {
        assert_error(
            post_as(&h, "/oauth/token", CONFIDENTIAL, &f),
            "invalid_request",
        );
    }
    // actor_token without its type, and the reverse.
    assert_error(
        xchg(&h, CONFIDENTIAL, &subject, &[("actor_token", &subject)]),
        "invalid_request",
    );
    assert_error(
        xchg(
            &h,
            CONFIDENTIAL,
            &subject,
            &[("actor_token_type", ACCESS_TOKEN_TYPE)],
        ),
        "invalid_request",
    );
    // Unknown targets.
    for extra in [
        [("resource", "https://unknown.example.com/mcp")],
        [("audience", "https://unknown.example.com/mcp")],
        [("resource", "https://mcp.example.com/mcp#frag")],
    ] {
        assert_error(xchg(&h, CONFIDENTIAL, &subject, &extra), "invalid_target");
    }
    assert_error(
        xchg(
            &h,
            CONFIDENTIAL,
            &subject,
            &[("resource", RESOURCE), ("audience", OTHER)],
        ),
        "invalid_target",
    );
}

#[test]
fn exchange_policy_refusals() {
    let h = h();
    let subject = user_token(&h, CONFIDENTIAL);
    // A client listed nowhere cannot exchange another client's token, anywhere.
    for extra in [[("resource", RESOURCE)], [("resource", OTHER)]] {
        assert_error(xchg(&h, OUTSIDER, &subject, &extra), "unauthorized_client");
    }
    // The token's own client keeps its audience, but needs listing for another resource.
    xchg_ok(&h, CONFIDENTIAL, &subject, &[]);
    assert_error(
        xchg(&h, CONFIDENTIAL, &subject, &[("resource", OTHER)]),
        "unauthorized_client",
    );
    // A listed public client proves nothing about itself: no cross-client exchange.
    let why = assert_error(
        xchg(&h, PUBLIC, &subject, &[("resource", OTHER)]),
        "unauthorized_client",
    );
    assert!(why.contains("confidential"), "{why}");
    // Its own tokens it may exchange (same audience; or OTHER, where it is listed).
    let own = user_token(&h, PUBLIC);
    xchg_ok(&h, PUBLIC, &own, &[("scope", "mcp:tools")]);
    xchg_ok(&h, PUBLIC, &own, &[("resource", OTHER)]);
    // A client not registered for the grant.
    let mut cfg = exchange_config();
    cfg.clients[1].grant_types.retain(|g| g != TOKEN_EXCHANGE);
    let h2 = H::with_config(cfg);
    let subject = user_token(&h2, CONFIDENTIAL);
    assert_error(
        xchg(&h2, CONFIDENTIAL, &subject, &[]),
        "unauthorized_client",
    );
}

#[test]
fn revoking_a_token_revokes_what_was_exchanged_from_it() {
    let h = h();
    let root = user_token(&h, CONFIDENTIAL);
    let orch = orch_token(&h, RESOURCE);
    let child = xchg_ok(&h, ORCH, &root, &[("resource", OTHER)]);
    let grandchild = xchg_ok(&h, ORCH, &child, &actor(&orch));
    let sibling = xchg_ok(&h, CONFIDENTIAL, &root, &[]);
    assert_eq!(introspect_as(&h, ORCH, &grandchild)["active"], true);
    // Revoking the child leaves the root alone.
    post_as(&h, "/oauth/revoke", ORCH, &[("token", &child)]);
    assert_eq!(introspect_as(&h, ORCH, &grandchild)["active"], false);
    assert_eq!(h.introspect(&root)["active"], true);
    assert_eq!(h.introspect(&sibling)["active"], true);
    // Revoking the root by its owner reaches every descendant.
    post_as(&h, "/oauth/revoke", CONFIDENTIAL, &[("token", &root)]);
    assert_eq!(h.introspect(&sibling)["active"], false);
    assert_error(xchg(&h, CONFIDENTIAL, &sibling, &[]), "invalid_grant");
}

#[test]
fn revoking_the_grant_revokes_exchanged_tokens() {
    let h = h();
    let (root, rt) = user_tokens(&h, CONFIDENTIAL, None);
    let child = xchg_ok(&h, ORCH, &root, &[("resource", OTHER)]);
    let grandchild = xchg_ok(&h, ORCH, &child, &[]);
    post_as(&h, "/oauth/revoke", CONFIDENTIAL, &[("token", &rt)]);
    for t in [&child, &grandchild] {
        assert_eq!(introspect_as(&h, ORCH, t)["active"], false);
        assert_error(xchg(&h, ORCH, t, &[]), "invalid_grant");
    }
}

#[test]
fn revoking_a_client_credentials_root_after_the_exchange() {
    let h = h();
    // A client_credentials token has no record until it is revoked.
    let root = orch_token(&h, OTHER);
    let child = xchg_ok(&h, ORCH, &root, &[]);
    post_as(&h, "/oauth/revoke", ORCH, &[("token", &root)]);
    let jti = claims(&child)["jti"].as_str().unwrap().to_owned();
    assert!(block(access::is_revoked(h.sql.as_ref(), &jti)).unwrap());
    assert_eq!(introspect_as(&h, ORCH, &child)["active"], false);
}

#[test]
fn exchange_lineage_is_bounded() {
    let h = h();
    let mut token = user_token(&h, CONFIDENTIAL);
    for _ in 1..access::MAX_LINEAGE {
        token = xchg_ok(&h, CONFIDENTIAL, &token, &[]);
    }
    // The last token's revocation still reaches back to the root's grant.
    let jti = claims(&token)["jti"].as_str().unwrap().to_owned();
    let lineage = block(access::lineage(h.sql.as_ref(), &jti)).unwrap();
    assert_eq!(lineage.length, access::MAX_LINEAGE);
    assert!(!lineage.revoked);
    assert_error(xchg(&h, CONFIDENTIAL, &token, &[]), "invalid_request");
}

/// A subject token bound to a DPoP key (minted directly: the proof checks have their own
/// tests).
fn bound_token(h: &H, client: &str, jkt: &str) -> String {
    let (jwt, _) = block(issue::access_token(
        &h.server,
        &AccessTokenSpec {
            sub: "alice-id",
            aud: RESOURCE,
            client_id: client,
            scope: "mcp:tools",
            ttl: 300,
            grant_id: None,
            auth_time: None,
            dpop_jkt: Some(jkt),
            act: None,
            parent_jti: None,
        },
    ))
    .unwrap();
    jwt
}

#[test]
fn dpop_binding_is_carried_over_without_a_new_proof() {
    let h = h();
    let subject = bound_token(&h, CONFIDENTIAL, "thumbprint-of-the-key");
    let (status, body) = xchg(&h, CONFIDENTIAL, &subject, &[]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["cnf"], json!({"jkt": "thumbprint-of-the-key"}));
    // Another client's exchange keeps the binding too.
    let (status, body) = xchg(&h, ORCH, &subject, &[("resource", OTHER)]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        "thumbprint-of-the-key"
    );
}

/// A token exchange by `client` carrying a DPoP proof.
fn xchg_with_proof(h: &H, client: &str, proof: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    form.push(("grant_type", TOKEN_EXCHANGE));
    form.push(("subject_token_type", ACCESS_TOKEN_TYPE));
    let auth;
    let mut headers = vec![("dpop", proof)];
    match secret_of(client) {
        Some(s) => {
            auth = basic(client, s);
            headers.push(("authorization", auth.as_str()));
        }
        None => form.push(("client_id", client)),
    }
    json_of(h.post_form("/oauth/token", &form, &headers))
}

#[test]
fn dpop_rebinding_needs_a_confidential_client() {
    use crate::dpop::test_support::Prover;
    const TOKEN_URL: &str = "http://127.0.0.1:9000/oauth/token";
    let h = h();
    let old = Prover::new(11);
    let new = Prover::new(12);
    let now = h.server.now();
    // A confidential client may re-bind its token to a new key.
    let subject = bound_token(&h, CONFIDENTIAL, &old.jkt());
    let (status, body) = xchg_with_proof(
        &h,
        CONFIDENTIAL,
        &new.proof("POST", TOKEN_URL, now),
        &[("subject_token", &subject)],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["cnf"]["jkt"], new.jkt());
    // A public client cannot move a bound token to another key (a thief's), only keep it.
    let subject = bound_token(&h, PUBLIC, &old.jkt());
    assert_error(
        xchg_with_proof(
            &h,
            PUBLIC,
            &new.proof("POST", TOKEN_URL, now),
            &[("subject_token", &subject)],
        ),
        "invalid_grant",
    );
    let (status, body) = xchg_with_proof(
        &h,
        PUBLIC,
        &old.proof("POST", TOKEN_URL, now),
        &[("subject_token", &subject)],
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        old.jkt()
    );
}

#[test]
fn dpop_bound_actor_token_needs_its_key() {
    use crate::dpop::test_support::Prover;
    const TOKEN_URL: &str = "http://127.0.0.1:9000/oauth/token";
    let h = h();
    let key = Prover::new(21);
    let other = Prover::new(22);
    let now = h.server.now();
    let subject = user_token(&h, CONFIDENTIAL);
    let actor_token = bound_token(&h, ORCH, &key.jkt());
    let form = [
        ("subject_token", subject.as_str()),
        ("actor_token", actor_token.as_str()),
        ("actor_token_type", ACCESS_TOKEN_TYPE),
        ("resource", OTHER),
    ];
    // Without a proof, or with a proof by another key: refused.
    let why = assert_error(xchg(&h, ORCH, &subject, &form[1..]), "invalid_grant");
    assert!(why.contains("DPoP"), "{why}");
    assert_error(
        xchg_with_proof(&h, ORCH, &other.proof("POST", TOKEN_URL, now), &form),
        "invalid_grant",
    );
    let (status, body) = xchg_with_proof(&h, ORCH, &key.proof("POST", TOKEN_URL, now), &form);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["act"],
        json!({"sub": "alice-id", "client_id": ORCH})
    );
}
