//! Verifications per second with the issuer's JWKS cached: `Verifier::authorize` on a request
//! with an ES256 RFC 9068 bearer token (header parse, key lookup by `kid`, signature, claims,
//! scheme and scope checks), and the same plus the per-tool policy on a `tools/call` body.
//! The keys come from an in-memory issuer (fetched once, at warm-up); the clock is fixed.
//!
//! `cargo bench -p portcullis-resource-server --bench verify`

use std::sync::Arc;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use futures::executor::block_on;
use http::HeaderMap;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::SigningKey;
use portcullis_resource_server::verifier::FixedClock;
use portcullis_resource_server::{Config, Decision, FetchError, HttpFetch, Verifier};
use serde_json::json;

const ISS: &str = "http://127.0.0.1:9000";
const RES: &str = "http://127.0.0.1:3000/mcp";
const NOW: i64 = 1_800_000_000;

fn b64(b: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn key() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar")
}

/// The issuer's metadata and JWKS, served from memory.
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
                "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
            }]}),
            _ => return Err(FetchError(format!("unexpected fetch of {url}"))),
        };
        Ok(doc.to_string().into_bytes())
    }
}

fn token() -> String {
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"});
    let claims = json!({
        "iss": ISS, "sub": "alice", "aud": RES, "client_id": "c", "scope": "mcp:read mcp:write",
        "jti": "j", "iat": NOW, "exp": NOW + 300,
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig: p256::ecdsa::Signature = key().sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

fn bench(c: &mut Criterion) {
    let config = Config::new(ISS, RES)
        .expect("config")
        .required_scopes(["mcp:read"])
        .tool("write_note", ["mcp:write"]);
    let verifier = Verifier::new(config, Arc::new(Issuer), Arc::new(FixedClock(NOW)));
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", token()).parse().expect("header"),
    );
    let body = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_note","arguments":{"text":"hi"}}}"#;
    // Warm-up: the one metadata and JWKS fetch.
    let Decision::Allow(_) = block_on(verifier.authorize("POST", RES, &headers)) else {
        panic!("the bench token is refused");
    };

    c.bench_function("verify_es256_bearer_cached_jwks", |b| {
        b.iter(
            || match block_on(verifier.authorize("POST", RES, &headers)) {
                Decision::Allow(t) => t,
                Decision::Deny(d) => panic!("refused: {d:?}"),
            },
        )
    });
    c.bench_function("verify_es256_bearer_and_tool_policy", |b| {
        b.iter(
            || match block_on(verifier.authorize("POST", RES, &headers)) {
                Decision::Allow(t) => assert!(verifier.check_tools(&t, body).is_none()),
                Decision::Deny(d) => panic!("refused: {d:?}"),
            },
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
