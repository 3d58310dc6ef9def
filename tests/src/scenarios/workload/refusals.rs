//! Workload identity federation refusals over HTTP: each invalid workload JWT is refused on
//! its own with the draft's `invalid_grant` (wrong issuer, wrong `aud`, expired, not yet
//! valid, a lifetime over a day, no `jti`, a subject no rule matches, an ID-JAG `typ`, `alg`
//! confusion: HS256 with the issuer's public key as the secret, and `alg: none`), and none of
//! them spends the `jti` they share, which the corrected JWT then uses once; a replay of an
//! accepted JWT is refused. An unknown resource is `invalid_target`, a scope outside the rule
//! `invalid_scope`; a request with client credentials is the ID-JAG grant's, not this one.

use serde_json::{json, Value};

use super::super::algorithms::{hmac_forgery, node_sign, token_spec};
use super::super::support::*;
use super::super::Target;
use super::{agent_client, allow, exchange, Issuer};
use crate::conformance::uid;

/// `claims` with `claim` set to `value`, or removed for `None`.
fn with(claims: &Value, claim: &str, value: Option<Value>) -> Value {
    let mut c = claims.clone();
    match value {
        Some(v) => c[claim] = v,
        None => {
            c.as_object_mut().expect("claims").remove(claim);
        }
    }
    c
}

/// An unsigned JWT (`alg: none`) with these claims.
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" }).to_string()),
        b64(claims.to_string())
    )
}

/// Every violation refused with `invalid_grant`; the shared `jti` survives them all.
pub async fn workload_identity_violations_refused(t: &Target) {
    let gh = Issuer::github().await;
    gh.trust(t, &[]).await;
    let resource = new_resource(t, &SCOPES).await;
    let client = agent_client(t).await;
    allow(
        t,
        &gh.issuer,
        "repo:acme/agent:*",
        &resource,
        &client.id,
        &["mcp:tools"],
    )
    .await;
    let stranger = Issuer::github().await;
    let valid = gh.claims(t, "repo:acme/agent:ref:refs/heads/main");
    let now = t.now();
    // (case, claims, what the error description says)
    let named = [
        (
            "wrong audience: the issuer",
            with(&valid, "aud", Some(json!(t.base))),
            "aud is not an audience",
        ),
        (
            "wrong audience: another",
            with(
                &valid,
                "aud",
                Some(json!(["https://other.example.com/token"])),
            ),
            "aud is not an audience",
        ),
        (
            "expired",
            with(&valid, "exp", Some(json!(now - 1))),
            "has expired",
        ),
        ("no exp", with(&valid, "exp", None), "no 'exp'"),
        ("no iat", with(&valid, "iat", None), "no 'iat'"),
        (
            "issued in the future",
            with(&valid, "iat", Some(json!(now + 3600))),
            "iat is in the future",
        ),
        (
            "not yet valid",
            with(&valid, "nbf", Some(json!(now + 3600))),
            "not valid yet",
        ),
        (
            "lives over a day",
            with(&valid, "iat", Some(json!(now - 2 * 86_400))),
            "lives longer than",
        ),
        ("no sub", with(&valid, "sub", None), "no 'sub'"),
        ("no jti", with(&valid, "jti", None), "no 'jti'"),
        (
            "subject matched by no rule",
            with(
                &valid,
                "sub",
                Some(json!("repo:evil/agent:ref:refs/heads/main")),
            ),
            "not authorized",
        ),
    ];
    let mut specs: Vec<Value> = named
        .iter()
        .map(|(_, c, _)| token_spec(json!({ "typ": "JWT" }), c.clone()))
        .collect();
    specs.push(token_spec(
        json!({ "typ": "oauth-id-jag+jwt" }),
        valid.clone(),
    ));
    specs.push(token_spec(json!({ "typ": "at+jwt" }), valid.clone()));
    specs.push(hmac_forgery(valid.clone()));
    let signed = node_sign(json!({
        "alg": gh.alg, "kid": gh.kid, "private_jwk": gh.private_jwk, "tokens": specs,
    }))
    .await
    .tokens;
    let mut cases: Vec<(&str, String, &str)> = named
        .iter()
        .zip(signed.iter().cloned())
        .map(|((n, _, why), jwt)| (*n, jwt, *why))
        .collect();
    for (i, (n, why)) in [
        ("typ of an ID-JAG", "typ must be"),
        ("typ of an access token", "typ must be"),
        ("HS256 with the public key", "alg is not the one"),
    ]
    .into_iter()
    .enumerate()
    {
        cases.push((n, signed[named.len() + i].clone(), why));
    }
    cases.push(("alg none", unsigned(&valid), "alg is not the one"));
    let untrusted = stranger
        .sign(&with(&valid, "iss", Some(json!(stranger.issuer))))
        .await;
    cases.push((
        "untrusted issuer",
        untrusted,
        "not a trusted workload issuer",
    ));
    let signed_by_stranger = stranger.sign(&valid).await;
    cases.push((
        "signed by another key",
        signed_by_stranger,
        "matches the assertion's kid",
    ));
    cases.push(("not a JWT", "not.a.jwt".into(), "not a compact JWS"));
    for (case, jwt, why) in &cases {
        let r = exchange(t, jwt, &[("resource", &resource)]).await;
        assert_eq!(r.status, 400, "{case}: {}", short(&r.body));
        r.assert_oauth_error(400, "invalid_grant");
        let description = r.json()["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            description.contains(why),
            "{case}: '{why}' in '{description}'"
        );
    }
    // Nothing above spent the jti: the valid JWT with it is accepted, once.
    let jwt = gh.sign(&valid).await;
    let r = exchange(t, &jwt, &[("resource", &resource)]).await;
    assert_eq!(r.status, 200, "{}", short(&r.body));
    exchange(t, &jwt, &[("resource", &resource)])
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// The resource and scope: unknown resource `invalid_target`, a scope outside the rule
/// `invalid_scope`, a missing assertion `invalid_request`; none spends the `jti`. With client
/// credentials the request is the ID-JAG grant (a workload JWT there: `invalid_grant` for its
/// `typ`, or `invalid_client` for an unknown client), so a client secret never mixes in.
pub async fn workload_identity_resource_scope_and_client_credentials(t: &Target) {
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
    let jwt = gh
        .sign(&gh.claims(t, "repo:acme/agent:environment:prod"))
        .await;
    let unknown = format!("https://mcp.example.com/{}/mcp", uid("none"));
    exchange(t, &jwt, &[("resource", &unknown)])
        .await
        .assert_oauth_error(400, "invalid_target");
    exchange(t, &jwt, &[("resource", &resource), ("scope", "mcp:read")])
        .await
        .assert_oauth_error(400, "invalid_scope");
    token(
        t,
        &[("grant_type", super::JWT_BEARER), ("resource", &resource)],
        Auth::Nothing,
    )
    .await
    .assert_oauth_error(400, "invalid_request");
    let secret = client.secret.as_deref().unwrap();
    let form = [
        ("grant_type", super::JWT_BEARER),
        ("assertion", jwt.as_str()),
        ("resource", resource.as_str()),
    ];
    // The client is registered for client_credentials only.
    token(t, &form, Auth::Basic(&client.id, secret))
        .await
        .assert_oauth_error(400, "unauthorized_client");
    let r = token(t, &form, Auth::Public("nobody")).await;
    r.assert_oauth_error(401, "invalid_client");
    let r = exchange(t, &jwt, &[("resource", &resource)]).await;
    assert_eq!(r.status, 200, "the jti was not spent: {}", short(&r.body));
}
