//! Workload identity federation, black box (MCP ext-auth draft "Workload Identity
//! Federation", SEP-1933; RFC 7523 §2.1): an agent in CI or Kubernetes presents the JWT its
//! platform issued (GitHub Actions OIDC, a Kubernetes service-account token, a SPIFFE
//! JWT-SVID) with the `jwt-bearer` grant, a `resource` and no client authentication, and gets
//! an access token. The workload JWTs are signed by node `jose` (`tests/node/idp/sign.mjs`),
//! independent of the server's verification. Refusals are in [`refusals`]; the admin API in
//! [`admin`]; keys found by OpenID Connect discovery over HTTP in [`discovery`].

mod admin;
mod discovery;
mod refusals;

pub use admin::*;
pub use discovery::*;
pub use refusals::*;

use serde_json::{json, Value};

use super::algorithms::{node_sign, token_spec};
use super::support::*;
use super::Target;
use crate::conformance::uid;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A workload issuer the test plays: an issuer identifier and a key made by node `jose`.
struct Issuer {
    issuer: String,
    alg: &'static str,
    kid: String,
    jwk: Value,
    private_jwk: Value,
}

impl Issuer {
    /// A new issuer with a fresh `alg` key (not yet trusted).
    async fn new(issuer: String, alg: &'static str) -> Self {
        let kid = uid("kid");
        let key = node_sign(json!({ "alg": alg, "kid": kid, "tokens": [] })).await;
        Self {
            issuer,
            alg,
            kid,
            jwk: key.jwk,
            private_jwk: key.private_jwk,
        }
    }

    /// A GitHub-Actions-like issuer (RS256) under a unique path.
    async fn github() -> Self {
        let issuer = format!("https://token.actions.example.com/{}", uid("gh"));
        Self::new(issuer, "RS256").await
    }

    /// Trusts this issuer through the admin API with its key inline and `audiences`.
    async fn trust(&self, t: &Target, audiences: &[&str]) {
        admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/workload-issuers",
            Some(json!({
                "issuer": self.issuer,
                "jwks": { "keys": [self.jwk] },
                "audiences": audiences,
            })),
        )
        .await;
    }

    /// Signs each of `claims` under this issuer's key (header `typ: JWT` plus `header`).
    async fn sign_all(&self, header: Value, claims: &[Value]) -> Vec<String> {
        let mut h = json!({ "typ": "JWT" });
        for (k, v) in header.as_object().into_iter().flatten() {
            h[k] = v.clone();
        }
        let tokens: Vec<Value> = claims
            .iter()
            .map(|c| token_spec(h.clone(), c.clone()))
            .collect();
        node_sign(json!({
            "alg": self.alg, "kid": self.kid, "private_jwk": self.private_jwk, "tokens": tokens,
        }))
        .await
        .tokens
    }

    async fn sign(&self, claims: &Value) -> String {
        self.sign_all(json!({}), std::slice::from_ref(claims))
            .await
            .remove(0)
    }

    /// Claims for `sub` addressed to our token endpoint, issued now, valid five minutes.
    fn claims(&self, t: &Target, sub: &str) -> Value {
        let now = t.now();
        json!({
            "iss": self.issuer, "sub": sub, "aud": t.url("/oauth/token"),
            "jti": uid("jti"), "iat": now, "nbf": now, "exp": now + 300,
        })
    }
}

/// Adds a rule through the admin API; its JSON.
async fn allow(
    t: &Target,
    issuer: &str,
    subject: &str,
    resource: &str,
    client: &str,
    scopes: &[&str],
) -> Value {
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/workload-rules",
        Some(json!({
            "issuer": issuer, "subject": subject, "resource": resource,
            "client_id": client, "scopes": scopes,
        })),
    )
    .await
}

/// The workload grant: no client authentication at all.
async fn exchange(t: &Target, assertion: &str, extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    token(t, &form, Auth::Nothing).await
}

/// A machine client the rules issue tokens to.
async fn agent_client(t: &Target) -> ClientCreds {
    new_client(t, "client_secret_basic", &["client_credentials"]).await
}

/// A GitHub Actions workflow of `acme/agent` on `main` gets a token for the MCP server with no
/// client secret: RFC 9068, verified against the JWKS, `aud` the resource, `sub` and
/// `client_id` the rule's client (with its `agent_name`), the rule's scopes (or fewer when
/// asked), no refresh token, ending no later than the workload JWT; audited as
/// `token.workload` with the issuer, the workload's `sub` and its `jti`. The same JWT cannot
/// be exchanged twice (its `jti` is single use).
pub async fn workload_identity_github_actions_without_client_secret(t: &Target) {
    let gh = Issuer::github().await;
    gh.trust(t, &[]).await;
    let resource = new_resource(t, &SCOPES).await;
    let client = agent_client(t).await;
    let rule = allow(
        t,
        &gh.issuer,
        "repo:acme/agent:*",
        &resource,
        &client.id,
        &SCOPES,
    )
    .await;
    let sub = "repo:acme/agent:ref:refs/heads/main";
    let mut c = gh.claims(t, sub);
    c["repository"] = json!("acme/agent");
    c["exp"] = json!(t.now() + 200);
    let jwt = gh.sign(&c).await;
    let r = exchange(t, &jwt, &[("resource", &resource)]).await;
    let tok = tokens(&r);
    assert!(tok.refresh.is_none(), "no refresh token: {}", tok.raw);
    assert_eq!(tok.raw["token_type"], json!("Bearer"));
    assert_eq!(tok.raw["scope"], json!("mcp:tools mcp:read"));
    let claims = verify_access_token(t, &tok.access, &resource).await;
    assert_eq!(claims["sub"], json!(client.id));
    assert_eq!(claims["client_id"], json!(client.id));
    assert!(claims["agent_name"].is_string(), "{claims}");
    assert!(claims["exp"].as_i64().unwrap() <= c["exp"].as_i64().unwrap());

    let replay = exchange(t, &jwt, &[("resource", &resource)]).await;
    replay.assert_oauth_error(400, "invalid_grant");
    assert!(replay.body.contains("already been used"), "{}", replay.body);

    let narrower = gh.sign(&gh.claims(t, sub)).await;
    let r = exchange(
        t,
        &narrower,
        &[("resource", &resource), ("scope", "mcp:read")],
    )
    .await;
    assert_eq!(tokens(&r).raw["scope"], json!("mcp:read"));

    let events = audit_events(t, "token.workload", &client.id).await;
    assert_eq!(failure_reasons(&events), vec!["replayed"]);
    let first = events.last().expect("the first grant is audited");
    assert_eq!(first["outcome"], json!("success"));
    assert_eq!(first["detail"]["issuer"], json!(gh.issuer));
    assert_eq!(first["detail"]["workload_subject"], json!(sub));
    assert_eq!(first["detail"]["assertion_jti"], c["jti"]);
    assert_eq!(first["detail"]["rule"], rule["id"]);
}

/// Kubernetes service-account tokens (an issuer trusted with its own audience, as a projected
/// token's `audience` is set) and SPIFFE JWT-SVIDs (`spiffe://` trust domain, EdDSA key): the
/// most specific matching rule decides the client (an exact subject beats a namespace pattern),
/// a token whose `aud` lists several values is accepted when one is ours, and the same
/// subject at another resource needs a rule there (`invalid_grant` without).
pub async fn workload_identity_kubernetes_and_spiffe_rules(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let other_resource = new_resource(t, &SCOPES).await;
    let (broad, exact) = (agent_client(t).await, agent_client(t).await);

    let k8s = Issuer::new(
        format!("https://oidc.cluster.example.com/{}", uid("k8s")),
        "RS256",
    )
    .await;
    let audience = format!("portcullis-{}", uid("aud"));
    k8s.trust(t, &[&audience]).await;
    let ns = "system:serviceaccount:agents:*";
    allow(t, &k8s.issuer, ns, &resource, &broad.id, &["mcp:tools"]).await;
    let router = "system:serviceaccount:agents:router";
    allow(t, &k8s.issuer, router, &resource, &exact.id, &["mcp:read"]).await;
    let mut c = k8s.claims(t, router);
    c["aud"] = json!(["https://kubernetes.default.svc", audience]);
    let mut other = k8s.claims(t, "system:serviceaccount:agents:indexer");
    other["aud"] = json!(audience);
    let mut elsewhere = k8s.claims(t, router);
    elsewhere["aud"] = json!(audience);
    let jwts = k8s.sign_all(json!({}), &[c, other, elsewhere]).await;
    let r = exchange(t, &jwts[0], &[("resource", &resource)]).await;
    let claims = verify_access_token(t, &tokens(&r).access, &resource).await;
    assert_eq!(claims["client_id"], json!(exact.id), "the exact rule wins");
    assert_eq!(claims["scope"], json!("mcp:read"));
    let r = exchange(t, &jwts[1], &[("resource", &resource)]).await;
    let claims = verify_access_token(t, &tokens(&r).access, &resource).await;
    assert_eq!(claims["client_id"], json!(broad.id), "the namespace rule");
    let r = exchange(t, &jwts[2], &[("resource", &other_resource)]).await;
    r.assert_oauth_error(400, "invalid_grant");

    let domain = format!("{}.example.org", uid("td").to_lowercase().replace('_', "-"));
    let spiffe = Issuer::new(format!("spiffe://{domain}"), "EdDSA").await;
    spiffe.trust(t, &[]).await;
    let svid = format!("spiffe://{domain}/ns/agents/sa/router");
    allow(
        t,
        &spiffe.issuer,
        &format!("spiffe://{domain}/ns/agents/sa/*"),
        &resource,
        &broad.id,
        &["mcp:tools"],
    )
    .await;
    let jwt = spiffe.sign(&spiffe.claims(t, &svid)).await;
    let r = exchange(t, &jwt, &[("resource", &resource)]).await;
    let claims = verify_access_token(t, &tokens(&r).access, &resource).await;
    assert_eq!(claims["client_id"], json!(broad.id));
}

/// A DPoP proof sent with the workload grant binds the token to its key (`token_type: DPoP`,
/// `cnf.jkt`), as for every grant (RFC 9449 §5).
pub async fn workload_identity_token_is_dpop_bound_with_a_proof(t: &Target) {
    let gh = Issuer::github().await;
    gh.trust(t, &[]).await;
    let resource = new_resource(t, &SCOPES).await;
    let client = agent_client(t).await;
    allow(
        t,
        &gh.issuer,
        "repo:acme/*",
        &resource,
        &client.id,
        &["mcp:tools"],
    )
    .await;
    let jwt = gh.sign(&gh.claims(t, "repo:acme/agent")).await;
    let key = super::dpop::Key::new();
    let form = [
        ("grant_type", JWT_BEARER),
        ("assertion", jwt.as_str()),
        ("resource", resource.as_str()),
    ];
    let r = super::dpop::dpop_token(t, &form, Auth::Nothing, &[&key.proof(t)]).await;
    let v = r.ok_json();
    assert_eq!(v["token_type"], json!("DPoP"), "{v}");
    let at = v["access_token"].as_str().expect("access_token");
    assert_eq!(jwt_claims(at)["cnf"], json!({ "jkt": key.jkt() }));
}
