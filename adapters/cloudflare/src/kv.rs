//! The core's cache seam ([`KvStore`]) on a Workers KV namespace. KV is eventually
//! consistent and cannot expire an entry sooner than 60 s after writing it, so each value
//! carries its own expiry (8 bytes, big-endian seconds, before the payload) and `get` checks
//! it; KV's TTL is the requested one clamped up to 60 s, and only removes stale entries.
//! Caches only: never single-use state (DESIGN.md rule 4).

use async_trait::async_trait;
use portcullis_core::store::{KvStore, StoreError};

/// KV's smallest accepted `expirationTtl`, seconds.
pub const MIN_TTL: i64 = 60;

/// A KV namespace behind the cache seam.
pub struct KvCache {
    kv: worker::KvStore,
}

impl KvCache {
    /// Wraps a KV binding.
    pub fn new(kv: worker::KvStore) -> Self {
        Self { kv }
    }
}

fn unavailable(e: worker::KvError) -> StoreError {
    StoreError::Unavailable(format!("KV: {e}"))
}

/// KV's TTL for an entry that must expire at `expires_at`.
pub fn kv_ttl(expires_at: i64, now: i64) -> u64 {
    expires_at.saturating_sub(now).max(MIN_TTL) as u64
}

/// The stored form: expiry, then the value.
pub fn encode(value: &[u8], expires_at: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value of a stored entry if it has not expired at `now`.
pub fn decode(stored: Vec<u8>, now: i64) -> Option<Vec<u8>> {
    let head: [u8; 8] = stored.get(..8)?.try_into().ok()?;
    (i64::from_be_bytes(head) > now).then(|| stored[8..].to_vec())
}

#[async_trait(?Send)]
impl KvStore for KvCache {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.kv.get(key).bytes().await.map_err(unavailable)?;
        Ok(stored.and_then(|s| decode(s, now)))
    }

    async fn put(&self, key: &str, value: Vec<u8>, expires_at: i64) -> Result<(), StoreError> {
        let now = worker::Date::now().as_millis() as i64 / 1000;
        if expires_at <= now {
            return self.delete(key).await;
        }
        self.kv
            .put_bytes(key, &encode(&value, expires_at))
            .map_err(unavailable)?
            .expiration_ttl(kv_ttl(expires_at, now))
            .execute()
            .await
            .map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.kv.delete(key).await.map_err(unavailable)
    }
}
