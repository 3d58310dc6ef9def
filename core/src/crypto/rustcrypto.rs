//! The portable RustCrypto provider (`p256`): the default on every runtime, and the
//! reference the faster providers are tested against.

use std::sync::Arc;

use async_trait::async_trait;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use super::{CryptoError, CryptoProvider, Es256Signer};

/// RustCrypto ES256.
#[derive(Debug, Default, Clone, Copy)]
pub struct RustCrypto;

struct P256Signer(SigningKey);

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl Es256Signer for P256Signer {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], CryptoError> {
        let sig: Signature = self.0.sign(message);
        Ok(sig.to_bytes().into())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl CryptoProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn es256_signer(&self, scalar: &[u8; 32]) -> Result<Arc<dyn Es256Signer>, CryptoError> {
        let key = SigningKey::from_slice(scalar).map_err(|e| CryptoError(e.to_string()))?;
        Ok(Arc::new(P256Signer(key)))
    }

    async fn es256_verify(&self, public_sec1: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Ok(key) = VerifyingKey::from_sec1_bytes(public_sec1) else {
            return false;
        };
        // `Signature::from_slice` refuses r = 0 or s = 0 (J4).
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        key.verify(message, &sig).is_ok()
    }
}

/// The uncompressed SEC1 public key of a P-256 scalar.
pub fn public_key_sec1(scalar: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
    let key = SigningKey::from_slice(scalar).map_err(|e| CryptoError(e.to_string()))?;
    Ok(key
        .verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec())
}

/// Draws a valid P-256 scalar from `rng` (retrying the negligible out-of-range case).
pub fn generate_scalar(rng: &dyn crate::runtime::Rng) -> [u8; 32] {
    loop {
        let mut buf = [0u8; 32];
        rng.fill(&mut buf);
        if SigningKey::from_slice(&buf).is_ok() {
            return buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `es256_verify`, driven to completion.
    fn verifies(p: &dyn CryptoProvider, public: &[u8], message: &[u8], sig: &[u8]) -> bool {
        futures::executor::block_on(p.es256_verify(public, message, sig))
    }
    use crate::runtime::SeededRng;

    #[test]
    fn sign_then_verify_roundtrip() {
        let rng = SeededRng::new(7);
        let scalar = generate_scalar(&rng);
        let signer = RustCrypto.es256_signer(&scalar).unwrap();
        let sig = futures::executor::block_on(signer.sign(b"hello")).unwrap();
        let public = public_key_sec1(&scalar).unwrap();
        assert!(verifies(&RustCrypto, &public, b"hello", &sig));
        assert!(!verifies(&RustCrypto, &public, b"hellO", &sig));
    }

    #[test]
    fn j4_zero_r_or_s_is_refused() {
        let rng = SeededRng::new(8);
        let scalar = generate_scalar(&rng);
        let public = public_key_sec1(&scalar).unwrap();
        let mut zero_r = [0u8; 64];
        zero_r[63] = 1;
        assert!(!verifies(&RustCrypto, &public, b"m", &zero_r));
        let mut zero_s = [0u8; 64];
        zero_s[31] = 1;
        assert!(!verifies(&RustCrypto, &public, b"m", &zero_s));
        assert!(!verifies(&RustCrypto, &public, b"m", &[0u8; 64]));
    }
}
