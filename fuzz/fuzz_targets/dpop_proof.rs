//! Fuzz target: DPoP proofs (RFC 9449 §4.2, §4.3 checks 1–12, §8 nonces) at the token
//! endpoint and at a resource (`ath`, §7). Mode 0 feeds the input as the `DPoP` header;
//! mode 1 signs the input's header and claims with a fixed key whose public JWK the target
//! puts in the header when the input's header is a JSON object, so the fuzzer reaches the
//! claim checks behind the signature. A proof that passes names a thumbprint of 43
//! base64url characters and a non-empty `jti`.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_core::crypto::RustCrypto;
use portcullis_core::dpop::nonce::NonceKey;
use portcullis_core::dpop::proof::{self, Expected};
use portcullis_fuzz::{public_jwk, run, sign, split, text};

const NOW: i64 = 1_800_000_000;
/// The default `jwt_clock_skew_seconds`.
const SKEW: i64 = 60;
const URL: &str = "https://as.example/token";

fn check(proof_value: &str, nonce_key: &NonceKey, mode: u8) {
    let access_token = (mode & 2 != 0).then_some("at-123");
    let expected = Expected {
        method: "POST",
        url: URL,
        access_token,
        now: NOW,
        max_age: 300,
        skew: SKEW,
        nonce: (mode & 4 != 0).then_some((nonce_key, 300)),
    };
    if let Ok(checked) = run(proof::check(&RustCrypto, proof_value, &expected)) {
        assert_eq!(checked.jkt.len(), 43, "{checked:?}");
        assert!(!checked.jti.is_empty());
        assert!(checked.iat <= NOW + SKEW);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let nonce_key = NonceKey::derive(b"fuzz master key");
    if mode & 1 == 0 {
        let value = text(rest);
        let _ = proof::normalize_htu(&value);
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(rest) {
            headers.insert("dpop", v);
        }
        if let Ok(Some(v)) = proof::single_header(&headers) {
            check(v, &nonce_key, mode);
        }
        return check(&value, &nonce_key, mode);
    }
    let (header, claims) = split(rest, b'\n');
    let header = match serde_json::from_slice::<serde_json::Value>(header) {
        Ok(serde_json::Value::Object(mut h)) => {
            h.entry("jwk").or_insert_with(public_jwk);
            serde_json::to_vec(&h).expect("a map serializes")
        }
        _ => header.to_vec(),
    };
    let mut claims = claims.to_vec();
    // Let the fuzzer use a fresh server nonce: `@nonce@` in the claims becomes one.
    let nonce = nonce_key.issue(NOW - 1);
    if let Some(i) = claims.windows(7).position(|w| w == b"@nonce@") {
        claims.splice(i..i + 7, nonce.bytes());
    }
    check(&sign(&header, &claims), &nonce_key, mode);
});
