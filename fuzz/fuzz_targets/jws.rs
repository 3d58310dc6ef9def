//! Fuzz target: compact JWS parsing and ES256 verification (RFC 7515 §5.2, RFC 7518 §3.4)
//! and the client assertion claim checks (RFC 7523 §3). Even modes feed the input as a token;
//! odd modes sign the input's header and payload with a fixed key first, so the fuzzer also
//! reaches what runs behind a valid signature: a correctly signed ES256 token always
//! verifies, and (modes 3, 7, …) one with a changed signature never does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::client_auth::assertion;
use portcullis_core::crypto::RustCrypto;
use portcullis_core::jose::{self, JwtError, Parsed};
use portcullis_fuzz::{public_jwk, public_sec1, run, sign, split, text};
use serde_json::{Map, Value};

const NOW: i64 = 1_800_000_000;

fn claims_checks(claims: &Map<String, Value>) {
    let _ = assertion::check_claims(claims, "c1", &["https://as.example"], NOW, 60);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = public_sec1();
    if mode % 2 == 0 {
        let token = text(rest);
        let _ = jose::header(&token);
        let _ = assertion::unverified_subject(&token);
        if let Ok(parsed) = Parsed::parse(&token) {
            let _ = (parsed.kid(), parsed.typ());
            if let Ok(claims) = run(parsed.verify::<Map<String, Value>>(&RustCrypto, key)) {
                claims_checks(&claims);
            }
        }
        if let Ok(header) = jose::header(&token) {
            if let Some(jwk) = header.get("jwk") {
                let _ = jose::p256_public_key(jwk);
                let _ = run(jose::verify_with_jwk(&RustCrypto, &token, jwk));
            }
        }
        return;
    }
    let (header, payload) = split(rest, b'\n');
    let token = sign(header, payload);
    let Ok(parsed) = Parsed::parse(&token) else {
        return;
    };
    match run(parsed.verify::<Map<String, Value>>(&RustCrypto, key)) {
        Ok(claims) => claims_checks(&claims),
        Err(JwtError::Signature) => panic!("a correctly signed token failed verification"),
        Err(_) => {}
    }
    if mode & 2 == 0 {
        return;
    }
    let _ = run(jose::verify_with_jwk(&RustCrypto, &token, &public_jwk()));
    // The same token with one signature character changed must not verify.
    let mut tampered = token.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("base64url is ASCII");
    if let Ok(parsed) = Parsed::parse(&tampered) {
        assert!(
            run(parsed.verify::<Map<String, Value>>(&RustCrypto, key)).is_err(),
            "a token with a changed signature verified"
        );
    }
});
