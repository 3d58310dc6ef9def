//! The cache on Spin key-value (`spin:key-value@3.0.0`, the `default` store). Spin key-value
//! has no expiry, so each entry carries its own (the core's [`encode_entry`]) and an expired
//! entry read is deleted; keys over Spin's 255 bytes are hashed ([`bounded_key`]). It holds only caches (DESIGN.md rule 4); single-use state lives in SQLite.

use async_trait::async_trait;
use portcullis_core::store::kv::{bounded_key, decode_entry, encode_entry};
use portcullis_core::store::{KvStore, StoreError};
use spin_sdk::key_value::{Error, Store};

/// Spin key-value keys are limited to 255 bytes.
const MAX_KEY_BYTES: usize = 255;

fn store_key(key: &str) -> String {
    bounded_key(key, MAX_KEY_BYTES)
}

/// Spin key-value behind the core's [`KvStore`].
pub struct SpinKv {
    store: Store,
}

impl SpinKv {
    /// Opens the store `label` declared in spin.toml (`key_value_stores`).
    pub async fn open(label: &str) -> Result<Self, StoreError> {
        let store = Store::open(label).await.map_err(map_err)?;
        Ok(Self { store })
    }
}

fn map_err(e: Error) -> StoreError {
    StoreError::Unavailable(format!("key-value: {e:?}"))
}

#[async_trait(?Send)]
impl KvStore for SpinKv {
    async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = store_key(key);
        let Some(stored) = self.store.get(&key).await.map_err(map_err)? else {
            return Ok(None);
        };
        match decode_entry(&stored, now) {
            Some(v) => Ok(Some(v)),
            None => {
                // Expired or malformed: forget it (best effort; a cache miss either way).
                let _ = self.store.delete(&key).await;
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, expires_at: i64) -> Result<(), StoreError> {
        self.store
            .set(store_key(key), encode_entry(&value, expires_at))
            .await
            .map_err(map_err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(store_key(key)).await.map_err(map_err)
    }
}
