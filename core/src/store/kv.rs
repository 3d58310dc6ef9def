//! Cache seam: a key-value store with expiry. Holds only data whose loss or staleness is
//! harmless (metadata document caches, rate-limit counters); never single-use state
//! (DESIGN.md rule 4; Workers KV is eventually consistent).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::StoreError;
use crate::runtime::MaybeSend;

/// A cache with per-entry expiry (absolute, seconds since the epoch).
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait KvStore: MaybeSend {
    /// Returns the value if present and not expired at `now`.
    async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a value until `expires_at`.
    async fn put(&self, key: &str, value: Vec<u8>, expires_at: i64) -> Result<(), StoreError>;
    /// Removes a value.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// A process-local cache, bounded in size (oldest-expiring entries are evicted first).
#[derive(Debug)]
pub struct MemoryKv {
    map: Mutex<HashMap<String, (Vec<u8>, i64)>>,
    capacity: usize,
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::with_capacity(10_000)
    }
}

impl MemoryKv {
    /// A cache holding at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl KvStore for MemoryKv {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone()))
    }

    async fn put(&self, key: &str, value: Vec<u8>, expires_at: i64) -> Result<(), StoreError> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity && !map.contains_key(key) {
            if let Some(victim) = map
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(k, _)| k.clone())
            {
                map.remove(&victim);
            }
        }
        map.insert(key.to_owned(), (value, expires_at));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }
}

/// Stored form of a cache entry for a backend without exact per-entry expiry (Workers KV
/// expires no sooner than 60 s, Spin key-value never): the absolute expiry (8 bytes,
/// big-endian seconds since the epoch), then the value.
pub fn encode_entry(value: &[u8], expires_at: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value of an entry stored with [`encode_entry`], if it is well formed and has not
/// expired at `now`.
pub fn decode_entry(stored: &[u8], now: i64) -> Option<Vec<u8>> {
    let (head, value) = stored.split_at_checked(8)?;
    let expires_at = i64::from_be_bytes(head.try_into().ok()?);
    (expires_at > now).then(|| value.to_vec())
}

/// A backend key for the cache key `key` no longer than `max_bytes` (Spin key-value allows
/// 255 bytes, Workers KV 512): longer keys, and keys that look like such a replacement, are
/// replaced by `sha256:` and the base64url SHA-256 of the key, so the two kinds never collide.
pub fn bounded_key(key: &str, max_bytes: usize) -> String {
    if key.len() <= max_bytes && !key.starts_with("sha256:") {
        key.to_owned()
    } else {
        format!("sha256:{}", crate::crypto::b64(crate::crypto::sha256(key)))
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    #[test]
    fn entries_carry_their_expiry() {
        let e = encode_entry(b"v", 100);
        assert_eq!(decode_entry(&e, 99), Some(b"v".to_vec()));
        assert_eq!(decode_entry(&e, 100), None);
        assert_eq!(decode_entry(b"short", 0), None);
        assert_eq!(decode_entry(&encode_entry(b"", 5), 0), Some(Vec::new()));
    }

    #[test]
    fn long_keys_are_hashed_and_cannot_collide_with_plain_ones() {
        let long = "k".repeat(300);
        let k = bounded_key(&long, 255);
        assert!(k.len() <= 255 && k.starts_with("sha256:"));
        assert_eq!(bounded_key(&long, 512), long);
        assert_eq!(bounded_key("cimd:https://a", 255), "cimd:https://a");
        assert_ne!(
            bounded_key(&k, 255),
            k,
            "a key that looks hashed is hashed again"
        );
    }
}
