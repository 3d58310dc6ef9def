//! HashiCorp Vault's Transit secrets engine as key custody (token auth, `X-Vault-Token`),
//! following Vault's HTTP API (`website/content/api-docs/secret/transit.mdx`):
//! - `GET  /v1/{mount}/keys/{signing_key}`: the `ecdsa-p256` key's versions, each with its
//!   public key (PEM, SubjectPublicKeyInfo). Every version from `min_decryption_version` up is
//!   published in the JWKS (RFC 7517) under its RFC 7638 thumbprint; the latest signs, so a
//!   rotation in Vault (`vault write -f transit/keys/NAME/rotate`) is a new `kid`.
//! - `POST /v1/{mount}/sign/{signing_key}/sha2-256` with `marshaling_algorithm=jws` and the
//!   `key_version`: the raw `r || s` signature of RFC 7518 §3.4, base64url.
//! - `POST /v1/{mount}/datakey/plaintext/{sealing_key}` and `POST /v1/{mount}/decrypt/{sealing_key}`:
//!   a fresh 256-bit data key and its wrapped form; only the wrapped form is stored.
//!
//! The address is operator configuration, so calls go through the fetcher's configured-service
//! path ([`Fetcher::send_configured`]: no SSRF address policy, but no redirects, a time limit
//! and a size limit). Every failure (transport, a 4xx/5xx with Vault's `errors` array, a
//! malformed answer) is a [`KmsError`], logged with its reason and never shown to clients,
//! who get 503 `temporarily_unavailable`.
//!
//! What is cached: the public key set, for [`KEYS_CACHE_SECS`] in memory and in the shared
//! cache (KV), where the last set read is also the fallback while Vault cannot be read
//! ([`SHARED_KEYS_SECS`]); refetched at most every [`REFETCH_SECS`] when a token names an
//! unknown `kid`. Unwrapped data keys are held in memory only ([`super::data_keys`]).

use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePublicKey;
use serde_json::{json, Value as Json};
use url::Url;

use super::KmsError;
use crate::config::KmsConfig;
use crate::crypto::{b64_decode, CryptoError, Es256Signer};
use crate::env::Env;
use crate::runtime::{ConfiguredRequest, FetchError};
use crate::secret::Secret;

/// How long the key set read from Vault is used before it is read again: a rotation in Vault
/// signs and is published within this time on every instance.
pub const KEYS_CACHE_SECS: i64 = 10;

/// How long the key set stays in the shared cache (KV) as the fallback while Vault cannot be
/// read (it is fresh for [`KEYS_CACHE_SECS`] only).
pub const SHARED_KEYS_SECS: i64 = 7 * 24 * 3600;

/// Least time between two reads of the key set forced by an unknown `kid`.
pub const REFETCH_SECS: i64 = 5;

/// Largest Vault answer read, bytes (a key with many versions of PEM public keys).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// One published version of the signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultKey {
    /// The Transit key version.
    pub version: u64,
    /// Its `kid` (RFC 7638 thumbprint of the public JWK).
    pub kid: String,
    /// The uncompressed SEC1 public key.
    pub sec1: Vec<u8>,
    /// The public JWK as published (with `kid`, `alg`, `use`).
    pub jwk: Json,
}

/// The signing key's published versions, the latest (the one that signs) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// Every version that verifies (from `min_decryption_version` up), newest first.
    pub keys: Vec<VaultKey>,
}

impl KeySet {
    /// The version that signs (the latest).
    pub fn signing(&self) -> Option<&VaultKey> {
        self.keys.first()
    }

    /// The version published under `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&VaultKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

struct CachedSet {
    fetched_at: i64,
    set: Arc<KeySet>,
}

/// A Transit client for one configuration.
pub struct VaultTransit {
    /// The address, without a trailing slash.
    address: Url,
    mount: String,
    namespace: Option<String>,
    token: Secret,
    signing_key: String,
    sealing_key: String,
    keys: RwLock<Option<CachedSet>>,
    last_refetch: Mutex<i64>,
}

impl std::fmt::Debug for VaultTransit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VaultTransit({} {}/{{{}, {}}})",
            self.address, self.mount, self.signing_key, self.sealing_key
        )
    }
}

/// Vault's `errors` array of a refused request, joined (for the log).
fn vault_errors(body: &[u8]) -> String {
    let parsed: Option<Json> = serde_json::from_slice(body).ok();
    let list = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(|s| crate::text::truncate(s, 200).to_string())
                .collect::<Vec<_>>()
                .join("; ")
        });
    list.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "no error message".into())
}

/// Parses a PEM SubjectPublicKeyInfo P-256 key into its uncompressed SEC1 form.
pub fn sec1_from_pem(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let key = p256::PublicKey::from_public_key_der(&der).ok()?;
    Some(key.to_encoded_point(false).as_bytes().to_vec())
}

/// The key set in a `GET keys/{name}` answer's `data`: every version from
/// `min_decryption_version` up whose public key parses, newest first. Refuses a key of another
/// type (the `kid`s of an RSA or Ed25519 key would not be ES256).
pub fn parse_key_set(data: &Json) -> Result<KeySet, String> {
    let kind = data["type"].as_str().unwrap_or("");
    if kind != "ecdsa-p256" {
        return Err(format!(
            "the signing key has type {:?}; it must be ecdsa-p256",
            crate::text::truncate(kind, 40)
        ));
    }
    let min = data["min_decryption_version"].as_u64().unwrap_or(1);
    let versions = data["keys"]
        .as_object()
        .ok_or("the key has no versions (keys)")?;
    let mut keys = Vec::new();
    for (v, entry) in versions {
        let Ok(version) = v.parse::<u64>() else {
            continue;
        };
        if version < min {
            continue;
        }
        let pem = entry["public_key"]
            .as_str()
            .ok_or_else(|| format!("version {version} has no public_key"))?;
        let sec1 = sec1_from_pem(pem)
            .ok_or_else(|| format!("version {version}'s public key is not P-256"))?;
        let jwk = crate::crypto::public_jwk(&sec1);
        let kid = crate::crypto::thumbprint(&jwk);
        let mut jwk = jwk;
        jwk["kid"] = kid.clone().into();
        jwk["alg"] = "ES256".into();
        jwk["use"] = "sig".into();
        keys.push(VaultKey {
            version,
            kid,
            sec1,
            jwk,
        });
    }
    keys.sort_by_key(|k| std::cmp::Reverse(k.version));
    if keys.is_empty() {
        return Err("the key has no usable version".into());
    }
    Ok(KeySet { keys })
}

/// The 64-byte `r || s` in a `sign` answer's `signature` (`vault:v{version}:{base64url}`),
/// checking the version is the one asked for.
pub fn parse_signature(signature: &str, version: u64) -> Result<[u8; 64], String> {
    let rest = signature
        .strip_prefix("vault:v")
        .ok_or("the signature is not in Vault's vault:vN: form")?;
    let (v, sig) = rest
        .split_once(':')
        .ok_or("the signature is not in Vault's vault:vN: form")?;
    if v.parse::<u64>().ok() != Some(version) {
        return Err(format!(
            "Vault signed with version {} instead of {version}",
            crate::text::truncate(v, 20)
        ));
    }
    let raw = b64_decode(sig.trim_end_matches('='))
        .ok_or("the signature is not base64url (was marshaling_algorithm=jws honoured?)")?;
    raw.try_into()
        .map_err(|_| "the signature is not a 64-byte JWS ECDSA signature".to_owned())
}

impl VaultTransit {
    /// A client for a validated `vault_transit` configuration; `None` for `local`.
    pub fn new(cfg: &KmsConfig) -> Option<Self> {
        Some(Self {
            address: cfg.vault_url()?,
            mount: cfg.vault_mount.trim_matches('/').to_owned(),
            namespace: cfg.vault_namespace.clone(),
            token: cfg.vault_token.clone()?,
            signing_key: cfg.signing_key.clone()?,
            sealing_key: cfg.sealing_key.clone()?,
            keys: RwLock::new(None),
            last_refetch: Mutex::new(i64::MIN),
        })
    }

    /// What names the sealing key in stored rows (`{mount}/{sealing_key}`).
    pub fn sealing_key_name(&self) -> String {
        format!("{}/{}", self.mount, self.sealing_key)
    }

    /// Calls `{address}/v1/{mount}/{path}` and returns the answer's `data`.
    async fn call(
        &self,
        env: &Env,
        op: &str,
        path: &str,
        body: Option<Json>,
    ) -> Result<Json, KmsError> {
        let fail = |detail: String| {
            tracing::warn!(operation = op, address = %self.address, "vault transit: {detail}");
            KmsError::Unavailable(format!("vault transit {op}: {detail}"))
        };
        let url = self
            .address
            .join(&format!("v1/{}/{path}", self.mount))
            .map_err(|e| fail(format!("bad URL: {e}")))?;
        let mut headers: Vec<(&str, &str)> = vec![("x-vault-token", self.token.expose())];
        if let Some(ns) = &self.namespace {
            headers.push(("x-vault-namespace", ns));
        }
        let text = body.as_ref().map(Json::to_string);
        let req = ConfiguredRequest {
            method: if body.is_some() { "POST" } else { "GET" },
            url: &url,
            headers: &headers,
            json: text.as_deref(),
        };
        let resp = env
            .fetcher
            .send_configured(req, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| {
                fail(match e {
                    FetchError::Timeout => "timed out".into(),
                    e => e.to_string(),
                })
            })?;
        if resp.status != 200 {
            return Err(fail(format!(
                "HTTP {}: {}",
                resp.status,
                vault_errors(&resp.body)
            )));
        }
        let v: Json = serde_json::from_slice(&resp.body)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        match v.get("data") {
            Some(data) if data.is_object() => Ok(data.clone()),
            _ => Err(fail("the answer has no data object".into())),
        }
    }

    /// The signing key's published versions, cached for [`KEYS_CACHE_SECS`]. When Vault
    /// cannot be read, the last set read stays in use (public keys: safe to keep; signing
    /// still needs Vault) and Vault is asked again after [`KEYS_CACHE_SECS`].
    pub async fn key_set(&self, env: &Env) -> Result<Arc<KeySet>, KmsError> {
        let now = env.clock.now();
        let fresh = |at: i64| now >= at && now - at < KEYS_CACHE_SECS;
        let mut stale = {
            let cached = self.keys.read().unwrap_or_else(|e| e.into_inner());
            match cached.as_ref() {
                Some(c) if fresh(c.fetched_at) => return Ok(c.set.clone()),
                Some(c) => Some(c.set.clone()),
                None => None,
            }
        };
        // The shared cache: an instance that starts per request (Spin) or per isolate reads
        // the public keys other instances read, and still has them while Vault is down.
        if let Some((at, set)) = self.shared_key_set(env).await {
            let set = Arc::new(set);
            if fresh(at) {
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(CachedSet {
                    fetched_at: at,
                    set: set.clone(),
                });
                return Ok(set);
            }
            stale = stale.or(Some(set));
        }
        match (self.fetch_key_set(env).await, stale) {
            (Ok(set), _) => Ok(set),
            (Err(_), Some(set)) => {
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(CachedSet {
                    fetched_at: now,
                    set: set.clone(),
                });
                Ok(set)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The key set read again when a token names `kid` and the cached set lacks it, at most
    /// every [`REFETCH_SECS`]; the cached set otherwise.
    pub async fn key_set_with(&self, env: &Env, kid: &str) -> Result<Arc<KeySet>, KmsError> {
        let set = self.key_set(env).await?;
        if set.by_kid(kid).is_some() {
            return Ok(set);
        }
        let now = env.clock.now();
        {
            let mut last = self.last_refetch.lock().unwrap_or_else(|e| e.into_inner());
            if now - *last < REFETCH_SECS && now >= *last {
                return Ok(set);
            }
            *last = now;
        }
        self.fetch_key_set(env).await
    }

    /// The shared cache's key: the signing key's identity (address, mount, name), hashed.
    fn shared_key(&self) -> String {
        let id = format!("{}\0{}\0{}", self.address, self.mount, self.signing_key);
        format!("kms-keys:{}", crate::crypto::token_hash(&id))
    }

    /// The key set in the shared cache (KV) with when it was read from Vault.
    async fn shared_key_set(&self, env: &Env) -> Option<(i64, KeySet)> {
        let raw = env
            .kv
            .get(&self.shared_key(), env.clock.now())
            .await
            .ok()??;
        let v: Json = serde_json::from_slice(&raw).ok()?;
        let set = parse_key_set(&v["data"]).ok()?;
        Some((v["fetched_at"].as_i64()?, set))
    }

    async fn fetch_key_set(&self, env: &Env) -> Result<Arc<KeySet>, KmsError> {
        let path = format!("keys/{}", self.signing_key);
        let data = self.call(env, "read key", &path, None).await?;
        let set = parse_key_set(&data).map_err(|detail| {
            tracing::warn!(key = %self.signing_key, "vault transit: {detail}");
            KmsError::Unavailable(format!("vault transit signing key: {detail}"))
        })?;
        let set = Arc::new(set);
        let now = env.clock.now();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(CachedSet {
            fetched_at: now,
            set: set.clone(),
        });
        // Public keys only: `keys` holds PEM public keys and creation times.
        let shared = json!({ "fetched_at": now, "data": {
            "type": data["type"],
            "min_decryption_version": data["min_decryption_version"],
            "keys": data["keys"],
        }});
        let kept = now + SHARED_KEYS_SECS;
        if let Err(e) = env
            .kv
            .put(&self.shared_key(), shared.to_string().into_bytes(), kept)
            .await
        {
            tracing::warn!(error = %e, "vault transit: the key set could not be cached");
        }
        Ok(set)
    }

    /// Signs `message` with `version` of the signing key (ES256: SHA-256, P-256, JWS form).
    pub async fn sign(
        &self,
        env: &Env,
        version: u64,
        message: &[u8],
    ) -> Result<[u8; 64], KmsError> {
        let path = format!("sign/{}/sha2-256", self.signing_key);
        let body = json!({
            "input": base64::engine::general_purpose::STANDARD.encode(message),
            "key_version": version,
            "marshaling_algorithm": "jws",
        });
        let data = self.call(env, "sign", &path, Some(body)).await?;
        let signature = data["signature"].as_str().unwrap_or("");
        parse_signature(signature, version).map_err(|detail| {
            tracing::warn!("vault transit sign: {detail}");
            KmsError::Unavailable(format!("vault transit sign: {detail}"))
        })
    }

    /// A fresh 256-bit data key: its plaintext and its form wrapped by the sealing key.
    pub async fn generate_data_key(&self, env: &Env) -> Result<([u8; 32], String), KmsError> {
        let path = format!("datakey/plaintext/{}", self.sealing_key);
        let data = self
            .call(env, "datakey", &path, Some(json!({ "bits": 256 })))
            .await?;
        let plain = decode_key(&data["plaintext"]);
        let wrapped = data["ciphertext"]
            .as_str()
            .filter(|c| c.starts_with("vault:v"));
        match (plain, wrapped) {
            (Some(p), Some(w)) => Ok((p, w.to_owned())),
            _ => {
                tracing::warn!(
                    "vault transit datakey: the answer lacks a 256-bit plaintext or a ciphertext"
                );
                Err(KmsError::Unavailable(
                    "vault transit datakey: malformed answer".into(),
                ))
            }
        }
    }

    /// Unwraps a data key made by [`Self::generate_data_key`].
    pub async fn decrypt_data_key(&self, env: &Env, wrapped: &str) -> Result<[u8; 32], KmsError> {
        let path = format!("decrypt/{}", self.sealing_key);
        let data = self
            .call(
                env,
                "decrypt",
                &path,
                Some(json!({ "ciphertext": wrapped })),
            )
            .await?;
        decode_key(&data["plaintext"]).ok_or_else(|| {
            tracing::warn!("vault transit decrypt: the answer is not a 256-bit key");
            KmsError::Unavailable("vault transit decrypt: malformed answer".into())
        })
    }
}

fn decode_key(v: &Json) -> Option<[u8; 32]> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()?;
    raw.try_into().ok()
}

/// An [`Es256Signer`] for one version of the Vault signing key. Each signature is checked
/// against the version's public key before it is used, so a misbehaving Vault cannot make the
/// server issue a token its JWKS does not verify.
pub struct VaultSigner {
    /// The client.
    pub vault: Arc<VaultTransit>,
    /// The host seams (fetcher, crypto provider).
    pub env: Env,
    /// The key version that signs.
    pub version: u64,
    /// Its public key.
    pub sec1: Vec<u8>,
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Es256Signer for VaultSigner {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], CryptoError> {
        let sig = self
            .vault
            .sign(&self.env, self.version, message)
            .await
            .map_err(|e| CryptoError(e.to_string()))?;
        if !self
            .env
            .crypto
            .es256_verify(&self.sec1, message, &sig)
            .await
        {
            tracing::warn!(
                version = self.version,
                "vault transit sign: the signature does not verify with the key's public key"
            );
            return Err(CryptoError(
                "vault transit sign: the signature does not verify".into(),
            ));
        }
        Ok(sig)
    }
}

#[cfg(test)]
#[path = "vault_transit_tests.rs"]
mod tests;
