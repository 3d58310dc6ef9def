//! Cache seam: a key-value store with expiry. Holds only data whose loss or staleness is
//! harmless (metadata document caches, rate-limit counters); never single-use state
//! (DESIGN.md rule 4; Workers KV is eventually consistent).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::StoreError;
use crate::env::MaybeSend;

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
