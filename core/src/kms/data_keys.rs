//! Envelope encryption for secrets at rest under an external KMS: one 256-bit data key per
//! deployment, made by the KMS (`transit/datakey/plaintext`), stored only wrapped
//! (`kms_data_keys`), unwrapped by the KMS (`transit/decrypt`) when an instance needs it, and
//! then used exactly as a master key (per-purpose and per-connection keys derived with HKDF,
//! AES-256-GCM, [`crate::vault::seal`]).
//!
//! The unwrapped keys are held in memory for [`DATA_KEY_CACHE_SECS`], then unwrapped again:
//! revoking the server's Vault token (or its `decrypt` capability) stops it opening secrets
//! within that time. Two instances starting at once may each make a data key; the oldest
//! stored one seals on every instance, and a value naming a key this instance has not loaded
//! makes it read the stored keys again ([`super::Kms::sealing_keys_for`]).

use std::sync::{Arc, RwLock};

use super::vault_transit::VaultTransit;
use super::KmsError;
use crate::crypto::master::{key_id, key_label, MasterKeyRing};
use crate::env::Env;
use crate::store::repo::kms::{self as repo, DataKeyRow};

/// How long unwrapped data keys are used before they are unwrapped again, seconds.
pub const DATA_KEY_CACHE_SECS: i64 = 300;

struct Loaded {
    at: i64,
    ring: Arc<MasterKeyRing>,
    /// The ids of the data keys in the ring.
    ids: Vec<u32>,
}

/// The unwrapped data keys of one server.
#[derive(Default)]
pub struct DataKeys {
    cache: RwLock<Option<Loaded>>,
}

impl DataKeys {
    /// The sealing ring: the data keys (the oldest, which seals, first) then the master keys.
    /// `need`: a key id a value names; a cached ring without it is read again.
    pub async fn ring(
        &self,
        env: &Env,
        vault: &VaultTransit,
        master: &MasterKeyRing,
        need: Option<u32>,
    ) -> Result<Arc<MasterKeyRing>, KmsError> {
        let now = env.clock.now();
        if let Some(l) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let fresh = now >= l.at && now - l.at < DATA_KEY_CACHE_SECS;
            let has = need.is_none_or(|id| l.ids.contains(&id) || master.get(id).is_some());
            if fresh && has {
                return Ok(l.ring.clone());
            }
        }
        let loaded = load(env, vault, master).await?;
        let ring = loaded.ring.clone();
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Some(loaded);
        Ok(ring)
    }
}

/// Reads the stored data keys (making the first one if there is none) and unwraps them.
async fn load(env: &Env, vault: &VaultTransit, master: &MasterKeyRing) -> Result<Loaded, KmsError> {
    let db = env.sql.as_ref();
    let name = vault.sealing_key_name();
    let mut rows = repo::data_keys(db, &name).await?;
    if rows.is_empty() {
        let (plain, wrapped) = vault.generate_data_key(env).await?;
        repo::insert_data_key(
            db,
            &DataKeyRow {
                id: key_label(key_id(&plain)),
                kms_key: name.clone(),
                wrapped,
                created_at: env.clock.now(),
            },
        )
        .await?;
        rows = repo::data_keys(db, &name).await?;
    }
    let mut keys: Vec<[u8; 32]> = Vec::with_capacity(rows.len());
    for row in &rows {
        let plain = vault.decrypt_data_key(env, &row.wrapped).await?;
        if key_label(key_id(&plain)) != row.id {
            tracing::warn!(id = %row.id, "kms data key: the unwrapped key does not match its id");
            return Err(KmsError::Unavailable(format!(
                "the data key stored as {} does not unwrap to that key",
                row.id
            )));
        }
        keys.push(plain);
    }
    let Some((current, rest)) = keys.split_first() else {
        return Err(KmsError::Unavailable("no data key is stored".into()));
    };
    let previous = rest
        .iter()
        .map(|k| k.as_slice())
        .chain(master.all().map(|(_, k)| k));
    Ok(Loaded {
        at: env.clock.now(),
        ring: Arc::new(MasterKeyRing::new(current, previous)),
        ids: keys.iter().map(|k| key_id(k)).collect(),
    })
}
