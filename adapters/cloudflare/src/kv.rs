//! The core's cache seam ([`KvStore`]) on a Workers KV namespace. KV is eventually
//! consistent and cannot expire an entry sooner than 60 s after writing it, so each value
//! carries its own expiry (the core's [`encode_entry`]) and `get` checks it; KV's TTL is the
//! requested one clamped up to 60 s, and only removes stale entries. Keys over KV's 512 bytes
//! are hashed ([`bounded_key`]).
//! Caches only: never single-use state (DESIGN.md rule 4).

use async_trait::async_trait;
use portcullis_core::store::kv::{bounded_key, decode_entry, encode_entry};
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

/// Workers KV keys are limited to 512 bytes.
const MAX_KEY_BYTES: usize = 512;

fn store_key(key: &str) -> String {
    bounded_key(key, MAX_KEY_BYTES)
}

#[async_trait(?Send)]
impl KvStore for KvCache {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self
            .kv
            .get(&store_key(key))
            .bytes()
            .await
            .map_err(unavailable)?;
        Ok(stored.and_then(|s| decode_entry(&s, now)))
    }

    async fn put(&self, key: &str, value: Vec<u8>, expires_at: i64) -> Result<(), StoreError> {
        let now = worker::Date::now().as_millis() as i64 / 1000;
        if expires_at <= now {
            return self.delete(key).await;
        }
        self.kv
            .put_bytes(&store_key(key), &encode_entry(&value, expires_at))
            .map_err(unavailable)?
            .expiration_ttl(kv_ttl(expires_at, now))
            .execute()
            .await
            .map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.kv.delete(&store_key(key)).await.map_err(unavailable)
    }
}
