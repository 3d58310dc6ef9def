//! Test-only DPoP client: a P-256 key that signs proofs (RFC 9449 §4.2) with any header and
//! claims, so tests can build both valid proofs and each malformed variant.

use serde_json::{json, Value};

use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use crate::crypto::{b64, CryptoProvider, RustCrypto};
use crate::runtime::SeededRng;

/// A DPoP key pair held by a test client.
pub struct Prover {
    scalar: [u8; 32],
    /// The public JWK.
    pub jwk: Value,
    counter: std::sync::atomic::AtomicU64,
}

impl Prover {
    /// A key drawn from a seeded RNG.
    pub fn new(seed: u64) -> Self {
        let scalar = generate_scalar(&SeededRng::new(seed));
        let jwk = crate::keys::public_jwk(&public_key_sec1(&scalar).expect("valid scalar"));
        Self {
            scalar,
            jwk,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// RFC 7638 thumbprint of the key.
    pub fn jkt(&self) -> String {
        crate::keys::thumbprint(&self.jwk)
    }

    /// The private JWK (public members plus `d`).
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["d"] = b64(self.scalar).into();
        jwk
    }

    /// A fresh `jti`.
    pub fn jti(&self) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("jti-{n}-{}", &self.jkt()[..8])
    }

    /// The standard header.
    pub fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk })
    }

    /// Standard claims for `method` `url` at `iat`.
    pub fn claims(&self, method: &str, url: &str, iat: i64) -> Value {
        json!({ "jti": self.jti(), "htm": method, "htu": url, "iat": iat })
    }

    /// Signs `claims` under `header` with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signer = RustCrypto.es256_signer(&self.scalar).expect("signer");
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = futures::executor::block_on(signer.sign(input.as_bytes())).expect("signs");
        format!("{input}.{}", b64(sig))
    }

    /// A valid proof for `method` `url` at `iat`.
    pub fn proof(&self, method: &str, url: &str, iat: i64) -> String {
        self.sign(&self.header(), &self.claims(method, url, iat))
    }

    /// A valid proof with a nonce.
    pub fn proof_with_nonce(&self, method: &str, url: &str, iat: i64, nonce: &str) -> String {
        let mut c = self.claims(method, url, iat);
        c["nonce"] = nonce.into();
        self.sign(&self.header(), &c)
    }

    /// A valid proof for a resource request carrying `access_token` (`ath`).
    pub fn proof_for_token(&self, method: &str, url: &str, iat: i64, access_token: &str) -> String {
        let mut c = self.claims(method, url, iat);
        c["ath"] = super::proof::access_token_hash(access_token).into();
        self.sign(&self.header(), &c)
    }
}
