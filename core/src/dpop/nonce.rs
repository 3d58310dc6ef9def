//! Stateless DPoP server nonces (RFC 9449 §8, §9). A nonce is the time it was issued plus an
//! HMAC-SHA256 tag over that time, under a key derived with HKDF from the master key
//! ([`crate::crypto::kek::derive_key`]), so every instance sharing the master key can check a
//! nonce any other instance issued, with no storage. A nonce is valid from its issue time
//! (a few seconds of clock difference between instances allowed) until the configured
//! lifetime has passed.

use hkdf::hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::context::Context;
use crate::crypto::{b64, b64_decode};

/// How far in the future a nonce's issue time may be (clock difference between instances).
const ISSUE_SKEW_SECS: i64 = 5;

/// Bytes of the HMAC tag kept in a nonce.
const TAG_LEN: usize = 16;

/// The key that issues and checks nonces.
pub struct NonceKey([u8; 32]);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey([redacted])")
    }
}

impl NonceKey {
    /// The key derived from `master`.
    pub fn derive(master: &[u8]) -> Self {
        Self(crate::crypto::kek::derive_key(master, "dpop-nonce"))
    }

    /// The key of `server` (from its master key).
    pub fn of(ctx: &Context) -> Self {
        Self::derive(ctx.config().master_key_bytes())
    }

    fn mac(&self, issued_at: i64) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"portcullis dpop nonce v1");
        mac.update(&issued_at.to_be_bytes());
        mac
    }

    /// A nonce issued at `now`.
    pub fn issue(&self, now: i64) -> String {
        let tag = self.mac(now).finalize().into_bytes();
        let mut raw = Vec::with_capacity(8 + TAG_LEN);
        raw.extend_from_slice(&now.to_be_bytes());
        raw.extend_from_slice(&tag[..TAG_LEN]);
        b64(raw)
    }

    /// Whether `nonce` was issued by this key and is still valid at `now`.
    pub fn check(&self, nonce: &str, now: i64, lifetime: i64) -> bool {
        if nonce.len() > 64 {
            return false;
        }
        let Some(raw) = b64_decode(nonce) else {
            return false;
        };
        if raw.len() != 8 + TAG_LEN {
            return false;
        }
        let (time, tag) = raw.split_at(8);
        let issued_at = i64::from_be_bytes(time.try_into().unwrap_or_default());
        if issued_at > now + ISSUE_SKEW_SECS || now.saturating_sub(issued_at) > lifetime {
            return false;
        }
        // Constant-time comparison of the truncated tag.
        self.mac(issued_at).verify_truncated_left(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d4_nonce_round_trips_and_expires() {
        let key = NonceKey::derive(b"master key 0123456789");
        let n = key.issue(1000);
        assert!(key.check(&n, 1000, 300));
        assert!(
            key.check(&n, 1300, 300),
            "valid until the lifetime has passed"
        );
        assert!(!key.check(&n, 1301, 300), "stale");
        assert!(key.check(&n, 995, 300), "a few seconds of clock difference");
        assert!(!key.check(&n, 990, 300), "issued too far in the future");
    }

    #[test]
    fn d4_nonce_from_another_instance_with_the_same_master_key() {
        let a = NonceKey::derive(b"master key 0123456789");
        let b = NonceKey::derive(b"master key 0123456789");
        assert!(b.check(&a.issue(50), 60, 300));
        let other = NonceKey::derive(b"another master key 0123");
        assert!(!other.check(&a.issue(50), 60, 300));
    }

    #[test]
    fn d4_forged_or_malformed_nonces_refused() {
        let key = NonceKey::derive(b"master key 0123456789");
        let n = key.issue(1000);
        let mut raw = b64_decode(&n).unwrap();
        // Move the issue time forward without the key: the tag no longer matches.
        raw[7] ^= 1;
        assert!(!key.check(&b64(&raw), 1001, 300));
        raw[7] ^= 1;
        raw[20] ^= 1;
        assert!(!key.check(&b64(&raw), 1001, 300));
        for bad in ["", "abc", "!!!!", &"A".repeat(100), &n[..n.len() - 2]] {
            assert!(!key.check(bad, 1000, 300), "{bad}");
        }
    }
}
