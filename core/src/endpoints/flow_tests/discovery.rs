//! Discovery (RFC 8414), JWKS, protected resource metadata (RFC 9728) and health.

use http::StatusCode;

use super::harness::*;

#[test]
fn metadata_advertises_exactly_what_works() {
    let h = H::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (status, doc) = json_of(h.get(path, ""));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["issuer"], "http://127.0.0.1:9000");
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["resource_indicators_supported"], true);
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        for key in [
            "jwks_uri",
            "registration_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "token_endpoint",
        ] {
            assert!(
                doc[key]
                    .as_str()
                    .unwrap()
                    .starts_with("http://127.0.0.1:9000/"),
                "{key}"
            );
        }
    }
}

#[test]
fn issuer_with_a_path_serves_inserted_and_appended_metadata_and_prefixed_endpoints() {
    let mut cfg = config();
    cfg.issuer = "http://127.0.0.1:9000/tenant".into();
    let h = H::with_config(cfg);
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/openid-configuration/tenant",
        "/tenant/.well-known/oauth-authorization-server",
        "/tenant/.well-known/openid-configuration",
    ] {
        let (status, doc) = json_of(h.get(path, ""));
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(doc["issuer"], "http://127.0.0.1:9000/tenant");
        assert_eq!(
            doc["token_endpoint"],
            "http://127.0.0.1:9000/tenant/oauth/token"
        );
    }
    assert_eq!(
        h.get("/.well-known/oauth-authorization-server", "")
            .status(),
        StatusCode::NOT_FOUND
    );
    let (status, jwks) = json_of(h.get("/tenant/.well-known/jwks.json", ""));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    // The token endpoint answers under the issuer's path only.
    assert_eq!(
        h.post_form("/oauth/token", &[("grant_type", "client_credentials")], &[])
            .status(),
        StatusCode::NOT_FOUND
    );
    let resp = h.post_form(
        "/tenant/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", PUBLIC)],
        &[],
    );
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn jwks_publishes_public_members_only() {
    let h = H::new();
    let resp = h.get("/.well-known/jwks.json", "");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let (_, jwks) = json_of(resp);
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    assert!(key["kid"].is_string());
    assert!(key.get("d").is_none());
}

#[test]
fn m4_protected_resource_metadata_at_the_path_inserted_url() {
    let h = H::new();
    let (status, doc) = json_of(h.get("/.well-known/oauth-protected-resource/mcp", ""));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!(["http://127.0.0.1:9000"])
    );
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["mcp:tools", "mcp:resources"])
    );
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert_eq!(
        h.get("/.well-known/oauth-protected-resource/nothing", "")
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn key_rotation_keeps_the_retired_key_published_until_its_tokens_expire() {
    let h = H::new();
    let (_, body) = h.token(CONFIDENTIAL, &[("grant_type", "client_credentials")]);
    let old_token = body["access_token"].as_str().unwrap().to_owned();
    block(h.server.keys().rotate(h.server.env())).unwrap();
    let (_, jwks) = json_of(h.get("/.well-known/jwks.json", ""));
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let (_, body) = h.token(CONFIDENTIAL, &[("grant_type", "client_credentials")]);
    let new_token = body["access_token"].as_str().unwrap().to_owned();
    let kid = |t: &str| {
        let header = crate::crypto::b64_decode(t.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].clone()
    };
    assert_ne!(kid(&old_token), kid(&new_token));
    assert_eq!(h.introspect(&old_token)["active"], true);
    // After the longest token lifetime (1 h) plus a minute, the retired key leaves the JWKS.
    h.clock.advance(3600 + 61);
    let (_, jwks) = json_of(h.get("/.well-known/jwks.json", ""));
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn health_and_ready() {
    let h = H::new();
    assert_eq!(h.get("/health", "").status(), StatusCode::OK);
    let (status, body) = json_of(h.get("/ready", ""));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["schema_version"],
        crate::store::migrations::MIGRATIONS.last().unwrap().version
    );
}
