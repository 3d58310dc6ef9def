//! Dynamic client registration scenarios (RFC 7591 §3, SECURITY-CHECKLIST G1, G2).

use serde_json::{json, Value};

use super::support::*;
use super::Target;

/// RFC 7591 §3.2.1: a confidential registration returns the metadata, a `client_id` and a
/// `client_secret` once, with 201 and `no-store`; the secret then authenticates (at the
/// introspection endpoint, which needs an authenticated client).
pub async fn registration_confidential_client(t: &Target) {
    let r = register(
        t,
        json!({
            "client_name": "Scenario web app",
            "redirect_uris": ["https://app.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
            "client_uri": "https://app.example/",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_no_store(&r);
    let v = r.json();
    let id = v["client_id"].as_str().expect("client_id");
    let secret = v["client_secret"]
        .as_str()
        .expect("a confidential client gets a secret");
    assert!(secret.len() >= 32, "the secret has enough entropy");
    assert!(v["client_id_issued_at"].as_i64().is_some(), "{v}");
    assert_eq!(
        v["client_secret_expires_at"],
        json!(0),
        "RFC 7591: 0 means never: {v}"
    );
    assert_eq!(v["token_endpoint_auth_method"], json!("client_secret_post"));
    assert_eq!(v["redirect_uris"], json!(["https://app.example/callback"]));
    assert_eq!(v["client_name"], json!("Scenario web app"));
    let answer = introspect(t, "not-a-token", Auth::Post(id, secret))
        .await
        .ok_json();
    assert_eq!(answer["active"], json!(false), "{answer}");
    introspect(t, "not-a-token", Auth::Post(id, "wrong-secret"))
        .await
        .assert_oauth_error(401, "invalid_client");
}

/// RFC 7591 §2 defaults: no auth method means `client_secret_basic`, no grant types means
/// `authorization_code`.
pub async fn registration_defaults(t: &Target) {
    let r = register(t, json!({ "redirect_uris": ["https://app.example/cb"] })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["token_endpoint_auth_method"],
        json!("client_secret_basic"),
        "{v}"
    );
    assert_eq!(v["grant_types"], json!(["authorization_code"]), "{v}");
    assert_eq!(v["response_types"], json!(["code"]), "{v}");
    assert!(v["client_secret"].is_string(), "{v}");
}

fn base() -> Value {
    json!({
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "none",
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut v = base();
    v[field] = value;
    v
}

/// G1: registration refuses non-https metadata URIs, dangerous or plain-http redirect URIs,
/// inconsistent grant and response types, and unsupported auth methods.
pub async fn g1_registration_refuses_bad_metadata(t: &Target) {
    let bad_redirects = [
        json!(["http://app.example/cb"]),
        json!(["javascript:alert(1)//"]),
        json!(["https://app.example/cb#frag"]),
        json!([]),
        json!(["not a url"]),
    ];
    for uris in bad_redirects {
        register(t, with("redirect_uris", uris.clone()))
            .await
            .assert_oauth_error(400, "invalid_redirect_uri");
    }
    let bad_metadata = [
        ("client_uri", json!("http://app.example/")),
        ("logo_uri", json!("http://app.example/logo.png")),
        ("token_endpoint_auth_method", json!("client_secret_jwt")),
        ("token_endpoint_auth_method", json!("tls_client_auth")),
        ("grant_types", json!(["implicit"])),
        ("grant_types", json!(["password"])),
        ("grant_types", json!(["refresh_token"])),
        ("grant_types", json!(["client_credentials"])),
        ("response_types", json!(["token"])),
        ("response_types", json!(["code id_token"])),
        ("application_type", json!("desktop")),
        ("client_name", json!("x".repeat(10_000))),
    ];
    for (field, value) in bad_metadata {
        let r = register(t, with(field, value.clone())).await;
        assert_eq!(
            r.status,
            400,
            "G1 {field}={}: refused, got {}: {}",
            short(&value.to_string()),
            r.status,
            short(&r.body)
        );
        assert_eq!(
            r.json()["error"],
            json!("invalid_client_metadata"),
            "G1 {field}={}",
            short(&value.to_string())
        );
        assert_no_store(&r);
    }
    // Response type `code` with only client_credentials is inconsistent.
    let mut v = with("grant_types", json!(["client_credentials"]));
    v["token_endpoint_auth_method"] = json!("client_secret_basic");
    v["response_types"] = json!(["code"]);
    register(t, v)
        .await
        .assert_oauth_error(400, "invalid_client_metadata");
    // G2: too many redirect URIs.
    let many: Vec<String> = (0..500)
        .map(|i| format!("https://app.example/cb/{i}"))
        .collect();
    register(t, with("redirect_uris", json!(many)))
        .await
        .assert_oauth_error(400, "invalid_redirect_uri");
}

/// MCP 2026-07-28 (SEP-837): clients state `application_type` at registration. `native`
/// with a loopback or a reverse-domain private-use redirect URI and `web` with an HTTPS one
/// are registered and echoed; `web` with a private-use scheme is refused
/// (`invalid_redirect_uri`); without it, a private-use redirect URI makes the client `native`
/// and anything else `web` (OpenID Connect Registration §2's default).
pub async fn application_type_registered_echoed_and_defaulted(t: &Target) {
    let cases = [
        (Some("native"), "http://127.0.0.1/callback", "native"),
        (Some("native"), "com.example.mcp:/oauth/cb", "native"),
        (Some("web"), "https://app.example/cb", "web"),
        (Some("web"), "http://localhost:8123/cb", "web"),
        (None, "com.example.mcp:/oauth/cb", "native"),
        (None, "https://app.example/cb", "web"),
    ];
    for (given, redirect, expected) in cases {
        let mut meta = json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none"});
        if let Some(kind) = given {
            meta["application_type"] = json!(kind);
        }
        let r = register(t, meta.clone()).await;
        assert_eq!(r.status, 201, "{meta}: {}", r.body);
        assert_eq!(r.json()["application_type"], json!(expected), "{meta}");
    }
    register(
        t,
        json!({
            "redirect_uris": ["com.example.mcp:/oauth/cb"],
            "token_endpoint_auth_method": "none",
            "application_type": "web",
        }),
    )
    .await
    .assert_oauth_error(400, "invalid_redirect_uri");
}
