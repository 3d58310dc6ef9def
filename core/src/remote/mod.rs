//! Remote documents: the one place where the core fetches, validates and caches a document
//! from another server (client ID metadata documents, client JWK Sets at `jwks_uri`,
//! enterprise IdP discovery documents and JWK Sets). DESIGN.md: "Outbound calls … go through
//! one SSRF-checked fetch-validate-cache module with one loopback rule."
//!
//! SECURITY-CHECKLIST, "Outbound fetches":
//! - S1: [`check_url`] before every fetch, with the single loopback rule [`allow_loopback`]
//!   (`cimd.allow_loopback` on a loopback issuer, nothing else).
//! - S2: the document URL's shape and the document's own `client_id` are the CIMD validator's
//!   ([`crate::cimd::document_url`], [`crate::cimd::validate_document`]).
//! - S3: [`crate::ssrf::check_url`] here on the URL; the [`Fetcher`] repeats the address
//!   check after DNS resolution.
//! - S4: the fetcher does not follow redirects, and any status but 200 (a 3xx included) is
//!   refused here before the validator runs.
//! - S5: a body over the document's limit is refused here (the fetcher also stops at the
//!   limit and on an early `Content-Length`); status, content type and JSON by the validator
//!   through [`FetchResponse::json_document`]; timeouts by the fetcher.
//! - S6: no secrets or private keys: the validators' ([`crate::registration::check_public_jwks`]).
//! - S7: failures are reported as such; successes are cached for the response's
//!   `Cache-Control: max-age` within a floor and ceiling ([`CachePolicy::ttl`]), failures for
//!   `failure_secs`, in the KV cache under a hashed key ([`cache_key`]).
//! - S8: the fetcher is given only the URL and a size limit: no cookies, no inbound headers.
//!
//! E1 (docs/security.md): why a destination was refused or a fetch failed (a name resolving
//! to a private address, a timeout, a transport error) is logged, never told: the caller gets
//! the fixed phrase [`Kind::unreachable`]. Reasons about the document the server did answer
//! with (its status, size, content) are told, as the validators word them.
//!
//! A document whose cached value is "stale" for the request at hand (a JWK Set without the
//! assertion's `kid`) is refetched at most once per interval, and a failed refetch keeps the
//! value we had ([`Remote::get_refreshing`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{CimdConfig, Config};
use crate::context::Context;
use crate::runtime::{FetchResponse, Fetcher};
use crate::store::KvStore;
use crate::text::truncate;

/// The loopback rule (S1), the only one: loopback destinations (and plain `http` to them)
/// only when `cimd.allow_loopback` is set and the issuer itself is loopback.
pub fn allow_loopback(cfg: &Config) -> bool {
    cfg.cimd.allow_loopback && cfg.issuer_is_loopback()
}

/// Whether `url` may be fetched at all under `cfg` (S1, S3 before DNS), with the reason when
/// not. For operator-facing checks (an IdP's registered `jwks_uri`); fetches through
/// [`Remote`] apply it themselves and hide the reason.
pub fn check_url(cfg: &Config, url: &Url) -> Result<(), crate::ssrf::SsrfRefusal> {
    crate::ssrf::check_url(url, allow_loopback(cfg))
}

/// What is fetched: names the document in logs and messages and separates cache keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A client ID metadata document.
    ClientMetadata,
    /// A client's JWK Set at its `jwks_uri`.
    ClientJwks,
    /// An enterprise IdP's OpenID Connect discovery document.
    IdpConfiguration,
    /// An enterprise IdP's JWK Set.
    IdpJwks,
    /// A workload issuer's OpenID Connect discovery document.
    WorkloadConfiguration,
    /// A workload issuer's JWK Set.
    WorkloadJwks,
    /// An OIDC connector's discovery document.
    ConnectorConfiguration,
    /// An OIDC connector's JWK Set.
    ConnectorJwks,
}

impl Kind {
    /// The document's name in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::ClientMetadata => "document",
            Kind::ClientJwks | Kind::IdpJwks | Kind::WorkloadJwks | Kind::ConnectorJwks => {
                "JWK Set"
            }
            Kind::IdpConfiguration | Kind::WorkloadConfiguration | Kind::ConnectorConfiguration => {
                "configuration document"
            }
        }
    }

    fn cache_prefix(self) -> &'static str {
        match self {
            Kind::ClientMetadata => "cimd",
            Kind::ClientJwks => "client-jwks",
            Kind::IdpConfiguration => "idp-config",
            Kind::IdpJwks => "idp-jwks",
            Kind::WorkloadConfiguration => "workload-config",
            Kind::WorkloadJwks => "workload-jwks",
            Kind::ConnectorConfiguration => "connector-config",
            Kind::ConnectorJwks => "connector-jwks",
        }
    }

    /// The fixed public phrase for a refused destination or a failed fetch (E1).
    pub fn unreachable(self) -> String {
        format!(
            "the {} could not be retrieved (the server's log has the reason)",
            self.noun()
        )
    }
}

/// Why a remote document was not obtained. `Display` is what the caller may be told: the
/// fixed phrase [`Kind::unreachable`] for a refused destination or a failed fetch (E1: the
/// detail is kept here and logged, never shown), or the reason the answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError<E> {
    /// The destination was refused or the fetch failed (E1); `detail` is for the log.
    #[error("{}", .kind.unreachable())]
    Unreachable { kind: Kind, detail: String },
    /// The server answered with a status other than 200 (S4).
    #[error("the server answered HTTP {0}")]
    Status(u16),
    /// The body exceeded the document's limit (S5).
    #[error("the {} exceeds {max_bytes} bytes", .kind.noun())]
    TooLarge { kind: Kind, max_bytes: usize },
    /// The validator refused the document.
    #[error("{0}")]
    Refused(E),
    /// A failure read back from the cache: what the caller was told when it was fetched.
    #[error("{0}")]
    Cached(String),
}

impl<E> RemoteError<E> {
    /// A short, fixed name of the failure (an audit reason and metric label).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Status(_) => "status",
            Self::TooLarge { .. } => "too_large",
            Self::Refused(_) => "invalid_document",
            Self::Cached(_) => "cached_failure",
        }
    }
}

/// Where a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache (a value, or a failure cached briefly).
    Cache,
    /// A fetch made now (successful or not).
    Network,
}

/// The cache key of a document: its kind and a hash of `id` (the URL, or what the caller
/// keys the document by). Hashed, because cache backends bound key length (Workers KV: 512
/// bytes) and URLs may be up to 2048.
pub fn cache_key(kind: Kind, id: &str) -> String {
    format!("{}:{}", kind.cache_prefix(), crate::crypto::token_hash(id))
}

/// How long results are cached (S7), seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Floor of a success's lifetime (also when the response gives none).
    pub min_secs: i64,
    /// Ceiling of a success's lifetime.
    pub max_secs: i64,
    /// Lifetime of a failure.
    pub failure_secs: i64,
}

impl CachePolicy {
    /// The `cimd` settings, shared by every kind of remote document.
    pub fn from_cimd(cfg: &CimdConfig) -> Self {
        Self {
            min_secs: cfg.min_cache_secs,
            max_secs: cfg.max_cache_secs,
            failure_secs: cfg.failure_cache_secs,
        }
    }

    /// Lifetime from `Cache-Control: max-age`, clamped to `[min_secs, max_secs]`; `no-store`,
    /// `no-cache` or no `max-age` give the floor.
    pub fn ttl(&self, cache_control: Option<&str>) -> i64 {
        let min = self.min_secs.max(0);
        let max = self.max_secs.max(min);
        let mut ttl = None;
        for directive in cache_control.unwrap_or("").split(',') {
            let d = directive.trim().to_ascii_lowercase();
            if d == "no-store" || d == "no-cache" {
                return min;
            }
            if let Some(v) = d.strip_prefix("max-age=") {
                let v = v.trim_matches('"');
                if ttl.is_none() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    ttl = Some(v.parse::<i64>().unwrap_or(i64::MAX));
                }
            }
        }
        ttl.unwrap_or(min).clamp(min, max)
    }
}

/// One document to fetch.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    /// What it is.
    pub kind: Kind,
    /// Where it is.
    pub url: &'a Url,
    /// What the cache entry is keyed by (see [`cache_key`]); usually the URL.
    pub cache_id: &'a str,
    /// Largest body accepted, bytes.
    pub max_bytes: usize,
}

/// The seams and settings of a fetch: the cache, the fetcher, the time, the loopback rule's
/// answer and the cache lifetimes.
#[derive(Clone, Copy)]
pub struct Remote<'a> {
    /// The cache.
    pub kv: &'a dyn KvStore,
    /// Outbound HTTP.
    pub fetcher: &'a dyn Fetcher,
    /// Seconds since the epoch.
    pub now: i64,
    /// [`allow_loopback`] of the configuration.
    pub allow_loopback: bool,
    /// Cache lifetimes.
    pub cache: CachePolicy,
}

/// What the cache holds for a document.
#[derive(Debug, Serialize, Deserialize)]
struct Entry<T> {
    /// The URL it came from: an entry for another URL under the same key is a miss.
    url: String,
    fetched_at: i64,
    result: Result<T, String>,
}

impl<'a> Remote<'a> {
    /// The server's seams, clock, loopback rule and `cimd` cache settings.
    pub fn of(ctx: &'a Context) -> Self {
        let env = ctx.env();
        let cfg = ctx.config();
        Self {
            kv: env.kv.as_ref(),
            fetcher: env.fetcher.as_ref(),
            now: ctx.now(),
            allow_loopback: allow_loopback(cfg),
            cache: CachePolicy::from_cimd(&cfg.cimd),
        }
    }

    /// The validated document at `doc`, from the cache or fetched, checked and validated by
    /// `validate` (from the response to the value or the reason it is refused). The error
    /// displays what the caller may be told: [`Kind::unreachable`] or the validator's reason.
    pub async fn get<T, E, V>(&self, doc: &Doc<'_>, validate: V) -> Result<T, RemoteError<E>>
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        V: Fn(&FetchResponse) -> Result<T, E>,
    {
        self.get_refreshing(doc, validate, |_: &T| false, 0).await
    }

    /// [`Remote::get`], also saying whether the answer came from the cache or the network
    /// (the CIMD fetch metric counts the latter).
    pub async fn get_from<T, E, V>(
        &self,
        doc: &Doc<'_>,
        validate: V,
    ) -> (Source, Result<T, RemoteError<E>>)
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        V: Fn(&FetchResponse) -> Result<T, E>,
    {
        self.get_refreshing_from(doc, validate, |_: &T| false, 0)
            .await
    }

    /// [`Remote::get`], except that a cached value for which `stale` holds is refetched,
    /// unless it was fetched less than `min_interval_secs` ago; if that refetch fails, the
    /// cached value is kept (for the cache floor, so the interval still holds) and returned.
    pub async fn get_refreshing<T, E, V, S>(
        &self,
        doc: &Doc<'_>,
        validate: V,
        stale: S,
        min_interval_secs: i64,
    ) -> Result<T, RemoteError<E>>
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        V: Fn(&FetchResponse) -> Result<T, E>,
        S: Fn(&T) -> bool,
    {
        self.get_refreshing_from(doc, validate, stale, min_interval_secs)
            .await
            .1
    }

    async fn get_refreshing_from<T, E, V, S>(
        &self,
        doc: &Doc<'_>,
        validate: V,
        stale: S,
        min_interval_secs: i64,
    ) -> (Source, Result<T, RemoteError<E>>)
    where
        T: Serialize + DeserializeOwned,
        E: std::fmt::Display,
        V: Fn(&FetchResponse) -> Result<T, E>,
        S: Fn(&T) -> bool,
    {
        let key = cache_key(doc.kind, doc.cache_id);
        let previous = match self.read::<T>(doc, &key).await {
            Some(Entry {
                result: Err(why), ..
            }) => return (Source::Cache, Err(RemoteError::Cached(why))),
            Some(Entry {
                result: Ok(value),
                fetched_at,
                ..
            }) => {
                if !stale(&value) || self.now - fetched_at < min_interval_secs {
                    return (Source::Cache, Ok(value));
                }
                Some(value)
            }
            None => None,
        };
        let (result, expires_at) = match (self.fetch(doc, &validate).await, previous) {
            (Err(why), Some(value)) => {
                tracing::info!(kind = doc.kind.noun(), %why, "refetch failed; the cached value is kept");
                (Ok(value), self.now + self.cache.min_secs)
            }
            (Ok((value, ttl)), _) => (Ok(value), self.now + ttl),
            (Err(why), None) => (Err(why), self.now + self.cache.failure_secs),
        };
        // The cache holds what was told, never the logged detail.
        let entry = Entry {
            url: doc.url.as_str().to_owned(),
            fetched_at: self.now,
            result: result.as_ref().map_err(ToString::to_string),
        };
        self.write(&key, &entry, expires_at).await;
        (Source::Network, result)
    }

    async fn read<T: DeserializeOwned>(&self, doc: &Doc<'_>, key: &str) -> Option<Entry<T>> {
        match self.kv.get(key, self.now).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Entry<T>>(&bytes) {
                Ok(entry) if entry.url == doc.url.as_str() => Some(entry),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(kind = doc.kind.noun(), error = %e, "unreadable remote document cache entry");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(kind = doc.kind.noun(), error = %e, "remote document cache unavailable");
                None
            }
        }
    }

    async fn write<T: Serialize>(&self, key: &str, entry: &Entry<T>, expires_at: i64) {
        if expires_at <= self.now {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(entry) {
            if let Err(e) = self.kv.put(key, bytes, expires_at).await {
                tracing::warn!(error = %e, "remote document cache write failed");
            }
        }
    }

    /// Fetches and validates `doc` (no cache); returns the value and its cache lifetime.
    async fn fetch<T, E, V>(&self, doc: &Doc<'_>, validate: &V) -> Result<(T, i64), RemoteError<E>>
    where
        E: std::fmt::Display,
        V: Fn(&FetchResponse) -> Result<T, E>,
    {
        let url = truncate(doc.url.as_str(), 200);
        // E1: the detail is logged, the caller gets the fixed phrase.
        let unreachable = |detail: String| {
            tracing::warn!(kind = doc.kind.noun(), %url, %detail, "remote document not retrieved");
            RemoteError::Unreachable {
                kind: doc.kind,
                detail,
            }
        };
        crate::ssrf::check_url(doc.url, self.allow_loopback)
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = self
            .fetcher
            .get(doc.url, doc.max_bytes)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let refused = |why: RemoteError<E>| {
            tracing::info!(kind = doc.kind.noun(), %url, %why, "remote document refused");
            why
        };
        // S4, S5: whatever the validator does, no redirect, error page or oversized body.
        if resp.status != 200 {
            return Err(refused(RemoteError::Status(resp.status)));
        }
        if resp.body.len() > doc.max_bytes {
            return Err(refused(RemoteError::TooLarge {
                kind: doc.kind,
                max_bytes: doc.max_bytes,
            }));
        }
        let value = validate(&resp).map_err(|e| refused(RemoteError::Refused(e)))?;
        Ok((value, self.cache.ttl(resp.cache_control.as_deref())))
    }
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;
