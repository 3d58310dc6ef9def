//! The signing key ring (RFC 9068 §2.1, RFC 7517 JWKS, RFC 7638 thumbprint `kid`s):
//! generates ES256 keys, seals private keys with the key-encryption key, caches the signers,
//! publishes pending, active and retired public keys, and rotates on demand or on schedule.
//!
//! Rotation with pre-publication: a new key is stored with `activates_at = now + prepublish`.
//! It is in the JWKS at once (the JWKS is always read from storage, so every instance
//! publishes it as soon as it exists) but signs only from `activates_at`; the keys it
//! replaces retire at that same instant, so exactly one key signs at any time, and they stay
//! published until every token they signed has expired (`remove_after`). A verifier that
//! refreshes its cached JWKS within the pre-publication window never meets an unknown `kid`.
//!
//! Scheduled rotation (`key_rotation_interval`) pre-publishes the successor at least
//! [`JWKS_MAX_AGE_SECS`] (or `key_prepublish_secs`, if longer) before the active key reaches
//! its interval; one instance wins the right to create it through an atomic reservation in
//! the replay cache, so instances sharing a store do not create one successor each.
//!
//! With an external KMS (`kms.kind = "vault_transit"`, [`crate::kms`]) the key ring
//! generates nothing: the KMS key's versions are the published keys and its latest version
//! signs; rotation happens in the KMS. Keys generated here before the switch stay published
//! until they are removed, so tokens they signed keep verifying.

use std::sync::{Arc, Mutex, RwLock};

use serde_json::{json, Value as Json};

use crate::config::Config;
use crate::crypto::kek::Kek;
use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use crate::crypto::{b64_decode, CryptoError, Es256Signer};
pub use crate::crypto::{public_jwk, thumbprint};
use crate::env::Env;
use crate::kms::vault_transit::{VaultSigner, VaultTransit};
use crate::kms::KmsError;
use crate::store::repo::keys::{self as repo, KeyRow, ScheduledKey};
use crate::store::StoreError;

/// How long the cached key set is trusted before re-reading storage (picks up rotations
/// made by other instances or the CLI). An instance may keep signing with a just-retired
/// key for this long, which [`RETIRE_MARGIN_SECS`] covers.
const CACHE_SECS: i64 = 30;

/// Extra time a retired key stays published beyond the longest token lifetime.
const RETIRE_MARGIN_SECS: i64 = 60;

/// `Cache-Control: max-age` of the published JWKS, and the shortest pre-publication of a
/// scheduled rotation: a verifier honouring the header has refreshed before the key signs.
pub const JWKS_MAX_AGE_SECS: i64 = 300;

/// How long one instance holds the right to create the scheduled successor of a key.
const SCHEDULE_LOCK_SECS: i64 = 600;

/// How long an instance waits before trying again after another one won that right.
const SCHEDULE_BACKOFF_SECS: i64 = 10;

/// Longest pre-publication accepted (30 days).
pub const MAX_PREPUBLISH_SECS: i64 = 30 * 24 * 3600;

/// A key-ring failure.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material could not be used (wrong master key, corrupt row).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The external KMS failed (logged where it happened).
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// The operation is not available with the key custody in force.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl From<KeyError> for crate::error::Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s.into(),
            KeyError::Crypto(_) => crate::error::Error::server("signing key unavailable"),
            KeyError::Kms(k) => k.into(),
            KeyError::Unsupported(why) => crate::error::Error::invalid_request(why),
        }
    }
}

/// A public key as published, with its life cycle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// Creation time (published from then on).
    pub created_at: i64,
    /// When it starts (or started) signing.
    pub activates_at: i64,
    /// When it stops (or stopped) signing.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS.
    pub remove_after: Option<i64>,
    /// `pending` (published, not signing yet), `active` (signing) or `retired`.
    pub status: &'static str,
}

/// The status of a key at `now`: `retired` once its retirement time has come, `pending`
/// before its activation, `active` in between.
pub fn status_at(activates_at: i64, retired_at: Option<i64>, now: i64) -> &'static str {
    if retired_at.is_some_and(|r| r <= now) {
        "retired"
    } else if activates_at > now {
        "pending"
    } else {
        "active"
    }
}

impl KeyInfo {
    /// The published view of a stored key at `now`.
    pub fn at(k: &ScheduledKey, now: i64) -> Self {
        Self {
            kid: k.key.kid.clone(),
            alg: k.key.alg.clone(),
            created_at: k.key.created_at,
            activates_at: activation(k),
            retired_at: k.key.retired_at,
            remove_after: k.key.remove_after,
            status: status_at(activation(k), k.key.retired_at, now),
        }
    }
}

/// When a stored key signs from: rows from before pre-publication existed carry 0.
fn activation(k: &ScheduledKey) -> i64 {
    k.activates_at.max(k.key.created_at)
}

/// The key that signs now.
#[derive(Clone)]
pub struct ActiveKey {
    /// Its `kid`.
    pub kid: String,
    /// Its signer.
    pub signer: Arc<dyn Es256Signer>,
    /// When it was created.
    pub created_at: i64,
    /// When it started signing.
    pub activates_at: i64,
    /// Whether an external KMS signs (a failure there is 503, not 500).
    pub external: bool,
}

impl ActiveKey {
    /// Signs `claims` as a compact JWS with this key (ES256, `kid`, `typ`). A KMS that fails
    /// gives 503 `temporarily_unavailable` (logged by the KMS client); a local failure 500.
    pub async fn sign_jws(&self, typ: &str, claims: &Json) -> crate::error::Result<String> {
        crate::jose::sign_es256(self.signer.as_ref(), &self.kid, typ, claims)
            .await
            .map_err(|_| {
                if self.external {
                    KmsError::public()
                } else {
                    crate::error::Error::server("the access token could not be signed")
                }
            })
    }
}

/// A published key as cached: its times, its public key and, for keys that sign now or
/// later, its signer.
struct Loaded {
    kid: String,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
    public: Option<Vec<u8>>,
    signer: Option<Arc<dyn Es256Signer>>,
}

impl Loaded {
    fn can_sign_at(&self, now: i64) -> bool {
        self.signer.is_some() && status_at(self.activates_at, self.retired_at, now) == "active"
    }

    /// Published but not signing yet, and not retired before it ever signs.
    fn pending_at(&self, now: i64) -> bool {
        self.activates_at > now && self.retired_at.is_none_or(|r| r > self.activates_at)
    }
}

struct Cached {
    loaded_at: i64,
    keys: Vec<Loaded>,
}

impl Cached {
    /// The key that signs at `now`: the most recently activated unretired key.
    fn signer_at(&self, now: i64) -> Option<&Loaded> {
        self.keys
            .iter()
            .filter(|k| k.can_sign_at(now))
            .max_by(|a, b| {
                (a.activates_at, a.created_at, &a.kid).cmp(&(b.activates_at, b.created_at, &b.kid))
            })
    }

    fn has_pending(&self, now: i64) -> bool {
        self.keys.iter().any(|k| k.pending_at(now))
    }

    fn active_at(&self, now: i64) -> Result<ActiveKey, KeyError> {
        let k = self
            .signer_at(now)
            .ok_or_else(|| CryptoError("no active signing key".into()))?;
        let signer = k
            .signer
            .clone()
            .ok_or_else(|| CryptoError("no active signing key".into()))?;
        Ok(ActiveKey {
            kid: k.kid.clone(),
            signer,
            created_at: k.created_at,
            activates_at: k.activates_at,
            external: false,
        })
    }
}

/// The HKDF purpose of the signing keys' key-encryption key.
pub const KEK_PURPOSE: &str = "signing-keys";

/// The key ring. One per server; safe to share.
pub struct KeyRing {
    kek: Kek,
    /// The external KMS that holds the signing key, if any.
    vault: Option<Arc<VaultTransit>>,
    cache: RwLock<Option<Arc<Cached>>>,
    rotation_interval: i64,
    prepublish: i64,
    max_token_ttl: i64,
    /// The last active `kid` this instance saw (for the `key.activated` audit event).
    last_active: Mutex<String>,
    /// No scheduling attempt before this time (after losing the race to another instance).
    schedule_after: Mutex<i64>,
}

impl KeyRing {
    /// A key ring sealing keys under the configured master key, or publishing and signing
    /// with the `vault` Transit key when one is given.
    pub fn new(cfg: &Config, vault: Option<Arc<VaultTransit>>) -> Self {
        Self {
            kek: Kek::derive(&cfg.master_key_ring(), KEK_PURPOSE),
            vault,
            cache: RwLock::new(None),
            rotation_interval: cfg.key_rotation_interval.max(0),
            prepublish: cfg.key_prepublish_secs.clamp(0, MAX_PREPUBLISH_SECS),
            max_token_ttl: cfg.access_token_ttl.max(cfg.client_credentials_ttl),
            last_active: Mutex::new(String::new()),
            schedule_after: Mutex::new(i64::MIN),
        }
    }

    /// The pre-publication of a scheduled rotation.
    fn scheduled_lead(&self) -> i64 {
        self.prepublish.max(JWKS_MAX_AGE_SECS)
    }

    fn cached(&self) -> Option<Arc<Cached>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store_cache(&self, c: Cached) -> Arc<Cached> {
        let c = Arc::new(c);
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        c
    }

    /// Generates and stores a new key, published now, signing from `activates_at`.
    async fn generate(&self, env: &Env, activates_at: i64) -> Result<ScheduledKey, KeyError> {
        let scalar = generate_scalar(env.rng.as_ref());
        let public = public_key_sec1(&scalar)?;
        let jwk = public_jwk(&public);
        let kid = thumbprint(&jwk);
        let jwk = with_kid(jwk, &kid);
        let now = env.clock.now();
        let key = KeyRow {
            private_enc: self
                .kek
                .seal(
                    env.crypto.as_ref(),
                    env.rng.as_ref(),
                    &scalar,
                    kid.as_bytes(),
                )
                .await?,
            kid,
            alg: "ES256".into(),
            public_jwk: jwk.to_string(),
            created_at: now,
            retired_at: None,
            remove_after: None,
        };
        let activates_at = activates_at.max(now);
        repo::insert_scheduled(env.sql.as_ref(), &key, activates_at).await?;
        Ok(ScheduledKey { key, activates_at })
    }

    /// Builds the cache from stored keys, opening the private key of every key that signs
    /// now or will.
    async fn build(&self, env: &Env, rows: &[ScheduledKey], now: i64) -> Result<Cached, KeyError> {
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let k = &row.key;
            let activates_at = activation(row);
            let signs_later = k.retired_at.is_none_or(|r| r > now && r > activates_at);
            let signer = if signs_later {
                let scalar: [u8; 32] = self
                    .kek
                    .open(env.crypto.as_ref(), &k.private_enc, k.kid.as_bytes())
                    .await?
                    .try_into()
                    .map_err(|_| CryptoError("stored key has the wrong length".into()))?;
                Some(env.crypto.es256_signer(&scalar)?)
            } else {
                None
            };
            keys.push(Loaded {
                kid: k.kid.clone(),
                created_at: k.created_at,
                activates_at,
                retired_at: k.retired_at,
                public: sec1_from_jwk(&k.public_jwk),
                signer,
            });
        }
        Ok(Cached {
            loaded_at: now,
            keys,
        })
    }

    /// Loads keys from storage, creating one that signs at once if none does.
    async fn load(&self, env: &Env) -> Result<Arc<Cached>, KeyError> {
        let now = env.clock.now();
        let mut rows = repo::published_scheduled(env.sql.as_ref(), now).await?;
        let mut cached = self.build(env, &rows, now).await?;
        if cached.signer_at(now).is_none() {
            rows.insert(0, self.generate(env, now).await?);
            cached = self.build(env, &rows, now).await?;
        }
        Ok(self.store_cache(cached))
    }

    /// Makes sure an active key exists and is loaded (called on start). With a KMS, reads
    /// its signing key; a KMS that cannot be read now is logged and does not stop the start
    /// (discovery, pages and the JWKS from the shared cache keep working; what needs the KMS
    /// answers 503 until it can be read).
    pub async fn ensure_active(&self, env: &Env) -> Result<(), KeyError> {
        if let Some(vault) = &self.vault {
            if let Err(e) = vault.key_set(env).await {
                tracing::error!(error = %e, "kms: the signing key cannot be read; token requests answer 503 until it can");
            }
            return Ok(());
        }
        self.load(env).await.map(|_| ())
    }

    /// The KMS's latest key version as the active key.
    async fn active_external(
        &self,
        env: &Env,
        vault: &Arc<VaultTransit>,
    ) -> Result<ActiveKey, KeyError> {
        let set = vault.key_set(env).await?;
        let key = set
            .signing()
            .ok_or_else(|| KmsError::Unavailable("the KMS key has no version".into()))?;
        Ok(ActiveKey {
            kid: key.kid.clone(),
            signer: Arc::new(VaultSigner {
                vault: vault.clone(),
                env: env.clone(),
                version: key.version,
                sec1: key.sec1.clone(),
            }),
            created_at: 0,
            activates_at: 0,
            external: true,
        })
    }

    /// Public keys generated here that are still published (with a KMS: those from before
    /// the switch).
    async fn stored_public(&self, env: &Env) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
        let rows = repo::published(env.sql.as_ref(), env.clock.now()).await?;
        Ok(rows
            .iter()
            .filter_map(|k| sec1_from_jwk(&k.public_jwk).map(|p| (k.kid.clone(), p)))
            .collect())
    }

    /// The key that signs now. When the active key nears the end of its rotation interval
    /// and no successor is pending, schedules one first.
    pub async fn active(&self, env: &Env) -> Result<ActiveKey, KeyError> {
        if let Some(vault) = &self.vault {
            return self.active_external(env, vault).await;
        }
        let now = env.clock.now();
        let mut cached = match self.cached() {
            Some(c) if now - c.loaded_at < CACHE_SECS && c.signer_at(now).is_some() => c,
            _ => self.load(env).await?,
        };
        if self.rotation_interval > 0 {
            let current = cached.active_at(now)?;
            let since = current.activates_at.max(current.created_at);
            let due = now >= since + self.rotation_interval - self.scheduled_lead();
            if due && !cached.has_pending(now) && self.schedule(env, &current, since).await? {
                cached = self.load(env).await?;
            }
        }
        let active = cached.active_at(now)?;
        self.note_activation(env, &active).await;
        Ok(active)
    }

    /// Creates the scheduled successor of `current` unless another instance did (or is
    /// doing) so. Returns whether the stored key set may have changed.
    async fn schedule(&self, env: &Env, current: &ActiveKey, since: i64) -> Result<bool, KeyError> {
        let now = env.clock.now();
        {
            let mut after = self
                .schedule_after
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if now < *after {
                return Ok(false);
            }
            *after = now + SCHEDULE_BACKOFF_SECS;
        }
        let fresh = self.load(env).await?;
        if fresh.has_pending(now) || fresh.signer_at(now).is_none_or(|k| k.kid != current.kid) {
            return Ok(true);
        }
        let lock = format!("key-rotation:{}", current.kid);
        let won = crate::store::repo::replay::reserve(
            env.sql.as_ref(),
            &lock,
            now + SCHEDULE_LOCK_SECS,
            now,
        )
        .await?;
        if !won {
            return Ok(false);
        }
        let activates_at = (now + self.scheduled_lead()).max(since + self.rotation_interval);
        self.rotate_at(env, activates_at, true).await?;
        Ok(true)
    }

    /// Records `key.activated` once (across instances) when a pre-published key starts
    /// signing.
    async fn note_activation(&self, env: &Env, active: &ActiveKey) {
        {
            let mut last = self.last_active.lock().unwrap_or_else(|e| e.into_inner());
            if *last == active.kid {
                return;
            }
            last.clone_from(&active.kid);
        }
        if active.activates_at <= active.created_at {
            return;
        }
        let now = env.clock.now();
        let once = crate::store::repo::replay::reserve(
            env.sql.as_ref(),
            &format!("key-activated:{}", active.kid),
            now + 400 * 24 * 3600,
            now,
        )
        .await;
        if let Ok(true) = once {
            crate::audit::record(
                env,
                crate::audit::Event {
                    action: "key.activated",
                    success: true,
                    detail: Some(json!({ "kid": active.kid, "activates_at": active.activates_at })),
                    ..Default::default()
                },
            )
            .await;
        }
    }

    /// The public key with `kid` (pending, active or retired but still published),
    /// re-reading storage once when it is unknown.
    pub async fn public_key(&self, env: &Env, kid: &str) -> Result<Option<Vec<u8>>, KeyError> {
        if let Some(vault) = &self.vault {
            let set = vault.key_set_with(env, kid).await?;
            if let Some(k) = set.by_kid(kid) {
                return Ok(Some(k.sec1.clone()));
            }
            let stored = self.stored_public(env).await?;
            return Ok(stored.into_iter().find(|(k, _)| k == kid).map(|(_, p)| p));
        }
        let find = |c: &Cached| {
            c.keys
                .iter()
                .find(|k| k.kid == kid)
                .and_then(|k| k.public.clone())
        };
        if let Some(p) = self.cached().as_deref().and_then(find) {
            return Ok(Some(p));
        }
        let fresh = self.load(env).await?;
        Ok(find(&fresh))
    }

    /// The published JWK Set, read from storage (so every instance publishes every key,
    /// including pre-published ones, as soon as it is stored).
    pub async fn jwks(&self, env: &Env) -> Result<Json, KeyError> {
        let mut keys: Vec<Json> = match &self.vault {
            Some(vault) => vault
                .key_set(env)
                .await?
                .keys
                .iter()
                .map(|k| k.jwk.clone())
                .collect(),
            None => Vec::new(),
        };
        let rows = repo::published(env.sql.as_ref(), env.clock.now()).await?;
        keys.extend(
            rows.iter()
                .filter_map(|k| serde_json::from_str(&k.public_jwk).ok()),
        );
        Ok(json!({ "keys": keys }))
    }

    /// Every published key with its status.
    pub async fn list(&self, env: &Env) -> Result<Vec<KeyInfo>, KeyError> {
        let now = env.clock.now();
        let mut out = Vec::new();
        if let Some(vault) = &self.vault {
            let set = vault.key_set(env).await?;
            for (i, k) in set.keys.iter().enumerate() {
                out.push(KeyInfo {
                    kid: k.kid.clone(),
                    alg: "ES256".into(),
                    created_at: 0,
                    activates_at: 0,
                    retired_at: None,
                    remove_after: None,
                    status: if i == 0 { "active" } else { "retired" },
                });
            }
        }
        let rows = repo::published_scheduled(env.sql.as_ref(), now).await?;
        out.extend(rows.iter().map(|k| {
            let mut info = KeyInfo::at(k, now);
            if self.vault.is_some() {
                info.status = "retired";
            }
            info
        }));
        Ok(out)
    }

    /// Rotates with the configured pre-publication (`key_prepublish_secs`).
    pub async fn rotate(&self, env: &Env) -> Result<KeyInfo, KeyError> {
        self.rotate_with(env, self.prepublish).await
    }

    /// Adds a new key that is published now and signs `prepublish_secs` from now (0: at
    /// once; at most [`MAX_PREPUBLISH_SECS`]); the keys it replaces retire at that moment.
    pub async fn rotate_with(&self, env: &Env, prepublish_secs: i64) -> Result<KeyInfo, KeyError> {
        if self.vault.is_some() {
            return Err(KeyError::Unsupported(
                "the signing key is kept in Vault Transit (kms.kind): rotate it there \
                 (vault write -f transit/keys/NAME/rotate); the new version signs and is \
                 published within seconds",
            ));
        }
        let activates_at = env.clock.now() + prepublish_secs.clamp(0, MAX_PREPUBLISH_SECS);
        self.rotate_at(env, activates_at, false).await
    }

    /// Stores a new key signing from `activates_at` and retires every other key at that
    /// instant; they stay published until every token they signed has expired (longest
    /// token lifetime plus a margin covering other instances' caches).
    async fn rotate_at(
        &self,
        env: &Env,
        activates_at: i64,
        scheduled: bool,
    ) -> Result<KeyInfo, KeyError> {
        let row = self.generate(env, activates_at).await?;
        let activates_at = row.activates_at;
        repo::retire_others(
            env.sql.as_ref(),
            &row.key.kid,
            activates_at,
            activates_at + self.max_token_ttl + RETIRE_MARGIN_SECS,
        )
        .await?;
        self.load(env).await?;
        crate::audit::record(
            env,
            crate::audit::Event {
                action: "key.rotated",
                success: true,
                detail: Some(json!({
                    "kid": row.key.kid,
                    "activates_at": activates_at,
                    "scheduled": scheduled,
                })),
                ..Default::default()
            },
        )
        .await;
        Ok(KeyInfo::at(&row, env.clock.now()))
    }
}

fn with_kid(mut jwk: Json, kid: &str) -> Json {
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), kid.into());
        o.insert("alg".into(), "ES256".into());
        o.insert("use".into(), "sig".into());
    }
    jwk
}

fn sec1_from_jwk(jwk: &str) -> Option<Vec<u8>> {
    let v: Json = serde_json::from_str(jwk).ok()?;
    let x = b64_decode(v["x"].as_str()?)?;
    let y = b64_decode(v["y"].as_str()?)?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut out = Vec::with_capacity(65);
    out.push(4);
    out.extend_from_slice(&x);
    out.extend_from_slice(&y);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1 uses an RSA key; for EC we check the canonical form is stable and
        // independent of member order and extra members.
        let a = json!({"kty":"EC","crv":"P-256","x":"AAA","y":"BBB","kid":"zzz"});
        let b = json!({"y":"BBB","x":"AAA","crv":"P-256","kty":"EC"});
        assert_eq!(thumbprint(&a), thumbprint(&b));
    }

    #[test]
    fn status_follows_activation_and_retirement() {
        assert_eq!(status_at(100, None, 99), "pending");
        assert_eq!(status_at(100, None, 100), "active");
        assert_eq!(status_at(100, Some(200), 199), "active");
        assert_eq!(status_at(100, Some(200), 200), "retired");
        // Retired before it ever activated (replaced by an immediate rotation).
        assert_eq!(status_at(500, Some(300), 300), "retired");
        assert_eq!(status_at(500, Some(300), 299), "pending");
    }

    #[test]
    fn exactly_one_signer_across_a_prepublished_handover() {
        let signer = |seed| {
            let scalar = generate_scalar(&crate::runtime::SeededRng::new(seed));
            Some(
                crate::crypto::CryptoProvider::es256_signer(&crate::crypto::RustCrypto, &scalar)
                    .unwrap(),
            )
        };
        let key = |kid: &str, created_at, activates_at, retired_at| Loaded {
            kid: kid.into(),
            created_at,
            activates_at,
            retired_at,
            public: None,
            signer: signer(created_at as u64),
        };
        let c = Cached {
            loaded_at: 0,
            keys: vec![key("new", 50, 100, None), key("old", 0, 0, Some(100))],
        };
        assert_eq!(c.signer_at(99).unwrap().kid, "old");
        assert!(c.has_pending(99));
        assert_eq!(c.signer_at(100).unwrap().kid, "new");
        assert!(!c.has_pending(100));
        // A pending key retired before its activation never signs and is not pending.
        let c = Cached {
            loaded_at: 0,
            keys: vec![
                key("now", 60, 60, None),
                key("skipped", 50, 100, Some(60)),
                key("old", 0, 0, Some(60)),
            ],
        };
        for t in [60, 99, 100, 1000] {
            assert_eq!(c.signer_at(t).unwrap().kid, "now", "{t}");
            assert!(!c.has_pending(t));
        }
    }

    #[test]
    fn jwk_sec1_roundtrip() {
        let rng = crate::runtime::SeededRng::new(5);
        let scalar = generate_scalar(&rng);
        let sec1 = public_key_sec1(&scalar).unwrap();
        let jwk = public_jwk(&sec1);
        assert_eq!(sec1_from_jwk(&jwk.to_string()).unwrap(), sec1);
    }
}
