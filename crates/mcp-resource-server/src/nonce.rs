//! Resource-server DPoP nonces (RFC 9449 §9): stateless, so every instance of the resource
//! server that shares the secret accepts the others' nonces. A nonce is the time window it was
//! issued in and an HMAC-SHA256 over it; it is accepted in that window and the next one, so
//! it lives between one and two lifetimes. A proof without a current nonce is answered
//! 401 `use_dpop_nonce` with a fresh one in the `DPoP-Nonce` header (§9, §8.2).

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ConfigError;

/// Shortest secret accepted, bytes.
const MIN_SECRET: usize = 32;
/// MAC bytes kept in a nonce.
const TAG: usize = 16;

/// Issues and checks nonces.
#[derive(Clone)]
pub struct NonceKey {
    secret: Vec<u8>,
    lifetime: u64,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key from `secret` (at least 32 bytes, shared by the instances of this resource
    /// server) for nonces valid for `lifetime` (at least one second) to twice that.
    pub fn new(secret: &[u8], lifetime: Duration) -> Result<Self, ConfigError> {
        if secret.len() < MIN_SECRET {
            return Err(ConfigError::NonceSecret);
        }
        Ok(Self {
            secret: secret.to_vec(),
            lifetime: lifetime.as_secs().max(1),
        })
    }

    fn window(&self, now: i64) -> u64 {
        u64::try_from(now).unwrap_or(0) / self.lifetime
    }

    fn tag(&self, window: u64) -> [u8; TAG] {
        // HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"portcullis-resource-server dpop nonce ");
        mac.update(&window.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG];
        out.copy_from_slice(&full[..TAG]);
        out
    }

    /// A nonce for the current window.
    pub fn issue(&self, now: i64) -> String {
        let window = self.window(now);
        let mut raw = window.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.tag(window));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` was issued with this key in the current or the previous window.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if raw.len() != 8 + TAG {
            return false;
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&raw[..8]);
        let window = u64::from_be_bytes(w);
        let current = self.window(now);
        if window != current && window.saturating_add(1) != current {
            return false;
        }
        let want = self.tag(window);
        raw[8..]
            .iter()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn nonces_live_one_to_two_windows_and_only_with_their_key() {
        let k = NonceKey::new(SECRET, Duration::from_secs(60)).unwrap();
        let n = k.issue(1_000_020); // window 16 667 (1 000 020 .. 1 000 080)
        assert!(k.accepts(&n, 1_000_020));
        assert!(k.accepts(&n, 1_000_079));
        assert!(k.accepts(&n, 1_000_139), "the next window still accepts it");
        assert!(!k.accepts(&n, 1_000_140), "two windows later it is stale");
        assert!(!k.accepts(&n, 1_000_019), "not before its window");
        let other = NonceKey::new(
            b"another secret of thirty-two bytes!",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(!other.accepts(&n, 1_000_020), "another key's nonce");
        let mut forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&n)
            .unwrap();
        forged[10] ^= 1;
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
        assert!(!k.accepts(&forged, 1_000_020));
        for junk in ["", "!!", "AAAA", &"A".repeat(5000)] {
            assert!(!k.accepts(junk, 1_000_020));
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            NonceKey::new(b"short", Duration::from_secs(60)).unwrap_err(),
            ConfigError::NonceSecret
        );
    }
}
