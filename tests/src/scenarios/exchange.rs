//! Token exchange (RFC 8693) scenarios: SECURITY-CHECKLIST X1–X4, the per-resource exchange
//! policy, and revocation reaching the tokens exchanged from a revoked one.

use serde_json::{json, Value};

use super::support::*;
use super::Target;

/// RFC 8693 grant type.
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 access token type.
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A user's client (A) with tokens for resource `source`, an orchestrator (confidential,
/// client_credentials) listed in the `exchange_clients` of resource `target`.
struct Setup {
    f: Fixture,
    target: String,
    orch: ClientCreds,
}

impl Setup {
    async fn new(t: &Target) -> Self {
        let orch = new_client(t, "client_secret_basic", &["client_credentials", GRANT]).await;
        let target = format!("https://tools.example.com/{}/mcp", uid());
        admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/resources",
            Some(json!({
                "uri": target,
                "scopes": ["mcp:tools", "tools:admin"],
                "name": "Scenario exchange target",
                "exchange_clients": [orch.id],
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

    /// A client_credentials token of the orchestrator (its actor token).
    async fn orch_token(&self, t: &Target) -> String {
        let r = token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &self.f.resource),
            ],
            self.orch_auth(),
        )
        .await;
        tokens(&r).access
    }
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
/// another issuer's token) or a revoked one is refused with `invalid_grant`.
pub async fn x1_exchange_foreign_or_revoked_subject_refused(t: &Target) {
    let s = Setup::new(t).await;
    let genuine = s.f.tokens(t).await.access;
    let header = jsonwebtoken::decode_header(&genuine).unwrap();
    let claims = jwt_claims(&genuine);
    let forged = foreign_jwt(header.kid.as_deref().unwrap(), &claims).await;
    let mut other = claims.clone();
    other["iss"] = json!("https://idp.attacker.example");
    let foreign = foreign_jwt("attacker-key", &other).await;
    for bad in [&forged, &foreign] {
        exchange_token(t, bad, &[], s.f.auth())
            .await
            .assert_oauth_error(400, "invalid_grant");
        exchange_token(t, bad, &[("resource", s.target.as_str())], s.orch_auth())
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
    // The genuine token works until its owner revokes it.
    exchanged(t, &genuine, &[], s.f.auth()).await;
    let r = revoke(t, &genuine, None, s.f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    exchange_token(t, &genuine, &[], s.f.auth())
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// X2: without an actor token the `act` chain is kept exactly; with one a hop is added.
pub async fn x2_exchange_act_chain_kept_or_extended(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
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
    let info = introspect(t, &access(&twice), s.orch_auth())
        .await
        .ok_json();
    assert_eq!(info["active"], json!(true), "{info}");
    assert_eq!(info["act"], nested, "introspection returns the chain");
}

/// X3: a delegation chain deeper than the configured maximum (default 5) is refused.
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
    r.assert_oauth_error(400, "invalid_request");
    assert!(r.body.contains("at most 5"), "{}", r.body);
}

/// X4: a requested scope wider than the subject token's is `invalid_scope`; narrowing works.
pub async fn x4_exchange_scope_cannot_widen(t: &Target) {
    let s = Setup::new(t).await;
    let subject = s.f.tokens(t).await.access;
    assert_eq!(jwt_claims(&subject)["scope"], json!("mcp:tools"));
    exchange_token(t, &subject, &[("scope", "mcp:tools mcp:read")], s.f.auth())
        .await
        .assert_oauth_error(400, "invalid_scope");
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
}

/// Only the subject token's own client (same audience) or a client in the target's
/// `exchange_clients` may exchange; others get `unauthorized_client`.
pub async fn exchange_policy_refused(t: &Target) {
    let s = Setup::new(t).await;
    let outsider = new_client(t, "client_secret_basic", &["client_credentials", GRANT]).await;
    let outsider_auth = Auth::Basic(&outsider.id, outsider.secret.as_deref().unwrap());
    let subject = s.f.tokens(t).await.access;
    for target in [s.f.resource.as_str(), s.target.as_str()] {
        exchange_token(t, &subject, &[("resource", target)], outsider_auth)
            .await
            .assert_oauth_error(400, "unauthorized_client");
    }
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
}

/// Revoking a token (by its owner) or its grant revokes every token exchanged from it.
pub async fn exchange_revocation_reaches_descendants(t: &Target) {
    let s = Setup::new(t).await;
    let tok = s.f.tokens(t).await;
    let child = access(&exchanged(t, &tok.access, &[("resource", &s.target)], s.orch_auth()).await);
    let grandchild = access(&exchanged(t, &child, &[], s.orch_auth()).await);
    assert!(is_active(t, &grandchild, s.orch_auth()).await);
    let r = revoke(t, &tok.access, Some("access_token"), s.f.auth()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for token in [&child, &grandchild] {
        assert!(
            !is_active(t, token, s.orch_auth()).await,
            "revoking the subject token revokes what was exchanged from it"
        );
    }
    exchange_token(t, &grandchild, &[], s.orch_auth())
        .await
        .assert_oauth_error(400, "invalid_grant");

    // Through the grant: revoking the refresh token ends the exchanged tokens too.
    let rotated = tokens(&refresh(t, tok.refresh.as_deref().unwrap(), s.f.auth()).await);
    let child = access(
        &exchanged(
            t,
            &rotated.access,
            &[("resource", &s.target)],
            s.orch_auth(),
        )
        .await,
    );
    assert!(is_active(t, &child, s.orch_auth()).await);
    let rt = rotated.refresh.as_deref().unwrap();
    assert_eq!(revoke(t, rt, None, s.f.auth()).await.status, 200);
    assert!(!is_active(t, &child, s.orch_auth()).await);
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
