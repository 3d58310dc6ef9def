//! [`Context`]: what every protocol module works with (the configuration in force, the
//! runtime seams, the signing key ring and the issuer). It sits below the protocol modules
//! and the routers; [`crate::Portcullis`] owns one and dereferences to it, so protocol code
//! never depends on the router object.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::master::MasterKeyRing;
use crate::env::Env;
use crate::keys::KeyRing;
use crate::kms::Kms;
use crate::limit_lease::Leases;
use crate::store::record_cache::RecordCache;

/// The started server's state, as the protocol modules see it.
pub struct Context {
    cfg: Config,
    env: Env,
    keys: KeyRing,
    master_keys: MasterKeyRing,
    kms: Kms,
    /// The issuer without a trailing slash.
    issuer: String,
    /// This replica's reserved counts of the machine-client limits.
    limit_leases: Leases,
}

impl Context {
    /// A context for a validated configuration (the key ring starts empty; the server makes
    /// sure a signing key exists when it starts).
    pub fn new(mut env: Env, cfg: Config) -> Self {
        let kms = Kms::new(&cfg);
        env.sql = RecordCache::wrap(env.sql, env.clock.clone(), cfg.storage.record_cache_ms);
        Self {
            issuer: cfg.issuer().to_owned(),
            keys: KeyRing::new(&cfg, kms.vault().cloned()),
            master_keys: cfg.master_key_ring(),
            kms,
            cfg,
            env,
            limit_leases: Leases::default(),
        }
    }

    /// This replica's reserved counts of the machine-client rate limit and quota.
    pub fn limit_leases(&self) -> &Leases {
        &self.limit_leases
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The runtime seams.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The issuer identifier, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The master key ring (the configured `master_key` and `previous_master_keys`). It seals
    /// the locally generated signing keys; secrets at rest are sealed under
    /// [`Self::sealing_keys`], which is this ring only with the `local` KMS.
    pub fn master_keys(&self) -> &MasterKeyRing {
        &self.master_keys
    }

    /// The key custody in force (`kms.kind`).
    pub fn kms(&self) -> &Kms {
        &self.kms
    }

    /// The ring that seals secrets at rest (vault tokens, client secrets): the master key
    /// ring, or the KMS-wrapped data keys ([`crate::kms`]). A KMS failure is 503.
    pub async fn sealing_keys(&self) -> crate::error::Result<Arc<MasterKeyRing>> {
        Ok(self.kms.sealing_keys(&self.env).await?)
    }

    /// [`Self::sealing_keys`] holding the key that sealed `sealed`, when it exists.
    pub async fn sealing_keys_for(&self, sealed: &str) -> crate::error::Result<Arc<MasterKeyRing>> {
        Ok(self.kms.sealing_keys_for(&self.env, sealed).await?)
    }

    /// The signing key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Current time, seconds.
    pub fn now(&self) -> i64 {
        self.env.clock.now()
    }
}
