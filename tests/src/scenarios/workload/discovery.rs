//! A workload issuer whose keys are found the way the extension describes: OpenID Connect
//! Discovery 1.0 §4 from the issuer (`/.well-known/openid-configuration`, then its
//! `jwks_uri`), through the host's own outbound HTTP (the SSRF-checked fetcher natively,
//! `fetch` on Workers, `wasi:http` on Spin), from a loopback issuer the test serves
//! (`cimd.allow_loopback`, the one loopback switch). Also an issuer trusted with a `jwks_uri`.

use serde_json::json;

use super::super::support::*;
use super::super::Target;
use super::{agent_client, allow, exchange, Issuer};
use crate::doc_server::DocServer;

/// Outbound calls to loopback allowed, for the test's issuer.
pub const SETTINGS: &[(&str, &str)] = &[("cimd__allow_loopback", "true")];

/// An issuer trusted by identifier alone: its keys come from discovery at the issuer, then
/// its `jwks_uri`; a workload JWT it signs is exchanged. A second issuer trusted with an
/// explicit `jwks_uri` is used without discovery. A discovery document naming another issuer
/// is refused (OpenID Connect Discovery 1.0 §4.3): `invalid_grant`, keys unavailable.
pub async fn workload_identity_keys_by_discovery(t: &Target) {
    let docs = DocServer::start();
    let resource = new_resource(t, &SCOPES).await;
    let client = agent_client(t).await;

    let by_discovery = Issuer::new(format!("{}/discovered", docs.base), "ES256").await;
    docs.json(
        "/discovered/.well-known/openid-configuration",
        &json!({ "issuer": by_discovery.issuer, "jwks_uri": format!("{}/discovered/keys", docs.base) }),
    );
    docs.json("/discovered/keys", &json!({ "keys": [by_discovery.jwk] }));
    let by_uri = Issuer::new(format!("{}/listed", docs.base), "RS256").await;
    docs.json("/listed/jwks.json", &json!({ "keys": [by_uri.jwk] }));
    let lying = Issuer::new(format!("{}/lying", docs.base), "ES256").await;
    docs.json(
        "/lying/.well-known/openid-configuration",
        &json!({ "issuer": "https://someone-else.example.com", "jwks_uri": format!("{}/lying/keys", docs.base) }),
    );
    docs.json("/lying/keys", &json!({ "keys": [lying.jwk] }));

    for (issuer, jwks_uri) in [
        (&by_discovery, None),
        (&by_uri, Some(format!("{}/listed/jwks.json", docs.base))),
        (&lying, None),
    ] {
        let mut body = json!({ "issuer": issuer.issuer });
        if let Some(u) = jwks_uri {
            body["jwks_uri"] = json!(u);
        }
        let v = admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/workload-issuers",
            Some(body),
        )
        .await;
        assert!(v["key_source"].is_string(), "{v}");
        allow(
            t,
            &issuer.issuer,
            "agent-*",
            &resource,
            &client.id,
            &["mcp:tools"],
        )
        .await;
    }

    for issuer in [&by_discovery, &by_uri] {
        let jwt = issuer.sign(&issuer.claims(t, "agent-1")).await;
        let r = exchange(t, &jwt, &[("resource", &resource)]).await;
        assert_eq!(r.status, 200, "{}: {}", issuer.issuer, short(&r.body));
        let claims = verify_access_token(t, &tokens(&r).access, &resource).await;
        assert_eq!(claims["client_id"], json!(client.id));
    }
    assert!(docs.hits("/discovered/.well-known/openid-configuration") >= 1);
    assert!(docs.hits("/discovered/keys") >= 1);
    assert_eq!(
        docs.hits("/listed/.well-known/openid-configuration"),
        0,
        "a jwks_uri needs no discovery"
    );
    let jwt = lying.sign(&lying.claims(t, "agent-1")).await;
    let r = exchange(t, &jwt, &[("resource", &resource)]).await;
    r.assert_oauth_error(400, "invalid_grant");
    assert!(r.body.contains("keys could not be obtained"), "{}", r.body);
    assert_eq!(
        docs.hits("/lying/keys"),
        0,
        "the lying document's keys are never fetched"
    );
}
