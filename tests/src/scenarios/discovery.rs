//! Discovery scenarios: authorization server metadata (RFC 8414 §2–3, MCP 2026-07-28
//! discovery: one document on every path, no `null`, no ID-token members), the JWK Set (RFC 7517, RFC 9068 §4), protected resource metadata at the
//! path-inserted URL (RFC 9728 §3, M4), the liveness and readiness probes, and an issuer with
//! a path (RFC 8414 §3.1, for hosts that can start one).

use serde_json::{json, Value};

use super::support::*;
use super::Target;

fn assert_common_metadata(t: &Target, doc: &Value) {
    let url = |p: &str| json!(t.url(p));
    assert_eq!(
        doc["issuer"],
        json!(t.base),
        "issuer is exactly the issuer URL"
    );
    assert_eq!(doc["authorization_endpoint"], url("/oauth/authorize"));
    assert_eq!(doc["token_endpoint"], url("/oauth/token"));
    assert_eq!(doc["jwks_uri"], url("/.well-known/jwks.json"));
    assert_eq!(doc["registration_endpoint"], url("/oauth/register"));
    assert_eq!(doc["revocation_endpoint"], url("/oauth/revoke"));
    assert_eq!(doc["introspection_endpoint"], url("/oauth/introspect"));
    assert_eq!(
        doc["response_types_supported"],
        json!(["code"]),
        "only the code flow"
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        json!(["S256"]),
        "P2: the metadata advertises only S256"
    );
    let strings = |k: &str| -> Vec<String> {
        doc[k]
            .as_array()
            .unwrap_or_else(|| panic!("{k} is an array: {doc}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let grants = strings("grant_types_supported");
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(
            grants.contains(&g.to_owned()),
            "grant type {g} is advertised"
        );
    }
    for g in ["implicit", "password"] {
        assert!(
            !grants.contains(&g.to_owned()),
            "OAuth 2.1 has no {g} grant"
        );
    }
    let methods = strings("token_endpoint_auth_methods_supported");
    for m in ["none", "client_secret_basic", "client_secret_post"] {
        assert!(
            methods.contains(&m.to_owned()),
            "auth method {m} is advertised"
        );
    }
    assert_eq!(doc["resource_indicators_supported"], json!(true));
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(doc["client_id_metadata_document_supported"], json!(true));
    if let Some(modes) = doc.get("response_modes_supported") {
        assert_eq!(
            modes,
            &json!(["query"]),
            "only the query response mode works"
        );
    }
}

/// RFC 8414: the authorization server metadata advertises exactly what works.
pub async fn discovery_authorization_server_metadata(t: &Target) {
    let r = send(http().get(format!(
        "{}/.well-known/oauth-authorization-server{}",
        t.origin(),
        t.base_url().path().trim_end_matches('/')
    )))
    .await;
    let doc = r.ok_json();
    assert_eq!(mime(&r), "application/json");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*"),
        "discovery is readable cross-origin (CORS)"
    );
    assert_common_metadata(t, &doc);
}

/// Every `null` in `doc`, as JSON paths: RFC 8414 §2 and RFC 9728 §2 leave an absent
/// optional member out, and MCP clients' schemas (the TypeScript SDK's zod ones) reject `null`.
pub fn null_members(doc: &Value, at: &str) -> Vec<String> {
    match doc {
        Value::Null => vec![at.to_owned()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| null_members(v, &format!("{at}[{i}]")))
            .collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| null_members(v, &format!("{at}.{k}")))
            .collect(),
        _ => Vec::new(),
    }
}

/// MCP 2026-07-28 discovery: one metadata document, identical at the RFC 8414 path-inserted
/// and path-appended URLs, with no `null` member, a `scopes_supported` that lists the scopes
/// registered resources offer, and nothing about ID tokens (none are issued). Portcullis is
/// not an OpenID Provider: `/.well-known/openid-configuration` is not served.
pub async fn discovery_metadata_identical_on_every_path_without_nulls_or_id_tokens(t: &Target) {
    new_resource(t, &["disc:read", "disc:write"]).await;
    let path = t.base_url().path().trim_end_matches('/').to_owned();
    let origin = t.origin();
    let inserted = send(http().get(format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )))
    .await
    .ok_json();
    let appended = send(http().get(t.url("/.well-known/oauth-authorization-server")))
        .await
        .ok_json();
    assert_eq!(
        inserted, appended,
        "the same document on every metadata path"
    );
    assert_eq!(
        null_members(&inserted, "$"),
        Vec::<String>::new(),
        "no null members: {inserted}"
    );
    let scopes = inserted["scopes_supported"]
        .as_array()
        .unwrap_or_else(|| panic!("scopes_supported is listed: {inserted}"));
    for s in ["disc:read", "disc:write"] {
        assert!(
            scopes.contains(&json!(s)),
            "scopes_supported lists the registered resource's {s}: {inserted}"
        );
    }
    for k in [
        "id_token_signing_alg_values_supported",
        "subject_types_supported",
        "userinfo_endpoint",
    ] {
        assert!(
            inserted.get(k).is_none(),
            "no ID tokens, no {k}: {inserted}"
        );
    }
    for url in [
        format!("{origin}/.well-known/openid-configuration{path}"),
        t.url("/.well-known/openid-configuration"),
    ] {
        let r = send(http().get(&url)).await;
        assert_eq!(r.status, 404, "not an OpenID Provider: {url} {}", r.body);
    }

    // Protected resource metadata of a resource registered without a name: no `resource_name`.
    let unnamed = format!("{origin}/{}/mcp", crate::conformance::uid("unnamed"));
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/resources",
        Some(json!({"uri": unnamed, "scopes": ["disc:read"]})),
    )
    .await;
    let rpath = url::Url::parse(&unnamed).unwrap().path().to_owned();
    let prm = send(http().get(format!(
        "{origin}/.well-known/oauth-protected-resource{rpath}"
    )))
    .await
    .ok_json();
    assert_eq!(prm["resource"], json!(unnamed));
    assert!(
        prm.get("resource_name").is_none(),
        "absent, not null: {prm}"
    );
    assert_eq!(null_members(&prm, "$"), Vec::<String>::new(), "{prm}");
}

/// The JWK Set publishes only public members, each key with `kid`, `alg` and `use`.
pub async fn jwks_public_keys_only(t: &Target) {
    let r = send(http().get(t.url("/.well-known/jwks.json"))).await;
    let doc = r.ok_json();
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let keys = doc["keys"].as_array().expect("keys is an array");
    assert!(!keys.is_empty(), "at least one signing key is published");
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(
                k.get(private).is_none(),
                "JWK member {private} is private: {k}"
            );
        }
        assert_eq!(k["kty"], json!("EC"), "{k}");
        assert_eq!(k["crv"], json!("P-256"), "{k}");
        assert_eq!(k["alg"], json!("ES256"), "{k}");
        assert_eq!(k["use"], json!("sig"), "{k}");
        assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()), "{k}");
        assert!(k["x"].is_string() && k["y"].is_string(), "{k}");
    }
    let mut kids: Vec<&str> = keys.iter().filter_map(|k| k["kid"].as_str()).collect();
    kids.sort_unstable();
    kids.dedup();
    assert_eq!(kids.len(), keys.len(), "kids are unique");
}

/// M4: every registered resource has its metadata at the path-inserted well-known URL.
pub async fn m4_protected_resource_metadata_path_inserted(t: &Target) {
    let uri = new_resource(t, &SCOPES).await;
    let path = url::Url::parse(&uri).unwrap().path().to_owned();
    let r = send(http().get(format!(
        "{}/.well-known/oauth-protected-resource{path}",
        t.origin()
    )))
    .await;
    let doc = r.ok_json();
    assert_eq!(
        doc["resource"],
        json!(uri),
        "RFC 9728 §3.3: resource matches exactly"
    );
    assert_eq!(doc["authorization_servers"], json!([t.base]));
    assert_eq!(doc["scopes_supported"], json!(SCOPES));
    assert!(
        doc["bearer_methods_supported"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("header"))),
        "bearer tokens in the Authorization header: {doc}"
    );
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );

    let missing = send(http().get(format!(
        "{}/.well-known/oauth-protected-resource/{}/nothing-here",
        t.origin(),
        crate::conformance::uid("none")
    )))
    .await;
    assert_eq!(missing.status, 404, "no metadata for an unregistered path");
}

/// M4 with one path on two hosts: the resources `<issuer origin>/<p>` and
/// `https://mcp-b.example/<p>` share the path `<p>`, so the path-inserted metadata URL is the
/// same for both; the answer is the resource on the host the request was sent to (its
/// `Host`, as behind a proxy that routes `mcp-b.example`'s well-known path here), and 404
/// for a third host, where no choice is right. The same on every runtime: Spin hands its
/// component no `Host` header (only the request URI's authority), which the core's host
/// layer turns into one.
pub async fn m4_protected_resource_metadata_shared_path_per_host(t: &Target) {
    let path = format!("/{}/mcp", crate::conformance::uid("shared"));
    let own = format!("{}{path}", t.origin());
    let other = format!("https://mcp-b.example{path}");
    new_resource_at(t, &own, &SCOPES).await;
    new_resource_at(t, &other, &["other:read"]).await;
    let well_known = format!("{}/.well-known/oauth-protected-resource{path}", t.origin());

    let doc = send(http().get(&well_known)).await.ok_json();
    assert_eq!(
        doc["resource"],
        json!(own),
        "the resource on the issuer's own host: {doc}"
    );
    assert_eq!(doc["scopes_supported"], json!(SCOPES));
    assert_eq!(doc["authorization_servers"], json!([t.base]));

    let doc = send(http().get(&well_known).header("host", "mcp-b.example"))
        .await
        .ok_json();
    assert_eq!(
        doc["resource"],
        json!(other),
        "the resource on the host the request names: {doc}"
    );
    assert_eq!(doc["scopes_supported"], json!(["other:read"]));

    let neither = send(http().get(&well_known).header("host", "mcp-c.example")).await;
    assert_eq!(
        neither.status, 404,
        "two resources share the path and neither is on this host: {}",
        neither.body
    );
}

/// `/health` answers without touching storage; `/ready` checks storage and reports the schema
/// version, the latest migration.
pub async fn health_and_ready(t: &Target) {
    let origin = t.origin();
    let h = send(http().get(format!("{origin}/health"))).await;
    assert_eq!(h.status, 200, "/health: {}", h.body);
    let r = send(http().get(format!("{origin}/ready"))).await;
    let v = r.ok_json();
    assert_eq!(v["status"], json!("ready"), "{v}");
    let latest = portcullis_core::store::migrations::MIGRATIONS
        .last()
        .expect("migrations")
        .version;
    assert_eq!(
        v["schema_version"],
        json!(latest),
        "/ready reports the applied schema version: {v}"
    );
}

/// RFC 8414 §3.1 for an issuer with a path (the target's base has one, e.g. `/tenant`): the
/// RFC 8414 metadata is served at the path-inserted and the path-appended well-known URLs, with
/// endpoints under the issuer's path; the origin's own well-known URL and endpoints outside
/// the path answer 404. Run by hosts that can start with such an issuer (not in the lists).
pub async fn issuer_with_a_path_serves_inserted_and_appended_metadata_and_prefixed_endpoints(
    t: &Target,
) {
    let path = t.base_url().path().trim_end_matches('/').to_owned();
    assert!(
        !path.is_empty(),
        "this scenario needs an issuer with a path"
    );
    let origin = t.origin();
    for url in [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        t.url("/.well-known/oauth-authorization-server"),
    ] {
        let doc = send(http().get(&url)).await.ok_json();
        assert_eq!(doc["issuer"], json!(t.base), "{url}");
        assert_eq!(doc["token_endpoint"], json!(t.url("/oauth/token")), "{url}");
        assert_eq!(
            doc["jwks_uri"],
            json!(t.url("/.well-known/jwks.json")),
            "{url}"
        );
    }
    let root = send(http().get(format!("{origin}/.well-known/oauth-authorization-server"))).await;
    assert_eq!(root.status, 404, "no metadata for the bare origin");
    let jwks = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    assert!(
        jwks["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "{jwks}"
    );
    let c = new_client(t, "none", &["authorization_code"]).await;
    let form = [("grant_type", "client_credentials"), ("client_id", &c.id)];
    let outside = send(http().post(format!("{origin}/oauth/token")).form(&form)).await;
    assert_eq!(
        outside.status, 404,
        "the token endpoint lives under the path only"
    );
    send(http().post(t.url("/oauth/token")).form(&form))
        .await
        .assert_oauth_error(400, "unauthorized_client");
}
