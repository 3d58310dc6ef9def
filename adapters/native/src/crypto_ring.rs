//! The native crypto provider (DESIGN.md rule 8): ES256 (RFC 7518 §3.4) on `ring`, several
//! times faster than the portable RustCrypto default, behind the core's [`CryptoProvider`].
//! Password hashing and verification (argon2id, the core's implementation) run on a fixed
//! pool of threads ([`Argon2Pool`], one per core), so that logins never stall the async
//! workers that serve every other request (L5) and the memory they need stays bounded.

use std::sync::Arc;

use async_trait::async_trait;

use crate::argon2_pool::Argon2Pool;
use p256::pkcs8::EncodePrivateKey;
use portcullis_core::crypto::{password, CryptoError, CryptoProvider, Es256Signer};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};

thread_local! {
    /// The argon2 working memory of an [`Argon2Pool`] thread, kept from one hash to the next
    /// (so resident memory holds one hash's worth per thread, however many logins pass).
    static ARGON2_MEMORY: std::cell::RefCell<Vec<password::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn with_argon2_memory<T>(f: impl FnOnce(&mut Vec<password::Block>) -> T) -> T {
    ARGON2_MEMORY.with_borrow_mut(f)
}

/// ES256 on `ring`; argon2 on its own threads.
#[derive(Debug, Clone)]
pub struct RingCrypto {
    rng: SystemRandom,
    /// Threads for argon2 (each computation takes about 19 MiB): one per core.
    argon2: Arc<Argon2Pool>,
}

impl RingCrypto {
    /// A provider drawing signing nonces from the operating system.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            rng: SystemRandom::new(),
            argon2: Arc::new(Argon2Pool::new(cores)),
        }
    }

    /// Runs `work` on the argon2 threads.
    async fn off_workers<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CryptoError> {
        self.argon2
            .run(work)
            .await
            .ok_or_else(|| CryptoError("password hashing failed".into()))
    }
}

impl Default for RingCrypto {
    fn default() -> Self {
        Self::new()
    }
}

struct RingSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

#[async_trait]
impl Es256Signer for RingSigner {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], CryptoError> {
        let sig = self
            .key
            .sign(&self.rng, message)
            .map_err(|_| CryptoError("ring: signing failed".into()))?;
        sig.as_ref()
            .try_into()
            .map_err(|_| CryptoError("ring: unexpected signature length".into()))
    }
}

#[async_trait]
impl CryptoProvider for RingCrypto {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn es256_signer(&self, scalar: &[u8; 32]) -> Result<Arc<dyn Es256Signer>, CryptoError> {
        // ring loads private keys only from PKCS#8; p256 writes one (with the public key,
        // which ring checks against the scalar).
        let secret = p256::SecretKey::from_slice(scalar).map_err(|e| CryptoError(e.to_string()))?;
        let doc = secret
            .to_pkcs8_der()
            .map_err(|e| CryptoError(e.to_string()))?;
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_bytes(), &self.rng)
                .map_err(|e| CryptoError(format!("ring: {e}")))?;
        Ok(Arc::new(RingSigner {
            key,
            rng: self.rng.clone(),
        }))
    }

    async fn es256_verify(&self, public_sec1: &[u8], message: &[u8], signature: &[u8]) -> bool {
        // ring refuses r = 0 or s = 0 and out-of-range values (J4), and malformed points.
        signature.len() == 64
            && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_sec1)
                .verify(message, signature)
                .is_ok()
    }

    async fn password_hash(
        &self,
        password: &str,
        salt: [u8; 16],
        cost: password::PasswordCost,
    ) -> Result<String, CryptoError> {
        let password = password.to_owned();
        self.off_workers(move || {
            with_argon2_memory(|memory| password::hash_with_salt_in(&password, &salt, cost, memory))
        })
        .await?
    }

    async fn password_verify(&self, password: &str, stored: &str) -> bool {
        let (password, stored) = (password.to_owned(), stored.to_owned());
        self.off_workers(move || {
            with_argon2_memory(|memory| password::verify_in(&password, &stored, memory))
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::crypto::rustcrypto::{generate_scalar, public_key_sec1};
    use portcullis_core::crypto::RustCrypto;
    use portcullis_core::runtime::SeededRng;

    use super::*;

    /// `es256_verify` (both providers verify without suspending).
    fn verifies(p: &dyn CryptoProvider, public: &[u8], message: &[u8], sig: &[u8]) -> bool {
        use futures_util::FutureExt;
        p.es256_verify(public, message, sig)
            .now_or_never()
            .expect("verification completes without suspending")
    }

    fn key(seed: u64) -> ([u8; 32], Vec<u8>) {
        let scalar = generate_scalar(&SeededRng::new(seed));
        let public = public_key_sec1(&scalar).unwrap();
        (scalar, public)
    }

    #[tokio::test]
    async fn ring_signatures_verify_with_rustcrypto() {
        let (scalar, public) = key(1);
        let sig = RingCrypto::new()
            .es256_signer(&scalar)
            .unwrap()
            .sign(b"header.payload")
            .await
            .unwrap();
        assert!(verifies(&RustCrypto, &public, b"header.payload", &sig));
        assert!(!verifies(&RustCrypto, &public, b"header.payloaD", &sig));
        assert!(verifies(
            &RingCrypto::new(),
            &public,
            b"header.payload",
            &sig
        ));
    }

    #[tokio::test]
    async fn rustcrypto_signatures_verify_with_ring() {
        let (scalar, public) = key(2);
        let sig = RustCrypto
            .es256_signer(&scalar)
            .unwrap()
            .sign(b"m")
            .await
            .unwrap();
        let ring = RingCrypto::new();
        assert!(verifies(&ring, &public, b"m", &sig));
        assert!(!verifies(&ring, &public, b"n", &sig));
        let (_, other) = key(3);
        assert!(!verifies(&ring, &other, b"m", &sig));
        assert!(!verifies(&ring, &public, b"m", &sig[..63]));
        assert!(!verifies(&ring, &public[1..], b"m", &sig));
    }

    #[test]
    fn j4_zero_r_or_s_is_refused() {
        let (_, public) = key(4);
        let ring = RingCrypto::new();
        let mut zero_r = [0u8; 64];
        zero_r[63] = 1;
        let mut zero_s = [0u8; 64];
        zero_s[31] = 1;
        assert!(!verifies(&ring, &public, b"m", &zero_r));
        assert!(!verifies(&ring, &public, b"m", &zero_s));
        assert!(!verifies(&ring, &public, b"m", &[0u8; 64]));
    }

    /// How many times another task ran on this (single-threaded) runtime while `work` was
    /// awaited. Inline argon2 holds the only thread, so nothing else runs: 0.
    async fn progress_during<F: std::future::Future>(work: F) -> (u64, F::Output) {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let (ticks, stop) = (ticks.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::SeqCst) {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::SeqCst);
        let out = work.await;
        let during = ticks.load(Ordering::SeqCst) - before;
        stop.store(true, Ordering::SeqCst);
        ticker.await.unwrap();
        (during, out)
    }

    /// L5: argon2 runs off the async worker: on a single-threaded runtime, other tasks keep
    /// running while a password is hashed or verified. The control (the core's inline
    /// default, as on the edge hosts) shows the measure would catch inline work.
    #[tokio::test(flavor = "current_thread")]
    async fn l5_argon2_runs_off_the_async_workers() {
        let ring = RingCrypto::new();
        let salt = [7u8; 16];
        let cost = password::PasswordCost::default();
        let (during, hash) = progress_during(ring.password_hash("correct horse", salt, cost)).await;
        let hash = hash.unwrap();
        assert!(during > 0, "other tasks stalled while hashing");
        let (during, ok) = progress_during(ring.password_verify("correct horse", &hash)).await;
        assert!(ok);
        assert!(during > 0, "other tasks stalled while verifying");
        let (during, ok) = progress_during(ring.password_verify("wrong", &hash)).await;
        assert!(!ok);
        assert!(during > 0);
        // Same results as the core's inline implementation, which stalls the runtime.
        let (during, inline) =
            progress_during(RustCrypto.password_hash("correct horse", salt, cost)).await;
        assert_eq!(inline.unwrap(), hash);
        assert_eq!(
            during, 0,
            "the control must stall: the measure is meaningful"
        );
        let (during, ok) =
            progress_during(RustCrypto.password_verify("correct horse", &hash)).await;
        assert!(ok);
        assert_eq!(during, 0);
    }

    #[test]
    fn invalid_scalar_is_an_error() {
        assert!(RingCrypto::new().es256_signer(&[0u8; 32]).is_err());
        assert!(RingCrypto::new().es256_signer(&[0xff; 32]).is_err());
    }
}
