//! The admin API for trusted IdPs and their policies (`/admin/idps`, `/admin/idp-policies`)
//! over HTTP: what it refuses (bad issuers, private or symmetric keys, SSRF destinations,
//! unknown fields, policies naming unknown IdPs, resources or scopes), updates, listings,
//! deletion cascading to policies, and the effect on the grant of an IdP restricted to other
//! audiences or deleted.

use serde_json::json;

use super::super::support::*;
use super::super::Target;
use super::{Setup, TestIdp};

fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The admin API validates IdPs and policies; deleting an IdP deletes its policies; an IdP
/// restricted to other audiences cannot vouch for this resource (403), and a deleted IdP's
/// assertions are untrusted.
pub async fn admin_idps_validate_and_cascade(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let idp = TestIdp::new();
    let issuer = idp.issuer.clone();
    let post = |body: serde_json::Value| admin(t, reqwest::Method::POST, "/admin/idps", Some(body));
    let mut private = idp.jwk.clone();
    private["d"] = json!(b64([1u8; 32]));
    let plain_http = issuer.replacen("https://", "http://", 1);
    for bad in [
        json!({ "issuer": plain_http, "jwks": idp.jwks() }),
        json!({ "issuer": format!("{issuer}?x"), "jwks": idp.jwks() }),
        json!({ "issuer": issuer, "jwks": idp.jwks(), "jwks_uri": format!("{issuer}/jwks") }),
        json!({ "issuer": issuer, "jwks": { "keys": [{ "kty": "oct", "k": "AAAA" }] } }),
        json!({ "issuer": issuer, "jwks": { "keys": [] } }),
        json!({ "issuer": issuer, "jwks": { "keys": [private] } }),
        json!({ "issuer": issuer, "jwks_uri": "https://169.254.169.254/jwks" }),
        json!({ "issuer": issuer, "jwks_uri": format!("{plain_http}/jwks") }),
        json!({ "issuer": issuer, "allowed_audiences": ["not a uri"] }),
        json!({ "issuer": issuer, "unknown": 1 }),
    ] {
        let r = post(bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", short(&r.body));
    }
    let r =
        post(json!({ "issuer": issuer, "jwks": idp.jwks(), "allowed_audiences": [s.resource] }))
            .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["key_source"], json!("inline"));
    let r = post(json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") })).await;
    assert_eq!(r.status, 200, "an update: {}", r.body);
    let list = admin_ok(t, reqwest::Method::GET, "/admin/idps", None).await;
    let listed = list["idps"].as_array().expect("a list of IdPs");
    for i in [&issuer, &s.idp.issuer] {
        assert!(listed.iter().any(|x| x["issuer"] == json!(i)), "{i} listed");
    }

    // Policies need a registered IdP and resource, and scopes from the catalog.
    let policy = |issuer: &str, resource: &str, scopes: serde_json::Value| {
        let body = json!({
            "issuer": issuer, "client_id": s.client.id, "resource": resource, "scopes": scopes,
        });
        admin(t, reqwest::Method::POST, "/admin/idp-policies", Some(body))
    };
    let nowhere = "https://nope.example.com/mcp";
    for (i, resource, scopes) in [
        (
            "https://nope.example.com",
            s.resource.as_str(),
            json!(["mcp:tools"]),
        ),
        (issuer.as_str(), nowhere, json!(["mcp:tools"])),
        (issuer.as_str(), s.resource.as_str(), json!(["admin"])),
        (issuer.as_str(), s.resource.as_str(), json!([])),
    ] {
        let r = policy(i, resource, scopes.clone()).await;
        assert_eq!(r.status, 400, "{i} {resource} {scopes}: {}", r.body);
    }
    let r = policy(&issuer, &s.resource, json!(["mcp:tools"])).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/admin/idp-policies?issuer={}", enc(&issuer));
    let list = admin_ok(t, reqwest::Method::GET, &path, None).await;
    assert_eq!(list["policies"].as_array().map(Vec::len), Some(1), "{list}");

    let path_idp = format!("/admin/idps?issuer={}", enc(&issuer));
    let r = admin(t, reqwest::Method::DELETE, &path_idp, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = admin(t, reqwest::Method::DELETE, &path_idp, None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let list = admin_ok(t, reqwest::Method::GET, &path, None).await;
    assert_eq!(
        list["policies"],
        json!([]),
        "the IdP's policies went with it"
    );
    let r = admin(t, reqwest::Method::DELETE, "/admin/idp-policies/nope", None).await;
    assert_eq!(r.status, 404, "{}", r.body);

    // An IdP restricted to other audiences cannot vouch for this resource.
    let r = post(json!({
        "issuer": s.idp.issuer,
        "jwks": s.idp.jwks(),
        "allowed_audiences": ["https://elsewhere.example.com/mcp"],
    }))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.grant(t, &s.idp.sign(&s.claims(t)))
        .await
        .assert_oauth_error(403, "access_denied");
    // Deleting the IdP makes its assertions untrusted.
    let path = format!("/admin/idps?issuer={}", enc(&s.idp.issuer));
    let r = admin(t, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    s.grant(t, &s.idp.sign(&s.claims(t)))
        .await
        .assert_oauth_error(400, "invalid_grant");
}
