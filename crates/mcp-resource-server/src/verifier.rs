//! The verifier: the sans-IO decisions of [`crate::decision`] driven with the issuer's keys,
//! found through RFC 8414 §3 metadata discovery (`jwks_uri`, with the `issuer` member checked
//! against the configured issuer, §3.3) and fetched through [`HttpFetch`], which each
//! integration supplies (reqwest natively, the runtime's `fetch` on the edge).

use std::sync::{Arc, Mutex};

use http::HeaderMap;

use crate::claims::VerifiedToken;
use crate::config::Config;
use crate::decision::{self, Decision, Denial, RequestInfo};
use crate::dpop::{MemoryReplayCache, ReplayCache};
use crate::jwks::{Key, KeyCache, KeySet, Lookup};
use crate::metadata;
use crate::token;

/// A failed fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches a JSON document with `GET` (the issuer's metadata, its JWKS). Implementations
/// should time out, cap the response size, and fail on non-2xx statuses.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait HttpFetch: Send + Sync {
    /// The body of a successful `GET url`.
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;

    /// `POST url` with a form body and an `Authorization` header, returning the status and
    /// body whatever the status (the token exchange of [`crate::vend`] reads error bodies).
    /// The default refuses: only integrations that vend need it.
    async fn post_form(
        &self,
        url: &str,
        authorization: &str,
        body: String,
    ) -> Result<(u16, Vec<u8>), FetchError> {
        let _ = (authorization, body);
        Err(FetchError(format!(
            "POST {url}: this fetcher only supports GET"
        )))
    }
}

/// The current time.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// A clock stopped at one instant (tests, benchmarks).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

/// The RFC 8414 §3.1 metadata URL of `issuer` (path-inserted for an issuer with a path).
pub fn issuer_metadata_url(issuer: &str) -> Result<String, FetchError> {
    let u = url::Url::parse(issuer).map_err(|_| FetchError(format!("bad issuer URL {issuer}")))?;
    let path = u.path().trim_end_matches('/');
    Ok(format!(
        "{}/.well-known/oauth-authorization-server{path}",
        u.origin().ascii_serialization()
    ))
}

/// Verifies requests for one resource.
pub struct Verifier {
    config: Arc<Config>,
    fetch: Arc<dyn HttpFetch>,
    clock: Arc<dyn Clock>,
    replay: Arc<dyn ReplayCache>,
    keys: Mutex<KeyCache>,
    metadata: Mutex<Option<serde_json::Value>>,
    /// Held while fetching, so concurrent requests wait for one fetch instead of each
    /// starting their own (or finding the floor closed and failing).
    fetching: futures_util::lock::Mutex<()>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.config.issuer)
            .field("resource", &self.config.resource_str)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with an in-memory DPoP replay cache.
    pub fn new(config: Config, fetch: Arc<dyn HttpFetch>, clock: Arc<dyn Clock>) -> Self {
        let keys = KeyCache::new(config.jwks_refetch_floor, config.jwks_max_age);
        Self {
            config: Arc::new(config),
            fetch,
            clock,
            replay: Arc::new(MemoryReplayCache::default()),
            keys: Mutex::new(keys),
            metadata: Mutex::new(None),
            fetching: futures_util::lock::Mutex::new(()),
        }
    }

    /// Uses `replay` for DPoP `jti`s (share one across instances of the resource server).
    pub fn with_replay_cache(mut self, replay: Arc<dyn ReplayCache>) -> Self {
        self.replay = replay;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current time from the verifier's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The protected resource metadata path on this server's origin.
    pub fn metadata_path(&self) -> String {
        metadata::well_known_path(&self.config.resource)
    }

    /// The protected resource metadata document (RFC 9728).
    pub fn metadata_document(&self) -> serde_json::Value {
        metadata::document(&self.config)
    }

    /// The issuer's RFC 8414 metadata, fetched once: the `issuer` member must be the
    /// configured issuer (§3.3).
    async fn issuer_metadata(&self) -> Result<serde_json::Value, FetchError> {
        if let Some(doc) = self
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(doc);
        }
        let url = issuer_metadata_url(&self.config.issuer)?;
        let body = self.fetch.get(&url).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| FetchError(format!("{url} is not JSON")))?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(self.config.issuer.as_str()) {
            return Err(FetchError(format!("{url} names another issuer")));
        }
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some(doc.clone());
        Ok(doc)
    }

    /// An endpoint URL from the issuer's metadata (`jwks_uri`, `token_endpoint`).
    pub async fn issuer_endpoint(&self, name: &str) -> Result<String, FetchError> {
        let doc = self.issuer_metadata().await?;
        doc.get(name)
            .and_then(|v| v.as_str())
            .filter(|u| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
            .map(str::to_owned)
            .ok_or_else(|| FetchError(format!("the issuer's metadata has no usable {name}")))
    }

    async fn discover_jwks_uri(&self) -> Result<String, FetchError> {
        if let Some(u) = self.config.jwks_uri.clone() {
            return Ok(u);
        }
        self.issuer_endpoint("jwks_uri").await
    }

    /// The fetcher (for helpers such as [`crate::vend`]).
    pub fn fetcher(&self) -> &Arc<dyn HttpFetch> {
        &self.fetch
    }

    async fn refresh_keys(&self, now: i64) -> Result<(), FetchError> {
        let now_u = u64::try_from(now).unwrap_or(0);
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .attempted(now_u);
        let uri = self.discover_jwks_uri().await?;
        let body = self.fetch.get(&uri).await?;
        let set = KeySet::from_json(&body).map_err(|e| FetchError(format!("{uri}: {e}")))?;
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .store(set, now_u);
        Ok(())
    }

    fn lookup(&self, kid: Option<&str>, alg: crate::Alg, now: u64) -> Lookup {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(kid, alg, now)
    }

    /// The issuer's key for `kid`/`alg`, fetching the JWKS (once for all concurrent requests)
    /// when the cache says so. `Err` when there are no keys at all.
    async fn key(
        &self,
        kid: Option<&str>,
        alg: crate::Alg,
        now: i64,
    ) -> Result<Option<Arc<Key>>, FetchError> {
        let now_u = u64::try_from(now).unwrap_or(0);
        if let Lookup::Found(k) = self.lookup(kid, alg, now_u) {
            return Ok(Some(k));
        }
        let _one_fetch_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let mut result = Ok(());
        if let Lookup::Fetch = self.lookup(kid, alg, now_u) {
            result = self.refresh_keys(now).await;
        }
        match self.lookup(kid, alg, now_u) {
            Lookup::Found(k) => Ok(Some(k)),
            _ if !self
                .keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .has_keys() =>
            {
                Err(result
                    .err()
                    .unwrap_or_else(|| FetchError("no keys fetched yet".into())))
            }
            _ => Ok(None),
        }
    }

    /// Decides a request: `method`, the absolute `url` it was sent to, and its headers.
    pub async fn authorize(&self, method: &str, url: &str, headers: &HeaderMap) -> Decision {
        let config = &self.config;
        let presented = match decision::presented(config, headers) {
            Ok(Some(p)) => p,
            Ok(None) => return Decision::Deny(decision::unauthenticated(config)),
            Err(d) => return Decision::Deny(d),
        };
        let unverified = match token::parse(presented.token(), &config.algorithms) {
            Ok(u) => u,
            Err(e) => {
                return Decision::Deny(decision::token_refused(config, presented.scheme(), &e))
            }
        };
        let now = self.clock.now();
        let key = match self
            .key(unverified.kid.as_deref(), unverified.alg, now)
            .await
        {
            Ok(Some(k)) => k,
            Ok(None) => {
                return Decision::Deny(decision::token_refused(
                    config,
                    presented.scheme(),
                    &token::TokenError::UnknownKey,
                ))
            }
            Err(_) => {
                return Decision::Deny(decision::unavailable(
                    "the authorization server's keys cannot be fetched",
                ))
            }
        };
        let request = RequestInfo { method, url, now };
        decision::decide(
            config,
            presented,
            &unverified,
            &key,
            request,
            self.replay.as_ref(),
        )
    }

    /// Applies the tool policy to a JSON-RPC body for a verified token.
    pub fn check_tools(&self, token: &VerifiedToken, body: &[u8]) -> Option<Denial> {
        decision::check_tools(&self.config, token, body)
    }
}
