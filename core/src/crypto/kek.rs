//! Encryption of private keys at rest: AES-256-GCM under a key-encryption key derived with
//! HKDF-SHA256 (RFC 5869) from the configured master secret. Each purpose gets its own
//! derived key through the HKDF `info` string; each key of the master key ring its own
//! key-encryption key, so values sealed before a master key rotation still open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use super::master::{self, KeyRef, MasterKeyRing};
use super::{CryptoError, CryptoProvider};
use crate::runtime::Rng;

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

/// AES-256-GCM encryption (RustCrypto): the ciphertext with the 128-bit tag appended.
pub fn aes256gcm_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Aes256Gcm::new(key.into())
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError("encryption failed".into()))
}

/// AES-256-GCM decryption and authentication (RustCrypto) of [`aes256gcm_seal`]'s output.
pub fn aes256gcm_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Aes256Gcm::new(key.into())
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError("decryption failed".into()))
}

/// A key-encryption key for one purpose, derived from each key of the master key ring. The
/// AES-256-GCM operations go through the host's [`CryptoProvider`] (WebCrypto on Workers); the
/// sealed format ([`crate::crypto::master`]) is the same for every provider.
pub struct Kek {
    /// `(master key id, derived key)`, the current master key's first.
    keys: Vec<(u32, [u8; 32])>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    /// Derives the key for `purpose` from every key of `ring`.
    pub fn derive(ring: &MasterKeyRing, purpose: &str) -> Self {
        Self {
            keys: ring
                .all()
                .map(|(id, master)| (id, derive_key(master, purpose)))
                .collect(),
        }
    }

    /// Encrypts `plaintext` under the current master key's derived key, binding `aad`;
    /// returns `k{key id}.<nonce>.<ciphertext>` in base64url.
    pub async fn seal(
        &self,
        crypto: &dyn CryptoProvider,
        rng: &dyn Rng,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<String, CryptoError> {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let ct = crypto.aes256gcm_seal(key, &nonce, plaintext, aad).await?;
        Ok(master::format(*id, &nonce, &ct))
    }

    /// Decrypts a value made by [`Kek::seal`] with the same `aad`, under whichever held
    /// master key sealed it (a value from before the ring, `v1.`, under any).
    pub async fn open(
        &self,
        crypto: &dyn CryptoProvider,
        sealed: &str,
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let bad = || {
            CryptoError(
                "sealed value is malformed, or sealed under a master key that is not configured \
                 (master_key, previous_master_keys)"
                    .into(),
            )
        };
        let parsed = master::parse(sealed).ok_or_else(bad)?;
        for (id, key) in &self.keys {
            if parsed.key != KeyRef::Unnamed && parsed.key != KeyRef::Id(*id) {
                continue;
            }
            let opened = crypto
                .aes256gcm_open(key, &parsed.nonce, &parsed.ciphertext, aad)
                .await;
            if let Ok(plain) = opened {
                return Ok(plain);
            }
        }
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SeededRng;

    use crate::crypto::RustCrypto;
    use futures::executor::block_on;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let rng = SeededRng::new(1);
        let c = &RustCrypto;
        let ring = |k: &[u8]| MasterKeyRing::new(k, []);
        let kek = Kek::derive(&ring(b"master secret 0123456789"), "signing-keys");
        let sealed = block_on(kek.seal(c, &rng, b"private", b"kid-1")).unwrap();
        assert_eq!(
            block_on(kek.open(c, &sealed, b"kid-1")).unwrap(),
            b"private"
        );
        assert!(block_on(kek.open(c, &sealed, b"kid-2")).is_err());
        let other = Kek::derive(&ring(b"another master secret 01"), "signing-keys");
        assert!(block_on(other.open(c, &sealed, b"kid-1")).is_err());
        let purpose = Kek::derive(&ring(b"master secret 0123456789"), "vault");
        assert!(block_on(purpose.open(c, &sealed, b"kid-1")).is_err());
        for bad in [
            "",
            "v1",
            "v2.AAAA.AAAA",
            "v1.AAAA.AAAA",
            &format!("{sealed}.x"),
        ] {
            assert!(block_on(kek.open(c, bad, b"kid-1")).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rotated_ring_opens_old_and_legacy_values_and_seals_under_the_new_key() {
        let rng = SeededRng::new(2);
        let c = &RustCrypto;
        let old = MasterKeyRing::new(b"old master secret 012345", []);
        let rotated = MasterKeyRing::new(
            b"new master secret 012345",
            [&b"old master secret 012345"[..]],
        );
        let sealed = block_on(Kek::derive(&old, "p").seal(c, &rng, b"private", b"kid")).unwrap();
        let kek = Kek::derive(&rotated, "p");
        assert_eq!(block_on(kek.open(c, &sealed, b"kid")).unwrap(), b"private");
        let resealed = block_on(kek.seal(c, &rng, b"private", b"kid")).unwrap();
        assert!(rotated.is_current(&resealed) && !rotated.is_current(&sealed));
        let only_new = Kek::derive(&MasterKeyRing::new(b"new master secret 012345", []), "p");
        assert!(block_on(only_new.open(c, &sealed, b"kid")).is_err());
        assert_eq!(
            block_on(only_new.open(c, &resealed, b"kid")).unwrap(),
            b"private"
        );
        // A value from before the ring (`v1.`, the old key's derived key) opens with any
        // held key that sealed it.
        let legacy_key = derive_key(b"old master secret 012345", "p");
        let ct = aes256gcm_seal(&legacy_key, &[3; 12], b"private", b"kid").unwrap();
        let legacy = format!(
            "v1.{}.{}",
            crate::crypto::b64([3u8; 12]),
            crate::crypto::b64(ct)
        );
        assert_eq!(block_on(kek.open(c, &legacy, b"kid")).unwrap(), b"private");
        assert!(block_on(only_new.open(c, &legacy, b"kid")).is_err());
    }

    #[test]
    fn the_sealed_format_is_aes_gcm_with_the_tag_appended() {
        // A known-answer check that pins the format other providers must produce: the
        // NIST SP 800-38D test case 13 key (all zero), nonce (all zero) and empty input give
        // just the tag 530f8afbc74536b9a963b4f1c4cb738b.
        let ct = aes256gcm_seal(&[0; 32], &[0; 12], b"", b"").unwrap();
        assert_eq!(
            ct,
            [
                0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45, 0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb,
                0x73, 0x8b
            ]
        );
        assert_eq!(aes256gcm_open(&[0; 32], &[0; 12], &ct, b"").unwrap(), b"");
    }
}
