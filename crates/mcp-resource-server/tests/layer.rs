//! The tower layer around an axum router, in process: the metadata document at its
//! well-known path, 401 challenges, the per-tool policy read from JSON-RPC bodies (403
//! insufficient_scope), the verified token in the handler's extensions, the body size cap.
//! The issuer is a fake fetcher with fixed keys; the clock is fixed.

use std::sync::Arc;

use axum::body::Body;
use axum::{Extension, Router};
use base64::Engine as _;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::SigningKey;
use portcullis_resource_server::layer::ResourceServerLayer;
use portcullis_resource_server::verifier::FixedClock;
use portcullis_resource_server::{Config, FetchError, HttpFetch, VerifiedToken, Verifier};
use serde_json::{json, Value};
use tower::ServiceExt as _;

const ISS: &str = "http://127.0.0.1:9000";
const RES: &str = "http://127.0.0.1:3000/mcp";
const NOW: i64 = 1_800_000_000;

fn b64(b: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn key() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).unwrap()
}

struct Issuer;

#[async_trait::async_trait]
impl HttpFetch for Issuer {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let point = key().verifying_key().to_encoded_point(false);
        let doc = match url {
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server" => {
                json!({"issuer": ISS, "jwks_uri": "http://127.0.0.1:9000/.well-known/jwks.json"})
            }
            "http://127.0.0.1:9000/.well-known/jwks.json" => json!({"keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k", "alg": "ES256", "use": "sig",
                "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
            }]}),
            _ => return Err(FetchError(format!("unexpected fetch of {url}"))),
        };
        Ok(doc.to_string().into_bytes())
    }
}

fn token(scope: &str) -> String {
    token_for("alice", scope)
}

fn token_for(sub: &str, scope: &str) -> String {
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"});
    let claims = json!({
        "iss": ISS, "sub": sub, "aud": RES, "client_id": "c", "scope": scope,
        "jti": "j", "iat": NOW, "exp": NOW + 300, "act": {"sub": "agent"},
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig: p256::ecdsa::Signature = key().sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

/// The app; its handler answers with MCP session "s-1" (as an MCP server does on
/// `initialize`).
fn app() -> Router {
    let config = Config::new(ISS, RES)
        .unwrap()
        .required_scopes(["mcp:read"])
        .tool("whoami", ["mcp:read"])
        .tool("write_note", ["mcp:write"])
        .max_body_bytes(1024);
    let verifier = Verifier::new(config, Arc::new(Issuer), Arc::new(FixedClock(NOW)));
    Router::new()
        .route(
            "/mcp",
            axum::routing::post(
                |Extension(t): Extension<VerifiedToken>, body: String| async move {
                    let text = format!(
                        "{} via {:?} ({} bytes)",
                        t.subject(),
                        t.claims.actor_chain(),
                        body.len()
                    );
                    ([("mcp-session-id", "s-1")], text)
                },
            ),
        )
        .layer(ResourceServerLayer::new(Arc::new(verifier)))
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
        .to_string()
}

async fn send(req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let res = app().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn post(auth: Option<&str>, body: String) -> Request<Body> {
    let mut b = Request::post("/mcp").header("content-type", "application/json");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn serves_the_metadata_at_the_path_inserted_well_known_url() {
    let req = Request::get("/.well-known/oauth-protected-resource/mcp")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "*");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["resource"], RES);
    assert_eq!(doc["authorization_servers"], json!([ISS]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:read", "mcp:write"]));
    let req = Request::post("/.well-known/oauth-protected-resource/mcp")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(req).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn no_token_is_a_401_challenge() {
    let (status, headers, _) = send(post(None, call("whoami"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            "Bearer resource_metadata=\"http://127.0.0.1:3000/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read\"",
            "DPoP algs=\"ES256\"",
        ]
    );
    assert_eq!(
        headers["access-control-expose-headers"],
        "WWW-Authenticate, DPoP-Nonce"
    );
}

#[tokio::test]
async fn a_good_token_reaches_the_handler_with_its_claims() {
    let body = call("whoami");
    let len = body.len();
    let (status, _, text) = send(post(Some(&format!("Bearer {}", token("mcp:read"))), body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        text,
        format!("alice via [\"agent\"] ({len} bytes)"),
        "the body is passed on intact"
    );
}

#[tokio::test]
async fn a_tool_needing_more_scope_is_403_insufficient_scope() {
    let (status, headers, body) = send(post(
        Some(&format!("Bearer {}", token("mcp:read"))),
        call("write_note"),
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"mcp:read mcp:write\", error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "insufficient_scope"
    );
    // Stepped up, it goes through.
    let (status, _, _) = send(post(
        Some(&format!("Bearer {}", token("mcp:read mcp:write"))),
        call("write_note"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (status, _, _) = send(post(
        Some(&format!("Bearer {}", token("mcp:read"))),
        "x".repeat(2000),
    ))
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_mcp_session_belongs_to_the_user_who_opened_it() {
    let app = app();
    let req = |sub: &str, session: Option<&str>| {
        let mut b = Request::post("/mcp").header(
            "authorization",
            format!("Bearer {}", token_for(sub, "mcp:read")),
        );
        if let Some(s) = session {
            b = b.header("mcp-session-id", s);
        }
        b.body(Body::from(call("whoami"))).unwrap()
    };
    let opened = app.clone().oneshot(req("alice", None)).await.unwrap();
    assert_eq!(opened.headers()["mcp-session-id"], "s-1");
    assert_eq!(
        app.clone()
            .oneshot(req("alice", Some("s-1")))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let hijack = app
        .clone()
        .oneshot(req("mallory", Some("s-1")))
        .await
        .unwrap();
    assert_eq!(hijack.status(), StatusCode::FORBIDDEN);
    // A session the layer has not seen is the MCP server's to judge.
    assert_eq!(
        app.oneshot(req("mallory", Some("s-2")))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
