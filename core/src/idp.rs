//! Trusted enterprise IdPs, the issuers of ID-JAG assertions for the JWT bearer grant
//! (RFC 7523 §3 rule 9: the assertion is signed by its issuer;
//! draft-ietf-oauth-identity-assertion-authz-grant §4): where each IdP's keys come from and
//! how local subjects are derived from its `sub` values.
//!
//! Keys come from, in this order: the JWK Set stored inline with the IdP; its `jwks_uri`; or,
//! with neither, OpenID Connect Discovery 1.0 §4 (`<issuer>/.well-known/openid-configuration`,
//! whose `issuer` must equal the IdP's and whose `jwks_uri` is then used). Remote documents
//! are fetched, validated and cached through [`crate::remote`] (S1–S8: its SSRF check and
//! loopback rule, the response's `max-age` within the `cimd` floor and ceiling, failures for
//! `cimd.failure_cache_secs`, fetch failures logged and not told), keyed by the IdP's issuer
//! so that [`forget`] drops them. An unknown `kid` refetches the set once, at most every
//! [`UNKNOWN_KID_REFRESH_SECS`] per IdP, so an IdP's key rollover is picked up at once while
//! forged `kid`s cannot make us hammer the IdP; a failed refetch keeps the set we had.
//!
//! Only public signing keys of the types [`crate::crypto::jws`] verifies are used (P-256 for
//! ES256, RSA for RS256/PS256, Ed25519 for EdDSA; the key decides the algorithm); other keys
//! in a set are ignored.

use serde_json::Value;
use url::Url;

use crate::context::Context;
use crate::remote::{Doc, Kind, Remote};
use crate::runtime::FetchResponse;
use crate::store::repo::idps::{self, IdpRow};
use crate::store::StoreError;

/// Largest JWK Set or discovery document fetched, bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Shortest interval between two refetches of one IdP's keys caused by an unknown `kid`.
pub const UNKNOWN_KID_REFRESH_SECS: i64 = 10;
/// Longest issuer identifier, bytes.
pub const MAX_ISSUER_LEN: usize = 2048;

/// Why no key was found for an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The IdP's keys could not be obtained (fetch, discovery or document failure).
    Unavailable(KeysUnavailable),
    /// No usable key with that `kid` (or no `kid` and more than one key).
    UnknownKey,
    /// Storage failed.
    Store(StoreError),
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Why an IdP's registration is refused (issuer, inline JWK Set, `jwks_uri`). `Display` is
/// the reason told to the operator in the `invalid_request` description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpConfigError {
    #[error("issuer must be 1 to {MAX_ISSUER_LEN} bytes")]
    IssuerLength,
    #[error("issuer must not contain whitespace, control characters or '\\'")]
    IssuerCharacter,
    #[error("issuer is not an absolute URL ({0})")]
    IssuerNotAbsolute(url::ParseError),
    #[error("issuer must not have a query or fragment")]
    IssuerQueryOrFragment,
    #[error("issuer must not contain userinfo")]
    IssuerUserInfo,
    #[error("issuer must have a host")]
    IssuerNoHost,
    #[error("issuer must use https (plain http only on a loopback host)")]
    IssuerNotHttps,
    #[error("issuer is not in canonical form")]
    IssuerNotCanonical,
    #[error("jwks must be a JWK Set with a 'keys' array")]
    JwksNotASet,
    #[error("jwks may hold at most 16 keys")]
    JwksTooManyKeys,
    #[error("every key in jwks must be an object")]
    JwksKeyNotObject,
    /// Carries the member found.
    #[error("jwks must hold public keys only (a key has the private member '{0}')")]
    JwksPrivateMember(&'static str),
    #[error("jwks must hold at least one public signing key: EC P-256 (ES256), RSA of 2048 bits or more (RS256, PS256) or Ed25519 (EdDSA)")]
    JwksNoUsableKey,
    #[error("jwks_uri must be at most {MAX_ISSUER_LEN} bytes")]
    JwksUriLength,
    #[error("jwks_uri is not an absolute URL ({0})")]
    JwksUriNotAbsolute(url::ParseError),
    #[error("jwks_uri must use https")]
    JwksUriNotHttps,
    /// The outbound fetch policy refuses the `jwks_uri` (S1); told to the operator.
    #[error("jwks_uri: {0}")]
    JwksUriRefused(crate::ssrf::SsrfRefusal),
}

/// Checks an IdP issuer identifier: an `https` URL (plain `http` only on a loopback host)
/// with a host, without query, fragment, userinfo or whitespace, in canonical form.
pub fn validate_issuer(issuer: &str) -> Result<(), IdpConfigError> {
    if issuer.is_empty() || issuer.len() > MAX_ISSUER_LEN {
        return Err(IdpConfigError::IssuerLength);
    }
    if issuer
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(IdpConfigError::IssuerCharacter);
    }
    let url = Url::parse(issuer).map_err(IdpConfigError::IssuerNotAbsolute)?;
    if url.query().is_some() || url.fragment().is_some() || issuer.contains(['?', '#']) {
        return Err(IdpConfigError::IssuerQueryOrFragment);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(IdpConfigError::IssuerUserInfo);
    }
    if url.host().is_none() {
        return Err(IdpConfigError::IssuerNoHost);
    }
    match url.scheme() {
        "https" => {}
        "http" if crate::redirect::is_loopback_host(&url) => {}
        _ => return Err(IdpConfigError::IssuerNotHttps),
    }
    // The canonical form may only add the root path's slash.
    let canonical = url.as_str();
    if canonical != issuer && canonical != format!("{issuer}/") {
        return Err(IdpConfigError::IssuerNotCanonical);
    }
    Ok(())
}

/// Checks an inline JWK Set: a `keys` array of at most 16 public keys (no private or
/// symmetric members), at least one of them a P-256 key we can verify with.
pub fn validate_jwks(jwks: &Value) -> Result<(), IdpConfigError> {
    const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(IdpConfigError::JwksNotASet)?;
    if keys.len() > 16 {
        return Err(IdpConfigError::JwksTooManyKeys);
    }
    for key in keys {
        let obj = key.as_object().ok_or(IdpConfigError::JwksKeyNotObject)?;
        if let Some(m) = PRIVATE.iter().find(|m| obj.contains_key(**m)) {
            return Err(IdpConfigError::JwksPrivateMember(m));
        }
    }
    if !keys.iter().any(crate::crypto::jws::usable_public_key) {
        return Err(IdpConfigError::JwksNoUsableKey);
    }
    Ok(())
}

/// Checks a `jwks_uri` against the outbound fetch policy (S1, [`crate::remote::check_url`]).
/// For the operator registering the IdP, so the reason is told.
pub fn validate_jwks_uri(ctx: &Context, uri: &str) -> Result<Url, IdpConfigError> {
    let url = jwks_url(uri)?;
    crate::remote::check_url(ctx.config(), &url).map_err(IdpConfigError::JwksUriRefused)?;
    Ok(url)
}

/// The shape of a `jwks_uri`: an absolute `http(s)` URL of bounded length. Whether it may be
/// fetched is [`crate::remote`]'s decision.
fn jwks_url(uri: &str) -> Result<Url, IdpConfigError> {
    if uri.len() > MAX_ISSUER_LEN {
        return Err(IdpConfigError::JwksUriLength);
    }
    let url = Url::parse(uri).map_err(IdpConfigError::JwksUriNotAbsolute)?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(IdpConfigError::JwksUriNotHttps);
    }
    Ok(url)
}

/// The local subject for an IdP's `sub`: the explicit mapping when one exists, otherwise
/// [`automatic_subject`].
pub async fn local_subject(
    ctx: &Context,
    issuer: &str,
    external_subject: &str,
) -> Result<String, StoreError> {
    let db = ctx.env().sql.as_ref();
    Ok(idps::subject(db, issuer, external_subject)
        .await?
        .unwrap_or_else(|| automatic_subject(issuer, external_subject)))
}

/// The automatic subject: `idp:` followed by the first 22 characters (132 bits) of
/// base64url(SHA-256(issuer + " " + sub)). Stable for a given IdP and user, distinct across
/// IdPs (an issuer never contains a space, so the input is unambiguous), and never equal to
/// a local user id or a client id.
pub fn automatic_subject(issuer: &str, external_subject: &str) -> String {
    let digest = crate::crypto::sha256(format!("{issuer} {external_subject}"));
    let b64 = crate::crypto::b64(digest);
    format!("idp:{}", &b64[..22])
}

/// Forgets the cached documents of `issuer` (after its registration changed).
pub async fn forget(ctx: &Context, issuer: &str) {
    forget_kinds(ctx, issuer, [Kind::IdpJwks, Kind::IdpConfiguration]).await;
}

/// Forgets the cached documents of `issuer` of these kinds.
pub async fn forget_kinds(ctx: &Context, issuer: &str, kinds: [Kind; 2]) {
    for kind in kinds {
        let key = crate::remote::cache_key(kind, issuer);
        if let Err(e) = ctx.env().kv.delete(&key).await {
            tracing::warn!(error = %e, "IdP key cache entry could not be removed");
        }
    }
}

/// Where an issuer's signing keys come from, and the cache kinds its documents are kept
/// under (so that trusted IdPs and workload issuers with the same issuer never share them).
pub struct KeySource<'a> {
    /// The issuer identifier (the cache key, and the discovery base).
    pub issuer: &'a str,
    /// Its JWK Set inline (JSON text).
    pub jwks: Option<&'a str>,
    /// Where its JWK Set is published.
    pub jwks_uri: Option<&'a str>,
    /// The cache kind of its discovery document.
    pub configuration: Kind,
    /// The cache kind of its JWK Set.
    pub set: Kind,
}

/// The public JWK of `idp` for `kid` (or its only key when `kid` is absent).
pub async fn key_for(ctx: &Context, idp: &IdpRow, kid: Option<&str>) -> Result<Value, KeyError> {
    let source = KeySource {
        issuer: &idp.issuer,
        jwks: idp.jwks.as_deref(),
        jwks_uri: idp.jwks_uri.as_deref(),
        configuration: Kind::IdpConfiguration,
        set: Kind::IdpJwks,
    };
    source_key(ctx, &source, kid).await
}

/// The public JWK of `source` for `kid` (or its only key when `kid` is absent): from the
/// inline set, the `jwks_uri`, or OpenID Connect discovery, in that order.
pub async fn source_key(
    ctx: &Context,
    source: &KeySource<'_>,
    kid: Option<&str>,
) -> Result<Value, KeyError> {
    if let Some(text) = source.jwks {
        let jwks: Value = serde_json::from_str(text)
            .map_err(|_| KeyError::Unavailable(KeysUnavailable::StoredJwksInvalid))?;
        return usable_key(&jwks, kid).ok_or(KeyError::UnknownKey);
    }
    let remote = Remote::of(ctx);
    let url = match source.jwks_uri {
        Some(uri) => jwks_url(uri).map_err(KeysUnavailable::JwksUri),
        None => discover_jwks_uri(&remote, source.issuer, source.configuration)
            .await
            .map_err(KeysUnavailable::Discovery),
    }
    .map_err(KeyError::Unavailable)?;
    let doc = Doc {
        kind: source.set,
        url: &url,
        cache_id: source.issuer,
        max_bytes: MAX_DOCUMENT_BYTES,
    };
    let jwks = remote
        .get_refreshing(
            &doc,
            validate_remote_jwks,
            |set: &Value| usable_key(set, kid).is_none(),
            UNKNOWN_KID_REFRESH_SECS,
        )
        .await
        .map_err(|e| KeyError::Unavailable(KeysUnavailable::Fetch(e)))?;
    usable_key(&jwks, kid).ok_or(KeyError::UnknownKey)
}

/// [`jose::select_key`](crate::jose::select_key), restricted to public signing keys of the
/// types we verify ([`crate::crypto::jws::usable_public_key`]).
fn usable_key(jwks: &Value, kid: Option<&str>) -> Option<Value> {
    crate::jose::select_key(jwks, kid)
        .filter(|k| crate::crypto::jws::usable_public_key(k))
        .cloned()
}

/// Why a fetched IdP document (configuration or JWK Set) is refused. `Display` is the
/// reason, kept in [`KeyError::Unavailable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpDocumentError {
    #[error(transparent)]
    Document(#[from] crate::runtime::JsonDocumentError),
    #[error("the document is not a JSON object")]
    NotObject,
    #[error("the JWK Set has no 'keys' array")]
    NoKeys,
    #[error("the configuration's issuer does not equal the IdP's")]
    IssuerMismatch,
    #[error("the configuration has no jwks_uri")]
    NoJwksUri,
    #[error(transparent)]
    JwksUri(#[from] IdpConfigError),
}

/// Why an IdP's `jwks_uri` could not be discovered (OpenID Connect Discovery 1.0 §4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovery URL: {0}")]
    Url(url::ParseError),
    #[error("discovery: {0}")]
    Fetch(crate::remote::RemoteError<IdpDocumentError>),
    #[error("discovery: {0}")]
    JwksUri(IdpConfigError),
}

/// Why an IdP's keys could not be obtained. `Display` is the reason told after "the
/// identity provider's keys could not be obtained: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysUnavailable {
    #[error("the stored JWK Set is not valid JSON")]
    StoredJwksInvalid,
    #[error(transparent)]
    JwksUri(IdpConfigError),
    #[error(transparent)]
    Discovery(DiscoveryError),
    #[error(transparent)]
    Fetch(crate::remote::RemoteError<IdpDocumentError>),
}

/// A fetched JSON object (S5: 200 only, a JSON content type, bounded size, valid JSON).
fn json_object(resp: &FetchResponse) -> Result<Value, IdpDocumentError> {
    let doc = resp.json_document(MAX_DOCUMENT_BYTES, "document")?;
    if !doc.is_object() {
        return Err(IdpDocumentError::NotObject);
    }
    Ok(doc)
}

/// Validates a fetched JWK Set: a JSON object with a `keys` array (only its public P-256
/// keys are ever used, [`usable_key`]).
fn validate_remote_jwks(resp: &FetchResponse) -> Result<Value, IdpDocumentError> {
    let doc = json_object(resp)?;
    if !doc.get("keys").is_some_and(Value::is_array) {
        return Err(IdpDocumentError::NoKeys);
    }
    Ok(doc)
}

/// OpenID Connect Discovery 1.0 §4: the `jwks_uri` of the issuer's configuration document,
/// whose `issuer` must equal the IdP's (§4.3).
async fn discover_jwks_uri(
    remote: &Remote<'_>,
    issuer: &str,
    kind: Kind,
) -> Result<Url, DiscoveryError> {
    let config_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let url = Url::parse(&config_url).map_err(DiscoveryError::Url)?;
    let doc = Doc {
        kind,
        url: &url,
        cache_id: issuer,
        max_bytes: MAX_DOCUMENT_BYTES,
    };
    let uri = remote
        .get(&doc, |resp| discovered_jwks_uri(issuer, resp))
        .await
        .map_err(DiscoveryError::Fetch)?;
    jwks_url(&uri).map_err(DiscoveryError::JwksUri)
}

/// The `jwks_uri` of a fetched configuration document whose `issuer` is `issuer`.
fn discovered_jwks_uri(issuer: &str, resp: &FetchResponse) -> Result<String, IdpDocumentError> {
    let doc = json_object(resp)?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(IdpDocumentError::IssuerMismatch);
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(IdpDocumentError::NoJwksUri)?;
    jwks_url(uri)?;
    Ok(uri.to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::dpop::test_support::Prover;
    use crate::remote::fake::Documents;
    use crate::runtime::FixedClock;
    use crate::server::Portcullis;

    const IDP: &str = "https://idp.example.com";

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    /// A server whose outbound fetches are answered by `docs`.
    fn server_with(docs: &Arc<Documents>) -> (Portcullis, Arc<FixedClock>) {
        let (mut env, clock) = crate::store::test_store::test_env();
        env.fetcher = docs.clone();
        (
            run(Portcullis::start(env, Config::default())).unwrap(),
            clock,
        )
    }

    /// The IdP, with its keys at `jwks_uri` or (without one) found by discovery.
    fn idp(jwks_uri: Option<&str>) -> IdpRow {
        IdpRow {
            issuer: IDP.into(),
            jwks_uri: jwks_uri.map(str::to_owned),
            jwks: None,
            allowed_audiences: Vec::new(),
            created_at: 0,
        }
    }

    /// A public ES256 JWK with `kid`.
    fn jwk(seed: u64, kid: &str) -> Value {
        let mut k = Prover::new(seed).jwk;
        k["kid"] = kid.into();
        k["alg"] = "ES256".into();
        k
    }

    #[test]
    fn jwks_uri_is_cached_and_refreshed_on_unknown_kid() {
        const JWKS: &str = "https://idp.example.com/jwks";
        let docs = Arc::new(Documents::new(600));
        docs.set(JWKS, json!({ "keys": [jwk(11, "k1")] }));
        let (server, clock) = server_with(&docs);
        let idp = idp(Some(JWKS));
        let key = |kid: &str| run(key_for(&server, &idp, Some(kid)));
        assert_eq!(key("k1").unwrap()["kid"], "k1");
        assert_eq!(key("k1").unwrap()["kid"], "k1");
        assert_eq!(docs.calls(), 1, "the JWKS is cached");
        // The IdP rolls to k2. Within the refresh interval an unknown kid is refused without
        // a fetch; after it, one refetch picks up the new key.
        docs.set(JWKS, json!({ "keys": [jwk(11, "k1"), jwk(12, "k2")] }));
        clock.advance(3);
        assert_eq!(key("k2").unwrap_err(), KeyError::UnknownKey);
        assert_eq!(docs.calls(), 1);
        clock.advance(UNKNOWN_KID_REFRESH_SECS);
        assert_eq!(key("k2").unwrap()["kid"], "k2");
        assert_eq!(docs.calls(), 2, "refetched once");
        // A forged kid right after does not refetch.
        assert_eq!(key("k3").unwrap_err(), KeyError::UnknownKey);
        assert_eq!(docs.calls(), 2);
        assert_eq!(key("k1").unwrap()["kid"], "k1");
        assert_eq!(docs.calls(), 2);
    }

    #[test]
    fn keys_by_discovery_and_fetch_failures() {
        let configuration = "https://idp.example.com/.well-known/openid-configuration";
        let keys_at = "https://keys.idp.example.com/jwks.json";
        let docs = Arc::new(Documents::new(600));
        docs.set(configuration, json!({ "issuer": IDP, "jwks_uri": keys_at }));
        docs.set(keys_at, json!({ "keys": [jwk(21, "d1")] }));
        let (server, _) = server_with(&docs);
        let found = run(key_for(&server, &idp(None), Some("d1"))).unwrap();
        assert_eq!(found["kid"], "d1");
        assert_eq!(docs.calls(), 2);

        // An IdP whose keys cannot be fetched: reported as such, and the failure is cached.
        let docs = Arc::new(Documents::new(600));
        let (server, _) = server_with(&docs);
        let missing = idp(Some("https://idp.example.com/missing"));
        match run(key_for(&server, &missing, Some("d1"))) {
            Err(KeyError::Unavailable(why)) => {
                assert!(why.to_string().contains("404"), "{why}")
            }
            other => panic!("the keys are unavailable: {other:?}"),
        }
        assert!(run(key_for(&server, &missing, Some("d1"))).is_err());
        assert_eq!(docs.calls(), 1);

        // Discovery whose issuer does not match is refused.
        let docs = Arc::new(Documents::new(600));
        let evil = json!({ "issuer": "https://evil.example.com", "jwks_uri": keys_at });
        docs.set(configuration, evil);
        docs.set(keys_at, json!({ "keys": [jwk(21, "d1")] }));
        let (server, _) = server_with(&docs);
        match run(key_for(&server, &idp(None), Some("d1"))) {
            Err(KeyError::Unavailable(why)) => {
                assert!(why.to_string().contains("issuer"), "{why}")
            }
            other => panic!("the keys are unavailable: {other:?}"),
        }
    }

    #[test]
    fn issuer_shape() {
        for ok in [
            "https://idp.example",
            "https://idp.example/",
            "https://idp.example/tenant/acme",
            "http://127.0.0.1:8080",
            "http://localhost/idp",
        ] {
            assert!(validate_issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "idp.example",
            "http://idp.example",
            "https://idp.example/?x=1",
            "https://idp.example/#f",
            "https://user@idp.example",
            "https://idp.example/a b",
            "https://IDP.example",
            "https://idp.example/a/../b",
            "ftp://idp.example",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn automatic_subject_is_stable_and_issuer_scoped() {
        let a = automatic_subject("https://idp.example", "u1");
        assert_eq!(a, automatic_subject("https://idp.example", "u1"));
        assert!(a.starts_with("idp:") && a.len() == 26, "{a}");
        assert_ne!(a, automatic_subject("https://other.example", "u1"));
        assert_ne!(a, automatic_subject("https://idp.example", "u2"));
    }

    #[test]
    fn inline_jwks_public_p256_only() {
        let scalar = crate::crypto::rustcrypto::generate_scalar(&crate::runtime::SeededRng::new(3));
        let jwk =
            crate::keys::public_jwk(&crate::crypto::rustcrypto::public_key_sec1(&scalar).unwrap());
        assert!(validate_jwks(&serde_json::json!({ "keys": [jwk.clone()] })).is_ok());
        let mut private = jwk.clone();
        private["d"] = "AAAA".into();
        assert!(validate_jwks(&serde_json::json!({ "keys": [private] })).is_err());
        assert!(validate_jwks(&serde_json::json!({ "keys": [{"kty":"oct","k":"AAAA"}] })).is_err());
        assert!(validate_jwks(
            &serde_json::json!({ "keys": [{"kty":"RSA","n":"AQAB","e":"AQAB"}] })
        )
        .is_err());
        assert!(validate_jwks(&serde_json::json!([jwk])).is_err());
    }
}
