//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document §3–§4, the
//! default registration path of the MCP authorization spec): a URL-shaped `client_id` names
//! a JSON document of client metadata, fetched through the SSRF-safe fetcher and cached.
//!
//! SECURITY-CHECKLIST: S1 (https only, loopback http only when allowed), S2 (exact URL
//! shape; the document's `client_id` equals the URL), S3 (refused destinations, through
//! [`crate::ssrf`]), S5 (status, content type, size, JSON), S6 (no secrets or private keys),
//! S7 (failures reported as such; cache lifetimes within a floor and ceiling; failures
//! cached briefly). The decisions are pure functions ([`document_url`],
//! [`validate_document`], [`cache_ttl`]); [`fetch_with`] adds the cache and the fetch, both
//! from [`crate::remote`] (the SSRF check, its loopback rule, E1 and the cache).

use serde_json::Value;
use url::Url;

use crate::clients::{Client, ClientKind, ClientMetadata};
use crate::config::CimdConfig;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::remote::{CachePolicy, Doc, Kind, Remote, Source};
use crate::runtime::{FetchResponse, Fetcher};
use crate::store::KvStore;
use crate::text::truncate;

/// Longest metadata document URL.
pub const MAX_ID_LEN: usize = 2048;

/// Whether `client_id` is a well-formed metadata document URL (S2): see [`document_url`].
/// Plain `http` on a loopback host passes this shape check; whether it may be fetched is
/// decided by configuration in [`fetch_client`].
pub fn is_metadata_document_id(client_id: &str) -> bool {
    document_url(client_id).is_ok()
}

/// Why a `client_id` is not a metadata document URL (S2). `Display` is the reason told in
/// the `invalid_client` description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentUrlError {
    #[error("client_id URL is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("client_id URL must use https")]
    NotHttps,
    #[error("client_id URL must not contain whitespace or backslashes")]
    ForbiddenCharacter,
    #[error("client_id URL must not contain a fragment")]
    Fragment,
    #[error("client_id URL must not contain a query")]
    Query,
    #[error("client_id is not a valid URL ({0})")]
    Invalid(url::ParseError),
    #[error("client_id URL must not contain user information")]
    UserInfo,
    #[error("client_id URL must not contain '.' or '..' path segments")]
    DotSegment,
    #[error("client_id URL is not in canonical form")]
    NotCanonical,
    #[error("client_id URL must have a path")]
    NoPath,
}

/// Parses a metadata document URL (S2): `https` (or `http` on `127.0.0.1`, `[::1]`,
/// `localhost`), in canonical form, with a path other than `/`, without fragment, userinfo,
/// query, dot segments, whitespace or backslashes.
pub fn document_url(client_id: &str) -> std::result::Result<Url, DocumentUrlError> {
    if client_id.len() > MAX_ID_LEN {
        return Err(DocumentUrlError::TooLong);
    }
    if !client_id.starts_with("https://") && !client_id.starts_with("http://") {
        return Err(DocumentUrlError::NotHttps);
    }
    if client_id
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(DocumentUrlError::ForbiddenCharacter);
    }
    if client_id.contains('#') {
        return Err(DocumentUrlError::Fragment);
    }
    if client_id.contains('?') {
        return Err(DocumentUrlError::Query);
    }
    let url = Url::parse(client_id).map_err(DocumentUrlError::Invalid)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DocumentUrlError::UserInfo);
    }
    let raw_path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    if raw_path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    }) {
        return Err(DocumentUrlError::DotSegment);
    }
    if url.as_str() != client_id {
        return Err(DocumentUrlError::NotCanonical);
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(DocumentUrlError::NoPath);
    }
    let loopback = url
        .host_str()
        .is_some_and(|h| crate::redirect::LOOPBACK_HOSTS.contains(&h));
    if url.scheme() == "http" && !loopback {
        return Err(DocumentUrlError::NotHttps);
    }
    Ok(url)
}

/// Fetches (or reads from cache) and validates the metadata document of `client_id`,
/// through [`crate::remote`] and its loopback rule ([`crate::remote::allow_loopback`]).
pub async fn fetch_client(ctx: &Context, client_id: &str) -> Result<Client> {
    let cfg = ctx.config();
    let env = ctx.env();
    let (source, result) = fetch_from(
        env.kv.as_ref(),
        env.fetcher.as_ref(),
        &cfg.cimd,
        crate::remote::allow_loopback(cfg),
        ctx.now(),
        client_id,
    )
    .await?;
    if source == Source::Network {
        // One row per fetch (cache misses only; failures are cached too): the CIMD fetch
        // metric and the operator's view of which documents were retrieved.
        crate::audit::record(
            env,
            crate::audit::Event {
                action: "cimd.fetch",
                success: result.is_ok(),
                client_id: Some(truncate(client_id, 256)),
                reason: result.as_ref().err().map(|e| e.reason()),
                ..Default::default()
            },
        )
        .await;
    }
    let client = result.map_err(fetch_failed)?;
    for uri in &client.metadata.redirect_uris {
        crate::redirect::check_private_use_scheme(uri, &cfg.registration.extra_redirect_schemes)
            .map_err(|e| Error::invalid_client(format!("client metadata document refused: {e}")))?;
    }
    Ok(client)
}

/// The cache key of a document URL (see [`crate::remote::cache_key`]).
pub fn cache_key(client_id: &str) -> String {
    crate::remote::cache_key(Kind::ClientMetadata, client_id)
}

fn fetch_failed(why: impl std::fmt::Display) -> Error {
    Error::invalid_client(format!(
        "client metadata document could not be fetched: {why}"
    ))
}

fn client_of(client_id: &str, metadata: ClientMetadata) -> Client {
    Client {
        client_id: client_id.to_owned(),
        secret_hash: None,
        metadata,
        kind: ClientKind::MetadataDocument,
        last_used_at: None,
    }
}

/// [`fetch_client`] over explicit seams: the cache, the fetcher, the settings and the time.
/// Failures are `invalid_client` saying "client metadata document could not be fetched:
/// <why>" (S7), never "unknown client", and are cached for `failure_cache_secs`; why a
/// destination was refused or a fetch failed is logged, not told (E1, [`crate::remote`]).
pub async fn fetch_with(
    kv: &dyn KvStore,
    fetcher: &dyn Fetcher,
    cfg: &CimdConfig,
    allow_loopback: bool,
    now: i64,
    client_id: &str,
) -> Result<Client> {
    fetch_from(kv, fetcher, cfg, allow_loopback, now, client_id)
        .await?
        .1
        .map_err(fetch_failed)
}

/// A metadata document refused or not retrieved.
type FetchFailure = crate::remote::RemoteError<MetadataDocumentError>;

/// [`fetch_with`], also saying whether the document was fetched now or read from the cache,
/// and with the failure unmapped. A malformed `client_id` never reaches the cache or the
/// network: it is refused as the outer `Err`.
async fn fetch_from(
    kv: &dyn KvStore,
    fetcher: &dyn Fetcher,
    cfg: &CimdConfig,
    allow_loopback: bool,
    now: i64,
    client_id: &str,
) -> Result<(Source, std::result::Result<Client, FetchFailure>)> {
    let url = document_url(client_id).map_err(|why| {
        Error::invalid_client(format!(
            "client_id is not a valid client metadata document URL: {why}"
        ))
    })?;
    let remote = Remote {
        kv,
        fetcher,
        now,
        allow_loopback,
        cache: CachePolicy::from_cimd(cfg),
    };
    let doc = Doc {
        kind: Kind::ClientMetadata,
        url: &url,
        cache_id: client_id,
        max_bytes: cfg.max_bytes,
    };
    let (source, result) = remote
        .get_from(&doc, |resp| {
            validate_document(client_id, resp, cfg).map(|(client, _)| client.metadata)
        })
        .await;
    Ok((
        source,
        result.map(|metadata| client_of(client_id, metadata)),
    ))
}

/// Why a fetched metadata document is refused (S2, S5, S6). `Display` is the reason told
/// in the `invalid_client` description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataDocumentError {
    #[error(transparent)]
    Document(#[from] crate::runtime::JsonDocumentError),
    #[error("the document is not a JSON object")]
    NotObject,
    #[error("the document's client_id does not equal its URL")]
    ClientIdMismatch,
    #[error("the document has no client_id")]
    NoClientId,
    /// Carries the member name, already truncated for display.
    #[error("the document must not contain '{0}'")]
    SecretMember(String),
    #[error(transparent)]
    Jwks(#[from] crate::registration::JwksError),
    #[error(
        "token_endpoint_auth_method must be 'none' or 'private_key_jwt' (metadata \
         document clients hold no shared secret)"
    )]
    AuthMethod,
    /// The metadata is refused as a registration request would be; carries its description.
    #[error("{0}")]
    Metadata(String),
}

/// Validates a fetched document (S2, S5, S6) and returns the client and its cache lifetime.
/// The client is public (`none`) or authenticates with `private_key_jwt` (RFC 7523 §2.2)
/// using its `jwks_uri` or inline public `jwks`; it never holds a shared secret. Its grant
/// types default to `authorization_code`.
pub fn validate_document(
    client_id: &str,
    resp: &FetchResponse,
    cfg: &CimdConfig,
) -> std::result::Result<(Client, i64), MetadataDocumentError> {
    let doc = resp.json_document(cfg.max_bytes, "document")?;
    let Value::Object(obj) = &doc else {
        return Err(MetadataDocumentError::NotObject);
    };
    match obj.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(_)) => {
            return Err(MetadataDocumentError::ClientIdMismatch);
        }
        _ => return Err(MetadataDocumentError::NoClientId),
    }
    if let Some(k) = obj.keys().find(|k| k.starts_with("client_secret")) {
        return Err(MetadataDocumentError::SecretMember(
            truncate(k, 64).to_owned(),
        ));
    }
    if let Some(jwks) = obj.get("jwks") {
        crate::registration::check_public_jwks(jwks)?;
    }
    let method = match obj.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => "none",
        Some(Value::String(m)) if m == "none" || m == "private_key_jwt" => m.as_str(),
        Some(_) => return Err(MetadataDocumentError::AuthMethod),
    }
    .to_owned();
    let mut metadata = crate::registration::metadata_from_json(doc)
        .map_err(|e| MetadataDocumentError::Metadata(e.description))?;
    metadata.token_endpoint_auth_method = method;
    crate::registration::validate_metadata(&mut metadata)
        .map_err(|e| MetadataDocumentError::Metadata(e.description))?;
    let ttl = cache_ttl(resp.cache_control.as_deref(), cfg);
    Ok((client_of(client_id, metadata), ttl))
}

/// Cache lifetime from `Cache-Control: max-age`, clamped to `[min_cache_secs,
/// max_cache_secs]` (S7); `no-store`, `no-cache` or no `max-age` give the floor
/// ([`CachePolicy::ttl`]).
pub fn cache_ttl(cache_control: Option<&str>, cfg: &CimdConfig) -> i64 {
    CachePolicy::from_cimd(cfg).ttl(cache_control)
}

#[cfg(test)]
#[path = "cimd_tests.rs"]
mod tests;
