//! The admin API of workload identity federation (`/admin/workload-issuers`,
//! `/admin/workload-rules`) over HTTP: what it refuses (plain http off loopback, a SPIFFE trust
//! domain without keys, both `jwks` and `jwks_uri`, private keys, SSRF destinations, unknown
//! fields, rules naming unknown issuers, resources, clients or scopes, a subject of only `*`),
//! updates, listings, and deletion cascading to rules (whose workloads are then refused).

use serde_json::json;

use super::super::support::*;
use super::super::Target;
use super::{agent_client, allow, exchange, Issuer};

fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// Issuers and rules are validated; an update keeps the rule's id; deleting an issuer deletes
/// its rules, and its workloads' JWTs are then untrusted.
pub async fn admin_workload_issuers_and_rules_validate_and_cascade(t: &Target) {
    let gh = Issuer::github().await;
    let issuer = gh.issuer.clone();
    let jwks = json!({ "keys": [gh.jwk] });
    let mut private = gh.private_jwk.clone();
    private["kid"] = json!("k");
    let plain_http = issuer.replacen("https://", "http://", 1);
    let post = |body: serde_json::Value| {
        admin(
            t,
            reqwest::Method::POST,
            "/admin/workload-issuers",
            Some(body),
        )
    };
    for bad in [
        json!({ "issuer": plain_http, "jwks": jwks }),
        json!({ "issuer": format!("{issuer}#f"), "jwks": jwks }),
        json!({ "issuer": "spiffe://example.org" }),
        json!({ "issuer": "spiffe://Example.org", "jwks": jwks }),
        json!({ "issuer": issuer, "jwks": jwks, "jwks_uri": format!("{issuer}/jwks") }),
        json!({ "issuer": issuer, "jwks": { "keys": [private] } }),
        json!({ "issuer": issuer, "jwks_uri": "https://169.254.169.254/jwks" }),
        json!({ "issuer": issuer, "audiences": ["two words"] }),
        json!({ "issuer": issuer, "unknown": 1 }),
    ] {
        let r = post(bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", short(&r.body));
    }
    let r = post(json!({ "issuer": issuer, "jwks": jwks })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["key_source"], json!("inline"));
    assert_eq!(
        r.json()["accepted_audiences"],
        json!([t.url("/oauth/token")]),
        "by default the token endpoint URL, as the extension requires"
    );
    let r = post(json!({ "issuer": issuer, "jwks": jwks, "audiences": ["portcullis"] })).await;
    assert_eq!(r.status, 200, "an update: {}", r.body);
    assert_eq!(r.json()["accepted_audiences"], json!(["portcullis"]));
    let r = post(json!({ "issuer": issuer, "jwks": jwks })).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let resource = new_resource(t, &SCOPES).await;
    let client = agent_client(t).await;
    let rule = |subject: &str, resource: &str, client_id: &str, scopes: serde_json::Value| {
        let body = json!({
            "issuer": issuer, "subject": subject, "resource": resource,
            "client_id": client_id, "scopes": scopes,
        });
        admin(
            t,
            reqwest::Method::POST,
            "/admin/workload-rules",
            Some(body),
        )
    };
    let unknown_resource = format!("{resource}/unknown");
    for (case, r) in [
        (
            "only *",
            rule("*", &resource, &client.id, json!(["mcp:tools"])).await,
        ),
        (
            "a space",
            rule("repo:a b", &resource, &client.id, json!(["mcp:tools"])).await,
        ),
        (
            "unknown resource",
            rule(
                "repo:acme/*",
                &unknown_resource,
                &client.id,
                json!(["mcp:tools"]),
            )
            .await,
        ),
        (
            "unknown client",
            rule(
                "repo:acme/*",
                &resource,
                "no-such-client",
                json!(["mcp:tools"]),
            )
            .await,
        ),
        (
            "scope not in catalog",
            rule("repo:acme/*", &resource, &client.id, json!(["admin"])).await,
        ),
        (
            "no scopes",
            rule("repo:acme/*", &resource, &client.id, json!([])).await,
        ),
    ] {
        assert_eq!(r.status, 400, "{case}: {}", short(&r.body));
    }
    let stranger = admin(
        t,
        reqwest::Method::POST,
        "/admin/workload-rules",
        Some(json!({
            "issuer": "https://unknown-issuer.example.com", "subject": "x",
            "resource": resource, "client_id": client.id, "scopes": ["mcp:tools"],
        })),
    )
    .await;
    assert_eq!(stranger.status, 400, "{}", stranger.body);
    let first = allow(
        t,
        &issuer,
        "repo:acme/*",
        &resource,
        &client.id,
        &["mcp:tools"],
    )
    .await;
    let r = rule(
        "repo:acme/*",
        &resource,
        &client.id,
        json!(["mcp:tools", "mcp:read"]),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "the same issuer, subject and resource: {}",
        r.body
    );
    assert_eq!(r.json()["id"], first["id"]);
    let path = format!("/admin/workload-rules?issuer={}", enc(&issuer));
    let list = admin_ok(t, reqwest::Method::GET, &path, None).await;
    assert_eq!(
        list["workload_rules"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    let jwt = gh.sign(&gh.claims(t, "repo:acme/x")).await;
    let r = exchange(t, &jwt, &[("resource", &resource)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(tokens(&r).raw["scope"], json!("mcp:tools mcp:read"));

    let del = format!("/admin/workload-issuers?issuer={}", enc(&issuer));
    assert_eq!(
        admin(t, reqwest::Method::DELETE, &del, None).await.status,
        204
    );
    assert_eq!(
        admin(t, reqwest::Method::DELETE, &del, None).await.status,
        404
    );
    let list = admin_ok(t, reqwest::Method::GET, &path, None).await;
    assert_eq!(
        list["workload_rules"],
        json!([]),
        "rules go with their issuer"
    );
    let jwt = gh.sign(&gh.claims(t, "repo:acme/x")).await;
    exchange(t, &jwt, &[("resource", &resource)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    let gone = format!(
        "/admin/workload-rules/{}",
        enc(first["id"].as_str().unwrap())
    );
    assert_eq!(
        admin(t, reqwest::Method::DELETE, &gone, None).await.status,
        404
    );
}
