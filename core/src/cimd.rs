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
use crate::remote::{CachePolicy, Doc, Kind, Remote};
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
    if url.scheme() == "http"
        && !matches!(
            url.host_str(),
            Some("127.0.0.1") | Some("[::1]") | Some("localhost")
        )
    {
        return Err(DocumentUrlError::NotHttps);
    }
    Ok(url)
}

/// Fetches (or reads from cache) and validates the metadata document of `client_id`,
/// through [`crate::remote`] and its loopback rule ([`crate::remote::allow_loopback`]).
pub async fn fetch_client(ctx: &Context, client_id: &str) -> Result<Client> {
    let cfg = ctx.config();
    let env = ctx.env();
    let client = fetch_with(
        env.kv.as_ref(),
        env.fetcher.as_ref(),
        &cfg.cimd,
        crate::remote::allow_loopback(cfg),
        ctx.now(),
        client_id,
    )
    .await?;
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
    remote
        .get(&doc, |resp| {
            validate_document(client_id, resp, cfg).map(|(client, _)| client.metadata)
        })
        .await
        .map(|metadata| client_of(client_id, metadata))
        .map_err(fetch_failed)
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
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;
    use crate::runtime::FetchError;
    use crate::server::Portcullis;
    use crate::store::MemoryKv;

    const ID: &str = "https://app.example.com/oauth/client.json";
    const NOW: i64 = 1_700_000_000;

    fn doc() -> Value {
        json!({
            "client_id": ID,
            "client_name": "Example MCP client",
            "redirect_uris": ["http://127.0.0.1/callback", "https://app.example.com/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none"
        })
    }

    fn ok_resp(body: &Value) -> FetchResponse {
        FetchResponse {
            status: 200,
            content_type: Some("application/json".into()),
            cache_control: None,
            body: serde_json::to_vec(body).unwrap(),
        }
    }

    fn validate(body: &Value) -> Result<(Client, i64), String> {
        validate_document(ID, &ok_resp(body), &CimdConfig::default()).map_err(|e| e.to_string())
    }

    fn refused_doc(body: Value) -> String {
        validate(&body).expect_err(&format!("{body} must be refused"))
    }

    struct FakeFetcher {
        resp: Mutex<Result<FetchResponse, FetchError>>,
        calls: AtomicUsize,
    }

    impl FakeFetcher {
        fn new(resp: Result<FetchResponse, FetchError>) -> Self {
            Self {
                resp: Mutex::new(resp),
                calls: AtomicUsize::new(0),
            }
        }
        fn set(&self, resp: Result<FetchResponse, FetchError>) {
            *self.resp.lock().unwrap() = resp;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl Fetcher for FakeFetcher {
        async fn get(&self, url: &Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
            assert_eq!(max_bytes, CimdConfig::default().max_bytes);
            assert!(url.as_str().starts_with("http"));
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.resp.lock().unwrap().clone()
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn fetch(kv: &MemoryKv, f: &FakeFetcher, now: i64, id: &str) -> Result<Client> {
        run(fetch_with(kv, f, &CimdConfig::default(), false, now, id))
    }

    #[test]
    fn valid_document_gives_a_public_client() {
        let (client, ttl) = validate(&doc()).unwrap();
        assert_eq!(client.client_id, ID);
        assert_eq!(client.kind, ClientKind::MetadataDocument);
        assert!(client.is_public());
        assert!(client.secret_hash.is_none());
        assert_eq!(
            client.metadata.grant_types,
            vec!["authorization_code", "refresh_token"]
        );
        assert_eq!(client.metadata.response_types, vec!["code"]);
        assert_eq!(client.display_name(), "Example MCP client");
        assert_eq!(ttl, CimdConfig::default().min_cache_secs);
    }

    #[test]
    fn grant_types_default_to_authorization_code() {
        let mut d = doc();
        let o = d.as_object_mut().unwrap();
        o.remove("grant_types");
        o.remove("token_endpoint_auth_method");
        let (client, _) = validate(&d).unwrap();
        assert_eq!(client.metadata.grant_types, vec!["authorization_code"]);
        assert_eq!(client.metadata.token_endpoint_auth_method, "none");
        let mut d = doc();
        d["grant_types"] = json!(["client_credentials"]);
        refused_doc(d);
    }

    #[test]
    fn redirect_uris_are_validated() {
        for bad in [
            json!(["http://app.example.com/cb"]),
            json!(["javascript:alert(1)"]),
            json!(["https://app.example.com/cb#x"]),
            json!([]),
        ] {
            let mut d = doc();
            d["redirect_uris"] = bad;
            refused_doc(d);
        }
    }

    #[test]
    fn s2_document_url_shape() {
        for ok in [
            ID,
            "https://app.example.com:8443/client",
            "https://app.example.com/a/b/c.json",
            "http://127.0.0.1:8080/client.json",
            "http://localhost:8080/client.json",
        ] {
            document_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(is_metadata_document_id(ok));
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_ID_LEN));
        for bad in [
            "app-client-id",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/client.json#frag",
            "https://app.example.com/client.json#",
            "https://user@app.example.com/client.json",
            "https://user:pw@app.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://app.example.com/a/%2e%2e/client.json",
            "https://app.example.com/a/%2E/client.json",
            "https://app.example.com/./client.json",
            "https://app.example.com/client.json?v=1",
            "http://app.example.com/client.json",
            "http://10.0.0.1/client.json",
            "HTTPS://app.example.com/client.json",
            "https://APP.example.com/client.json",
            "https://app.example.com:443/client.json",
            "https://app.example.com/client json",
            "https://app.example.com\\client.json",
            " https://app.example.com/client.json",
            "ftp://app.example.com/client.json",
            long.as_str(),
        ] {
            assert!(document_url(bad).is_err(), "{bad:?} must be refused");
            assert!(!is_metadata_document_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn s2_document_client_id_must_equal_url() {
        for other in [
            json!("https://app.example.com/oauth/client.json/"),
            json!("https://APP.example.com/oauth/client.json"),
            json!("https://evil.example.com/oauth/client.json"),
            json!("https://app.example.com/oauth/client.json#"),
            json!(42),
        ] {
            let mut d = doc();
            d["client_id"] = other;
            assert!(refused_doc(d).contains("client_id"));
        }
        let mut d = doc();
        d.as_object_mut().unwrap().remove("client_id");
        assert!(refused_doc(d).contains("client_id"));
    }

    #[test]
    fn s5_non_200_refused() {
        for status in [201, 204, 301, 302, 304, 401, 404, 500] {
            let mut r = ok_resp(&doc());
            r.status = status;
            let e = validate_document(ID, &r, &CimdConfig::default()).unwrap_err();
            assert!(e.to_string().contains(&status.to_string()), "{e}");
        }
    }

    #[test]
    fn s5_wrong_content_type_refused() {
        for ct in [
            None,
            Some("text/html"),
            Some("text/plain"),
            Some("text/json"),
            Some("application/jsonp"),
            Some("application/javascript"),
            Some("json"),
            Some(""),
        ] {
            let mut r = ok_resp(&doc());
            r.content_type = ct.map(str::to_owned);
            assert!(
                validate_document(ID, &r, &CimdConfig::default()).is_err(),
                "{ct:?} must be refused"
            );
        }
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/oauth-client+json",
        ] {
            let mut r = ok_resp(&doc());
            r.content_type = Some(ct.into());
            validate_document(ID, &r, &CimdConfig::default())
                .unwrap_or_else(|e| panic!("{ct}: {e}"));
        }
    }

    #[test]
    fn s5_oversized_body_refused() {
        let cfg = CimdConfig::default();
        let mut d = doc();
        d["client_name"] = json!("x".repeat(cfg.max_bytes));
        let e = validate_document(ID, &ok_resp(&d), &cfg).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    }

    #[test]
    fn s5_invalid_json_refused() {
        for body in [
            &b"{"[..],
            b"",
            b"not json",
            b"[]",
            b"\"x\"",
            b"{\"client_id\": }",
        ] {
            let mut r = ok_resp(&doc());
            r.body = body.to_vec();
            assert!(validate_document(ID, &r, &CimdConfig::default()).is_err());
        }
    }

    #[test]
    fn s6_secrets_refused() {
        for (k, v) in [
            ("client_secret", json!("s3cret")),
            ("client_secret_expires_at", json!(0)),
            ("client_secret_anything", json!("x")),
        ] {
            let mut d = doc();
            d[k] = v;
            assert!(refused_doc(d).contains(k));
        }
    }

    #[test]
    fn s6_private_key_material_refused() {
        for key in [
            json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}),
            json!({"kty": "RSA", "n": "a", "e": "AQAB", "p": "x"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
        ] {
            let mut d = doc();
            d["jwks"] = json!({ "keys": [key] });
            assert!(refused_doc(d).contains("jwks"));
        }
        let mut d = doc();
        d["jwks"] = json!("not a set");
        refused_doc(d);
        let mut d = doc();
        d["jwks"] = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]});
        validate(&d).unwrap();
    }

    #[test]
    fn s6_no_shared_secret_auth_methods() {
        for m in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "",
        ] {
            let mut d = doc();
            d["token_endpoint_auth_method"] = json!(m);
            assert!(refused_doc(d).contains("token_endpoint_auth_method"), "{m}");
        }
    }

    #[test]
    fn private_key_jwt_with_jwks_uri_or_public_jwks() {
        use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
        let scalar = generate_scalar(&crate::runtime::SeededRng::new(9));
        let jwk = crate::keys::public_jwk(&public_key_sec1(&scalar).unwrap());
        let mut d = doc();
        d["token_endpoint_auth_method"] = json!("private_key_jwt");
        d["jwks_uri"] = json!("https://app.example.com/jwks.json");
        let (client, _) = validate(&d).unwrap();
        assert_eq!(
            client.metadata.token_endpoint_auth_method,
            "private_key_jwt"
        );
        assert!(!client.is_public());
        assert!(client.secret_hash.is_none());
        let mut d = doc();
        d["token_endpoint_auth_method"] = json!("private_key_jwt");
        d["jwks"] = json!({ "keys": [jwk.clone()] });
        validate(&d).unwrap();
        // Still no private key material (S6), and a key source is required.
        let mut private = jwk;
        private["d"] = json!("c2VjcmV0");
        d["jwks"] = json!({ "keys": [private] });
        assert!(refused_doc(d.clone()).contains("jwks"));
        d.as_object_mut().unwrap().remove("jwks");
        assert!(refused_doc(d).contains("jwks"));
    }

    #[test]
    fn s7_cache_ttl_within_floor_and_ceiling() {
        let cfg = CimdConfig::default();
        let (min, max) = (cfg.min_cache_secs, cfg.max_cache_secs);
        for (header, want) in [
            (None, min),
            (Some("max-age=3600"), 3600),
            (Some("public, max-age=7200"), 7200),
            (Some("MAX-AGE=120, public"), 120),
            (Some("max-age=\"300\""), 300),
            (Some("max-age=1"), min),
            (Some("max-age=0"), min),
            (Some("max-age=99999999"), max),
            (Some("max-age=999999999999999999999999"), max),
            (Some("max-age=-5"), min),
            (Some("max-age=abc"), min),
            (Some("no-store"), min),
            (Some("max-age=3600, no-cache"), min),
        ] {
            assert_eq!(cache_ttl(header, &cfg), want, "{header:?}");
        }
        let mut r = ok_resp(&doc());
        r.cache_control = Some("max-age=600".into());
        assert_eq!(validate_document(ID, &r, &cfg).unwrap().1, 600);
    }

    #[test]
    fn s7_success_is_cached_until_its_lifetime_ends() {
        let kv = MemoryKv::default();
        let mut resp = ok_resp(&doc());
        resp.cache_control = Some("max-age=300".into());
        let f = FakeFetcher::new(Ok(resp));
        let c = fetch(&kv, &f, NOW, ID).unwrap();
        assert_eq!(c.kind, ClientKind::MetadataDocument);
        assert_eq!(f.calls(), 1);
        // Served from the cache even if the document now fails.
        f.set(Err(FetchError::Timeout));
        assert_eq!(fetch(&kv, &f, NOW + 299, ID).unwrap(), c);
        assert_eq!(f.calls(), 1);
        // Expired: fetched again.
        let e = fetch(&kv, &f, NOW + 300, ID).unwrap_err();
        assert_eq!(f.calls(), 2);
        assert!(
            e.description.contains("could not be retrieved"),
            "{}",
            e.description
        );
        assert!(!e.description.contains("timed out"), "{}", e.description);
    }

    #[test]
    fn s7_failure_reported_as_such_and_cached_briefly() {
        let kv = MemoryKv::default();
        let f = FakeFetcher::new(Err(FetchError::Transport("connection refused".into())));
        let e = fetch(&kv, &f, NOW, ID).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(
            e.description
                .starts_with("client metadata document could not be fetched: "),
            "{}",
            e.description
        );
        // E1: the transport's reason is logged, not told.
        assert!(
            !e.description.contains("connection refused"),
            "{}",
            e.description
        );
        assert!(e.description.contains("could not be retrieved"));
        assert!(!e.description.contains("unknown client"));
        // Cached for failure_cache_secs: no second fetch, same message.
        f.set(Ok(ok_resp(&doc())));
        let again = fetch(
            &kv,
            &f,
            NOW + CimdConfig::default().failure_cache_secs - 1,
            ID,
        )
        .unwrap_err();
        assert_eq!(again.description, e.description);
        assert_eq!(f.calls(), 1);
        // Then retried.
        fetch(&kv, &f, NOW + CimdConfig::default().failure_cache_secs, ID).unwrap();
        assert_eq!(f.calls(), 2);
    }

    #[test]
    fn s7_invalid_document_reported_with_reason() {
        let kv = MemoryKv::default();
        let mut d = doc();
        d["client_secret"] = json!("x");
        let f = FakeFetcher::new(Ok(ok_resp(&d)));
        let e = fetch(&kv, &f, NOW, ID).unwrap_err();
        assert!(e.description.contains("could not be fetched"));
        assert!(e.description.contains("client_secret"));
    }

    #[test]
    fn e1_refused_destination_reason_is_logged_not_told() {
        let kv = MemoryKv::default();
        let f = FakeFetcher::new(Ok(ok_resp(&doc())));
        for id in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/client.json",
        ] {
            let e = fetch(&kv, &f, NOW, id).unwrap_err();
            let d = e.description.to_ascii_lowercase();
            for hint in [
                "private",
                "link-local",
                "loopback",
                "169.254",
                "10.0.0.1",
                "address",
            ] {
                assert!(!d.contains(hint), "{id}: '{hint}' told: {d}");
            }
            assert!(d.contains("could not be retrieved"), "{d}");
        }
    }

    #[test]
    fn s1_s3_refused_destinations_are_never_fetched() {
        let kv = MemoryKv::default();
        let f = FakeFetcher::new(Ok(ok_resp(&doc())));
        for id in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/client.json",
            "https://[::ffff:c0a8:1]/client.json",
            "https://127.0.0.1/client.json",
            "https://localhost/client.json",
            "http://127.0.0.1:8080/client.json",
        ] {
            let e = fetch(&kv, &f, NOW, id).unwrap_err();
            assert!(
                e.description.contains("could not be fetched"),
                "{id}: {}",
                e.description
            );
        }
        assert_eq!(f.calls(), 0);
        // Loopback documents are fetched when the setting allows them.
        let id = "http://127.0.0.1:8080/client.json";
        let mut d = doc();
        d["client_id"] = json!(id);
        f.set(Ok(ok_resp(&d)));
        let kv = MemoryKv::default();
        run(fetch_with(&kv, &f, &CimdConfig::default(), true, NOW, id)).unwrap();
        assert_eq!(f.calls(), 1);
    }

    #[test]
    fn malformed_ids_refused_without_fetch() {
        let kv = MemoryKv::default();
        let f = FakeFetcher::new(Ok(ok_resp(&doc())));
        let e = fetch(&kv, &f, NOW, "https://app.example.com/a/../client.json").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert_eq!(f.calls(), 0);
    }

    #[test]
    fn resolve_through_the_server() {
        use crate::store::test_store::test_env;
        run(async {
            let (mut env, _clock) = test_env();
            let fetcher = Arc::new(FakeFetcher::new(Ok(ok_resp(&doc()))));
            env.fetcher = fetcher.clone();
            let ctx = Portcullis::start(env, crate::Config::default())
                .await
                .unwrap();
            let c = crate::client_lookup::resolve(&ctx, ID)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(c.kind, ClientKind::MetadataDocument);
            let other = "https://app.example.com/other.json";
            let e = crate::client_lookup::resolve(&ctx, other)
                .await
                .unwrap_err();
            assert!(
                e.description.contains("could not be fetched"),
                "{}",
                e.description
            );
            assert_eq!(fetcher.calls(), 2);
        });
    }
}
