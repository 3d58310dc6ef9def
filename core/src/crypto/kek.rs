//! Encryption of private keys at rest: AES-256-GCM under a key-encryption key derived with
//! HKDF-SHA256 (RFC 5869) from the configured master secret. Each purpose gets its own
//! derived key through the HKDF `info` string.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use super::{b64, b64_decode, CryptoError};
use crate::env::Rng;

/// A 256-bit key for `purpose` derived from `master` with HKDF-SHA256 (RFC 5869). Every
/// instance sharing the master key derives the same key (used for the key-encryption keys
/// and for stateless DPoP nonces, RFC 9449 §8).
pub fn derive_key(master: &[u8], purpose: &str) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"portcullis kek v1"), master);
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
    let _ = hk.expand(purpose.as_bytes(), &mut okm);
    okm
}

/// A key-encryption key for one purpose.
pub struct Kek(Aes256Gcm);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    /// Derives the key for `purpose` from `master`.
    pub fn derive(master: &[u8], purpose: &str) -> Self {
        Self(Aes256Gcm::new(&derive_key(master, purpose).into()))
    }

    /// Encrypts `plaintext`, binding `aad`; returns `v1.<nonce>.<ciphertext>` in base64url.
    pub fn seal(&self, rng: &dyn Rng, plaintext: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError("encryption failed".into()))?;
        Ok(format!("v1.{}.{}", b64(nonce), b64(ct)))
    }

    /// Decrypts a value made by [`Kek::seal`] with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let bad = || CryptoError("sealed value is malformed or the master key is wrong".into());
        let mut parts = sealed.split('.');
        if parts.next() != Some("v1") {
            return Err(bad());
        }
        let nonce = parts.next().and_then(b64_decode).ok_or_else(bad)?;
        let ct = parts.next().and_then(b64_decode).ok_or_else(bad)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
        if parts.next().is_some() {
            return Err(bad());
        }
        self.0
            .decrypt(&Nonce::from(nonce), Payload { msg: &ct, aad })
            .map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let rng = SeededRng::new(1);
        let kek = Kek::derive(b"master secret 0123456789", "signing-keys");
        let sealed = kek.seal(&rng, b"private", b"kid-1").unwrap();
        assert_eq!(kek.open(&sealed, b"kid-1").unwrap(), b"private");
        assert!(kek.open(&sealed, b"kid-2").is_err());
        let other = Kek::derive(b"another master secret 01", "signing-keys");
        assert!(other.open(&sealed, b"kid-1").is_err());
        let purpose = Kek::derive(b"master secret 0123456789", "vault");
        assert!(purpose.open(&sealed, b"kid-1").is_err());
    }
}
