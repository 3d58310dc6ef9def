//! Criterion benchmarks of the core's hot paths with the portable RustCrypto provider:
//! signing and verifying an RFC 9068 access token, PKCE verification, redirect matching and
//! scope parsing. Results are recorded in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_core::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
use portcullis_core::jose::{sign_es256, Parsed};
use portcullis_core::runtime::SeededRng;

fn claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "https://auth.example.com", "sub": "user-123", "aud": "https://mcp.example.com/mcp",
        "client_id": "client-abc", "scope": "mcp:tools mcp:resources", "jti": "0123456789abcdef",
        "iat": 1_700_000_000, "nbf": 1_700_000_000, "exp": 1_700_000_900
    })
}

fn jwt(c: &mut Criterion) {
    let rng = SeededRng::new(1);
    let scalar = generate_scalar(&rng);
    let signer = RustCrypto.es256_signer(&scalar).unwrap();
    let public = public_key_sec1(&scalar).unwrap();
    let claims = claims();
    c.bench_function("es256_sign_access_token_rustcrypto", |b| {
        b.iter(|| {
            futures::executor::block_on(sign_es256(signer.as_ref(), "kid", "at+jwt", &claims))
                .unwrap()
        })
    });
    let token =
        futures::executor::block_on(sign_es256(signer.as_ref(), "kid", "at+jwt", &claims)).unwrap();
    c.bench_function("es256_verify_access_token_rustcrypto", |b| {
        b.iter(|| {
            let parsed = Parsed::parse(&token).unwrap();
            futures::executor::block_on(parsed.verify::<serde_json::Value>(&RustCrypto, &public))
                .unwrap()
        })
    });
}

fn protocol(c: &mut Criterion) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    c.bench_function("pkce_s256_verify", |b| {
        b.iter(|| {
            portcullis_core::pkce::verify(Some(challenge), Some("S256"), Some(verifier)).unwrap()
        })
    });
    let registered = vec![
        "https://app.example.com/callback".to_owned(),
        "http://127.0.0.1/callback".to_owned(),
    ];
    c.bench_function("redirect_match_loopback", |b| {
        b.iter(|| {
            portcullis_core::redirect::matches(&registered, "http://127.0.0.1:53682/callback")
        })
    });
    let long = "a ".repeat(40_000);
    c.bench_function("scope_parse_rejects_80kb", |b| {
        b.iter(|| portcullis_core::scope::parse(&long).is_err())
    });
}

criterion_group!(benches, jwt, protocol);
criterion_main!(benches);
