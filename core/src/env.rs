//! [`Env`]: the bundle of runtime seams one host hands the core (clock, randomness, storage,
//! signing, outbound HTTP), built once by each adapter (DESIGN.md rule 1).

use std::sync::Arc;

use crate::crypto::CryptoProvider;
use crate::runtime::{Clock, Fetcher, Rng};
use crate::store::{KvStore, SqlStore};

/// Everything the core needs from its host.
#[derive(Clone)]
pub struct Env {
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Secure randomness.
    pub rng: Arc<dyn Rng>,
    /// System of record.
    pub sql: Arc<dyn SqlStore>,
    /// Caches.
    pub kv: Arc<dyn KvStore>,
    /// Signing and verification.
    pub crypto: Arc<dyn CryptoProvider>,
    /// Outbound HTTP (SSRF-checked by the implementation after DNS resolution).
    pub fetcher: Arc<dyn Fetcher>,
}
