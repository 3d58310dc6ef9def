//! Crypto seam (DESIGN.md rule 8). Protocol code signs through [`CryptoProvider`]; the
//! portable default is RustCrypto ([`RustCrypto`]), and a host may supply a faster one
//! (ring natively, WebCrypto on Workers) without touching protocol code. Hashing of stored
//! secrets, constant-time comparison, key encryption and password hashing live here too.

pub mod jws;
pub mod kek;
pub mod master;
pub mod password;
pub mod rustcrypto;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::runtime::MaybeSend;

pub use rustcrypto::RustCrypto;

/// A crypto failure (bad key material, provider failure). Never shown to clients in detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("crypto error: {0}")]
pub struct CryptoError(pub String);

/// A loaded ES256 private key, ready to sign.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait Es256Signer: MaybeSend {
    /// Signs `message` (SHA-256, ECDSA P-256) and returns the 64-byte `r || s` signature.
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], CryptoError>;
}

/// The crypto provider a host supplies. Verification is async so that a provider may call
/// an asynchronous API (WebCrypto's `crypto.subtle.verify` on Workers).
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait CryptoProvider: MaybeSend {
    /// A short name for logs and metrics (`rustcrypto`, `ring`, `webcrypto`).
    fn name(&self) -> &'static str;
    /// Loads a P-256 private key from its 32-byte big-endian scalar.
    fn es256_signer(&self, scalar: &[u8; 32]) -> Result<Arc<dyn Es256Signer>, CryptoError>;
    /// Verifies an ES256 signature over `message` with an uncompressed SEC1 public key.
    async fn es256_verify(&self, public_sec1: &[u8], message: &[u8], signature: &[u8]) -> bool;
    /// Verifies a JWS signature by another party with a public JWK under `alg` (which
    /// [`jws::alg_for`] chose from the key). ES256 goes to [`Self::es256_verify`]; RS256,
    /// PS256 and EdDSA default to pure Rust ([`jws::verify`]), which every runtime runs.
    async fn jws_verify(
        &self,
        alg: jws::JwsAlg,
        jwk: &serde_json::Value,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        if alg == jws::JwsAlg::Es256 {
            return match jws::p256_public_key(jwk) {
                Some(sec1) => self.es256_verify(&sec1, message, signature).await,
                None => false,
            };
        }
        jws::verify(alg, jwk, message, signature)
    }
    /// AES-256-GCM encryption with a 96-bit nonce, for keys at rest ([`kek`]): returns the
    /// ciphertext with the 128-bit tag appended. The default is RustCrypto's `aes-gcm`.
    async fn aes256gcm_seal(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        kek::aes256gcm_seal(key, nonce, plaintext, aad)
    }
    /// Decrypts and authenticates what [`Self::aes256gcm_seal`] made (any provider's).
    async fn aes256gcm_open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        kek::aes256gcm_open(key, nonce, ciphertext, aad)
    }
    /// Hashes a user password with argon2id at `cost` ([`password::hash_with_salt`]; the
    /// core draws the salt). At the default cost, tens of milliseconds of CPU and about
    /// 19 MiB of memory: a host with a thread pool overrides this to run it off its async
    /// workers (the native host uses `spawn_blocking`); the default runs inline, as the edge
    /// runtimes must.
    async fn password_hash(
        &self,
        password: &str,
        salt: [u8; 16],
        cost: password::PasswordCost,
    ) -> Result<String, CryptoError> {
        password::hash_with_salt(password, &salt, cost)
    }
    /// Checks a password against a stored argon2 PHC hash ([`password::verify`]); see
    /// [`Self::password_hash`] for why a host may override it.
    async fn password_verify(&self, password: &str, stored: &str) -> bool {
        password::verify(password, stored)
    }
}

/// base64url without padding.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding.
pub fn b64_decode(data: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(data)
        .ok()
}

/// The public JWK (without `kid`) of an uncompressed SEC1 P-256 key.
pub fn public_jwk(sec1: &[u8]) -> Json {
    let (x, y) = sec1[1..].split_at(32);
    json!({ "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y) })
}

/// RFC 7638 thumbprint of an EC public JWK (members in lexicographic order, no spaces).
pub fn thumbprint(jwk: &Json) -> String {
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap_or(""),
        jwk["x"].as_str().unwrap_or(""),
        jwk["y"].as_str().unwrap_or("")
    );
    b64(sha256(canonical.as_bytes()))
}

/// SHA-256 of `data`.
pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(data.as_ref()).into()
}

/// The storage key for a high-entropy secret (code, token, session id, client secret):
/// base64url SHA-256. Only this is stored (C6, A4); a hash of a 256-bit random value needs
/// no salt or stretching.
pub fn token_hash(secret: &str) -> String {
    b64(sha256(secret.as_bytes()))
}

/// Constant-time equality (P7, A4).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_stable_and_not_the_input() {
        let h = token_hash("abc");
        assert_eq!(h, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert_ne!(h, "abc");
    }

    #[test]
    fn ct_eq_compares_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
