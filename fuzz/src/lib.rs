//! Helpers shared by the fuzz targets (docs/security.md "Fuzzing"): a fixed P-256 key, its
//! public JWK, compact-JWS signing (RFC 7515 §3.1) and splitting one input into parts, so
//! that a target can reach the checks behind a valid signature as well as the parsers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis_core::crypto::rustcrypto::public_key_sec1;
use portcullis_core::crypto::{CryptoProvider, Es256Signer, RustCrypto};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

/// The fixed signing key of the targets (any valid P-256 scalar).
pub const SCALAR: [u8; 32] = [7; 32];

/// Runs a future of the core to completion (the core's crypto provider never waits).
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// The uncompressed SEC1 public key of [`SCALAR`].
pub fn public_sec1() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| public_key_sec1(&SCALAR).expect("a valid scalar"))
}

/// The public JWK (RFC 7517, RFC 7518 §6.2) of [`SCALAR`].
pub fn public_jwk() -> Value {
    static JWK: OnceLock<Value> = OnceLock::new();
    JWK.get_or_init(jwk_of_key).clone()
}

fn jwk_of_key() -> Value {
    let sec1 = public_sec1();
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&sec1[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&sec1[33..65]),
    })
}

/// A compact JWS over `header` and `payload` (raw bytes, base64url-encoded as given), signed
/// with [`SCALAR`].
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    static SIGNER: OnceLock<Arc<dyn Es256Signer>> = OnceLock::new();
    let signer = SIGNER.get_or_init(|| RustCrypto.es256_signer(&SCALAR).expect("a valid scalar"));
    let sig = run(signer.sign(input.as_bytes())).expect("signing cannot fail");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Splits `data` at the first `sep` byte: `(before, after)`; all of it is `before` when there
/// is none.
pub fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// `data` as text, lossily (the targets want to reach the parsers, not UTF-8 rejection).
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// What every refusal of attacker input must be: a client error (4xx), never a 5xx.
pub fn assert_client_error(e: &portcullis_core::Error) {
    assert!(
        e.code.status().is_client_error(),
        "bad input answered with {:?}: {}",
        e.code,
        e.description
    );
}
