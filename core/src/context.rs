//! [`Context`]: what every protocol module works with (the configuration in force, the
//! runtime seams, the signing key ring and the issuer). It sits below the protocol modules
//! and the routers; [`crate::Portcullis`] owns one and dereferences to it, so protocol code
//! never depends on the router object.

use crate::config::Config;
use crate::crypto::master::MasterKeyRing;
use crate::env::Env;
use crate::keys::KeyRing;

/// The started server's state, as the protocol modules see it.
pub struct Context {
    cfg: Config,
    env: Env,
    keys: KeyRing,
    master_keys: MasterKeyRing,
    /// The issuer without a trailing slash.
    issuer: String,
}

impl Context {
    /// A context for a validated configuration (the key ring starts empty; the server makes
    /// sure a signing key exists when it starts).
    pub fn new(env: Env, cfg: Config) -> Self {
        Self {
            issuer: cfg.issuer().to_owned(),
            keys: KeyRing::new(&cfg),
            master_keys: cfg.master_key_ring(),
            cfg,
            env,
        }
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

    /// The master key ring (the configured `master_key` and `previous_master_keys`).
    pub fn master_keys(&self) -> &MasterKeyRing {
        &self.master_keys
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
