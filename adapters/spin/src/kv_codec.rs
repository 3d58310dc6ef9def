//! How cache entries are laid out in Spin key-value, which has no expiry of its own: the
//! absolute expiry (seconds since the epoch, 8 bytes big-endian) before the value. Keys
//! longer than Spin's limit are replaced by a hash of themselves.

use portcullis_core::crypto::{b64, sha256};

/// Spin key-value keys are limited to 255 bytes; longer cache keys are hashed.
pub const MAX_KEY_BYTES: usize = 255;

/// The key-value key for a cache key.
pub fn store_key(key: &str) -> String {
    if key.len() <= MAX_KEY_BYTES && !key.starts_with("sha256:") {
        key.to_owned()
    } else {
        format!("sha256:{}", b64(sha256(key)))
    }
}

/// Prefixes `value` with its expiry.
pub fn encode(value: &[u8], expires_at: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value if the entry is well formed and not expired at `now`.
pub fn decode(stored: &[u8], now: i64) -> Option<Vec<u8>> {
    let (exp, value) = stored.split_at_checked(8)?;
    let expires_at = i64::from_be_bytes(exp.try_into().ok()?);
    (expires_at > now).then(|| value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let e = encode(b"v", 100);
        assert_eq!(decode(&e, 99), Some(b"v".to_vec()));
        assert_eq!(decode(&e, 100), None);
        assert_eq!(decode(b"short", 0), None);
    }

    #[test]
    fn long_keys_are_hashed_and_cannot_collide_with_plain_ones() {
        let long = "k".repeat(300);
        let k = store_key(&long);
        assert!(k.len() <= MAX_KEY_BYTES && k.starts_with("sha256:"));
        assert_eq!(store_key("cimd:https://a"), "cimd:https://a");
        assert_ne!(store_key(&k), k, "a key that looks hashed is hashed again");
    }
}
