//! The signing key ring (RFC 9068 §2.1, RFC 7517 JWKS, RFC 7638 thumbprint `kid`s):
//! generates the first ES256 key, seals private keys with the key-encryption key, caches the
//! active signer, publishes current and retired public keys, and rotates on demand or when
//! the active key is older than `key_rotation_interval`. Retired keys stay published until
//! every token they signed has expired.

use std::sync::{Arc, RwLock};

use serde_json::{json, Value as Json};

use crate::config::Config;
use crate::crypto::kek::Kek;
use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use crate::crypto::{b64, b64_decode, sha256, CryptoError, Es256Signer};
use crate::server::{Env, Portcullis};
use crate::store::repo::keys::{self as repo, KeyRow};
use crate::store::StoreError;

/// Master secret used when none is configured. Only a loopback issuer may start without a
/// master key (see [`Config::validate`]); keys sealed with this are not protected.
const DEVELOPMENT_MASTER_KEY: &[u8] = b"portcullis insecure development master key";

/// How long the cached active key is trusted before re-reading storage (picks up rotations
/// made by other instances or the CLI).
const CACHE_SECS: i64 = 30;

/// A key-ring failure.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material could not be used (wrong master key, corrupt row).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<KeyError> for crate::error::Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s.into(),
            KeyError::Crypto(_) => crate::error::Error::server("signing key unavailable"),
        }
    }
}

/// A public key as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// Creation time.
    pub created_at: i64,
    /// Retirement time (no longer signs).
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS.
    pub remove_after: Option<i64>,
    /// `active` or `retired`.
    pub status: &'static str,
}

impl From<&KeyRow> for KeyInfo {
    fn from(k: &KeyRow) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            created_at: k.created_at,
            retired_at: k.retired_at,
            remove_after: k.remove_after,
            status: if k.retired_at.is_some() {
                "retired"
            } else {
                "active"
            },
        }
    }
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
}

struct Cached {
    loaded_at: i64,
    active: ActiveKey,
    /// `kid` → uncompressed SEC1 public key, for every published key.
    public: Vec<(String, Vec<u8>)>,
}

/// The key ring. One per server; safe to share.
pub struct KeyRing {
    kek: Kek,
    cache: RwLock<Option<Arc<Cached>>>,
    rotation_interval: i64,
    max_token_ttl: i64,
}

impl KeyRing {
    /// A key ring sealing keys under the configured master key.
    pub fn new(cfg: &Config) -> Self {
        let master = cfg
            .master_key
            .as_ref()
            .map_or(DEVELOPMENT_MASTER_KEY, |k| k.expose().as_bytes());
        Self {
            kek: Kek::derive(master, "signing-keys"),
            cache: RwLock::new(None),
            rotation_interval: cfg.key_rotation_interval,
            max_token_ttl: cfg.access_token_ttl.max(cfg.client_credentials_ttl),
        }
    }

    fn cached(&self) -> Option<Arc<Cached>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store_cache(&self, c: Cached) -> Arc<Cached> {
        let c = Arc::new(c);
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        c
    }

    /// Generates and stores a new key (it signs from now on, being the newest).
    async fn generate(&self, env: &Env) -> Result<KeyRow, KeyError> {
        let scalar = generate_scalar(env.rng.as_ref());
        let public = public_key_sec1(&scalar)?;
        let jwk = public_jwk(&public);
        let kid = thumbprint(&jwk);
        let jwk = with_kid(jwk, &kid);
        let row = KeyRow {
            private_enc: self.kek.seal(env.rng.as_ref(), &scalar, kid.as_bytes())?,
            kid,
            alg: "ES256".into(),
            public_jwk: jwk.to_string(),
            created_at: env.clock.now(),
            retired_at: None,
            remove_after: None,
        };
        repo::insert(env.sql.as_ref(), &row).await?;
        Ok(row)
    }

    /// Loads keys from storage, creating the first one if there is none.
    async fn load(&self, env: &Env) -> Result<Arc<Cached>, KeyError> {
        let now = env.clock.now();
        let mut rows = repo::published(env.sql.as_ref(), now).await?;
        if !rows.iter().any(|k| k.retired_at.is_none()) {
            rows.insert(0, self.generate(env).await?);
        }
        // Newest unretired key signs.
        let active_row = rows
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| (k.created_at, k.kid.clone()))
            .ok_or_else(|| CryptoError("no active key".into()))?;
        let scalar: [u8; 32] = self
            .kek
            .open(&active_row.private_enc, active_row.kid.as_bytes())?
            .try_into()
            .map_err(|_| CryptoError("stored key has the wrong length".into()))?;
        let signer = env.crypto.es256_signer(&scalar)?;
        let public = rows
            .iter()
            .filter_map(|k| Some((k.kid.clone(), sec1_from_jwk(&k.public_jwk)?)))
            .collect();
        Ok(self.store_cache(Cached {
            loaded_at: now,
            active: ActiveKey {
                kid: active_row.kid.clone(),
                signer,
                created_at: active_row.created_at,
            },
            public,
        }))
    }

    /// Makes sure an active key exists and is loaded (called on start).
    pub async fn ensure_active(&self, env: &Env) -> Result<(), KeyError> {
        self.load(env).await.map(|_| ())
    }

    /// The key that signs now, rotating first if the active key is past its interval.
    pub async fn active(&self, server: &Portcullis) -> Result<ActiveKey, KeyError> {
        let env = server.env();
        let now = env.clock.now();
        let cached = match self.cached() {
            Some(c) if now - c.loaded_at < CACHE_SECS => c,
            _ => self.load(env).await?,
        };
        if self.rotation_interval > 0 && now - cached.active.created_at >= self.rotation_interval {
            self.rotate(server).await?;
            return Ok(self.load(env).await?.active.clone());
        }
        Ok(cached.active.clone())
    }

    /// The public key with `kid`, re-reading storage once when it is unknown.
    pub async fn public_key(&self, env: &Env, kid: &str) -> Result<Option<Vec<u8>>, KeyError> {
        let find = |c: &Cached| {
            c.public
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, p)| p.clone())
        };
        if let Some(p) = self.cached().as_deref().and_then(find) {
            return Ok(Some(p));
        }
        let fresh = self.load(env).await?;
        Ok(find(&fresh))
    }

    /// The published JWK Set, read from storage (so every instance publishes every key).
    pub async fn jwks(&self, env: &Env) -> Result<Json, KeyError> {
        let rows = repo::published(env.sql.as_ref(), env.clock.now()).await?;
        let keys: Vec<Json> = rows
            .iter()
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// Every published key with its status.
    pub async fn list(&self, env: &Env) -> Result<Vec<KeyInfo>, KeyError> {
        let rows = repo::published(env.sql.as_ref(), env.clock.now()).await?;
        Ok(rows.iter().map(KeyInfo::from).collect())
    }

    /// Adds a new active key and retires the others; they stay published until every token
    /// they signed has expired (longest token lifetime plus a minute of skew).
    pub async fn rotate(&self, server: &Portcullis) -> Result<KeyInfo, KeyError> {
        let env = server.env();
        let row = self.generate(env).await?;
        let now = env.clock.now();
        repo::retire_others(
            env.sql.as_ref(),
            &row.kid,
            now,
            now + self.max_token_ttl + 60,
        )
        .await?;
        self.load(env).await?;
        crate::audit::record(
            server,
            crate::audit::Event {
                action: "key.rotated",
                success: true,
                detail: Some(json!({ "kid": row.kid })),
                ..Default::default()
            },
        )
        .await;
        Ok(KeyInfo::from(&row))
    }
}

/// The public JWK (without `kid`) of an uncompressed SEC1 P-256 key.
pub fn public_jwk(sec1: &[u8]) -> Json {
    let (x, y) = sec1[1..].split_at(32);
    json!({ "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y) })
}

fn with_kid(mut jwk: Json, kid: &str) -> Json {
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), kid.into());
        o.insert("alg".into(), "ES256".into());
        o.insert("use".into(), "sig".into());
    }
    jwk
}

/// RFC 7638 thumbprint of an EC public JWK (members in lexicographic order, no spaces).
pub fn thumbprint(jwk: &Json) -> String {
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap_or(""),
        jwk["x"].as_str().unwrap_or(""),
        jwk["y"].as_str().unwrap_or("")
    );
    b64(sha256(canonical.as_bytes()))
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
    fn jwk_sec1_roundtrip() {
        let rng = crate::env::SeededRng::new(5);
        let scalar = generate_scalar(&rng);
        let sec1 = public_key_sec1(&scalar).unwrap();
        let jwk = public_jwk(&sec1);
        assert_eq!(sec1_from_jwk(&jwk.to_string()).unwrap(), sec1);
    }
}
