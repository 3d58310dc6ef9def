//! Key custody (the KMS seam): who holds the key that signs access tokens (RFC 9068 §2.1,
//! published in the JWKS, RFC 7517) and the keys that seal secrets at rest (the vault's
//! upstream tokens, providers' and connectors' client secrets).
//!
//! - `local` (the default, unchanged): signing keys are generated here and sealed under the
//!   master key ([`crate::keys`], [`crate::crypto::kek`]); secrets are sealed under keys
//!   derived from the master key ring ([`crate::crypto::master`]).
//! - `vault_transit` ([`vault_transit`]): Vault signs with an `ecdsa-p256` Transit key and
//!   publishes its versions; secrets are sealed under a 256-bit data key that Vault wraps
//!   ([`data_keys`]): only the wrapped form is stored, and the unwrapped key is held in
//!   memory for a bounded time. The master key ring stays in the sealing ring as retired
//!   keys, so values sealed before the switch still open and `portcullis rekey` moves them.
//!
//! Either way the sealed form is the master key ring's (`k{id}.{nonce}.{ciphertext}`), so
//! the vault and the re-encryption code are the same for both.

pub mod data_keys;
pub mod vault_transit;

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::master::{self, KeyRef, MasterKeyRing};
use crate::env::Env;
use crate::error::{Error, ErrorCode};
use crate::store::StoreError;
use vault_transit::VaultTransit;

/// The KMS could not do what was asked (unreachable, refused, a malformed answer). The
/// detail is for the log (it is logged where it happens); clients get
/// [`KmsError::public`]'s fixed answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// The KMS failed; the reason.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed (reading or storing a wrapped data key).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KmsError {
    /// What a client is told: 503 `temporarily_unavailable`, no detail.
    pub fn public() -> Error {
        Error::new(
            ErrorCode::TemporarilyUnavailable,
            "the key management service is temporarily unavailable",
        )
        .with_header(http::header::RETRY_AFTER, "5")
    }
}

impl From<KmsError> for Error {
    fn from(e: KmsError) -> Self {
        match e {
            KmsError::Unavailable(_) => KmsError::public(),
            KmsError::Store(s) => s.into(),
        }
    }
}

/// The key custody in force, shared by the server's context.
pub struct Kms {
    master: Arc<MasterKeyRing>,
    vault: Option<Arc<VaultTransit>>,
    data_keys: data_keys::DataKeys,
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kms({})", self.kind())
    }
}

impl Kms {
    /// The custody of a validated configuration.
    pub fn new(cfg: &Config) -> Self {
        Self {
            master: Arc::new(cfg.master_key_ring()),
            vault: VaultTransit::new(&cfg.kms).map(Arc::new),
            data_keys: data_keys::DataKeys::default(),
        }
    }

    /// `local` or `vault_transit`.
    pub fn kind(&self) -> &'static str {
        if self.vault.is_some() {
            "vault_transit"
        } else {
            "local"
        }
    }

    /// The Vault Transit client, when Vault holds the keys.
    pub fn vault(&self) -> Option<&Arc<VaultTransit>> {
        self.vault.as_ref()
    }

    /// The ring that seals and opens secrets at rest: the master key ring (`local`), or the
    /// unwrapped data keys followed by the master keys (`vault_transit`).
    pub async fn sealing_keys(&self, env: &Env) -> Result<Arc<MasterKeyRing>, KmsError> {
        match &self.vault {
            None => Ok(self.master.clone()),
            Some(vault) => self.data_keys.ring(env, vault, &self.master, None).await,
        }
    }

    /// [`Self::sealing_keys`] able to open `sealed`: when the ring does not hold the key the
    /// value names (a data key another instance made meanwhile), it is read again first.
    pub async fn sealing_keys_for(
        &self,
        env: &Env,
        sealed: &str,
    ) -> Result<Arc<MasterKeyRing>, KmsError> {
        let Some(vault) = &self.vault else {
            return Ok(self.master.clone());
        };
        let named = match master::parse(sealed).map(|s| s.key) {
            Some(KeyRef::Id(id)) => Some(id),
            _ => None,
        };
        self.data_keys.ring(env, vault, &self.master, named).await
    }
}
