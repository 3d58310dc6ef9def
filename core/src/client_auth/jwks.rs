//! The public keys of a `private_key_jwt` client (RFC 7591 §2 `jwks` / `jwks_uri`, RFC 7517
//! JWK Set): the inline set as registered, or the set at `jwks_uri`, fetched, validated and
//! cached through [`crate::remote`] (SECURITY-CHECKLIST S1–S8: its SSRF check and loopback
//! rule, the response's `max-age` within the `cimd` floor and ceiling, failures for
//! `cimd.failure_cache_secs`, fetch failures logged and not told). A `kid` missing from the
//! cached set refetches it once, at most every [`UNKNOWN_KID_REFETCH_SECS`], so a client's key
//! rollover is picked up at once while made-up `kid`s cannot make us hammer its server; a
//! failed refetch keeps the set we had.

use serde_json::Value;

use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::remote::{Doc, Kind, Remote};
use crate::runtime::FetchResponse;

/// Shortest interval between two refetches of one `jwks_uri` caused by an unknown `kid`.
pub const UNKNOWN_KID_REFETCH_SECS: i64 = 10;
/// Largest JWK Set fetched, bytes.
pub const MAX_JWKS_DOCUMENT_BYTES: usize = 64 * 1024;

fn unavailable(why: impl std::fmt::Display) -> Error {
    Error::invalid_client(format!(
        "client assertion refused: the client's jwks_uri could not be fetched: {why}"
    ))
}

/// The JWK Set to verify `client`'s assertion with. `kid` is the assertion's, used only to
/// decide whether a cached remote set must be refetched.
pub async fn client_keys(ctx: &Context, client: &Client, kid: Option<&str>) -> Result<Value> {
    if let Some(set) = &client.metadata.jwks {
        return Ok(set.clone());
    }
    let Some(uri) = client.metadata.jwks_uri.as_deref() else {
        return Err(Error::invalid_client(
            "client assertion refused: the client has no registered keys (jwks or jwks_uri)",
        ));
    };
    let url = url::Url::parse(uri).map_err(|e| unavailable(format!("not a valid URL ({e})")))?;
    let doc = Doc {
        kind: Kind::ClientJwks,
        url: &url,
        cache_id: uri,
        max_bytes: MAX_JWKS_DOCUMENT_BYTES,
    };
    let stale_for_kid = |set: &Value| kid.is_some() && crate::jose::select_key(set, kid).is_none();
    Remote::of(ctx)
        .get_refreshing(
            &doc,
            validate_document,
            stale_for_kid,
            UNKNOWN_KID_REFETCH_SECS,
        )
        .await
        .map_err(unavailable)
}

/// Why a fetched JWK Set is refused (S5, S6). `Display` is the reason told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksDocumentError {
    #[error(transparent)]
    Document(#[from] crate::runtime::JsonDocumentError),
    #[error(transparent)]
    Jwks(#[from] crate::registration::JwksError),
}

/// Validates a fetched JWK Set (S5, S6): HTTP 200, a JSON content type
/// (`application/json`, `application/jwk-set+json`), within the size limit, a set of public
/// keys only.
pub fn validate_document(resp: &FetchResponse) -> std::result::Result<Value, JwksDocumentError> {
    let set = resp.json_document(MAX_JWKS_DOCUMENT_BYTES, "JWK Set")?;
    crate::registration::check_public_jwks(&set)?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clients::{ClientKind, ClientMetadata};
    use crate::config::Config;
    use crate::dpop::test_support::Prover;
    use crate::error::ErrorCode;
    use crate::remote::fake::Documents;
    use crate::runtime::FixedClock;
    use crate::server::Portcullis;
    use crate::store::test_store::test_env;
    use serde_json::json;

    const JWKS_URI: &str = "https://keys.example.com/jwt-remote.json";

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    /// A server whose outbound fetches are answered by `docs`.
    fn server_with(docs: &Arc<Documents>) -> (Portcullis, Arc<FixedClock>) {
        let (mut env, clock) = test_env();
        env.fetcher = docs.clone();
        (
            run(Portcullis::start(env, Config::default())).unwrap(),
            clock,
        )
    }

    /// A `private_key_jwt` client whose keys are at `jwks_uri`.
    fn remote_client(jwks_uri: &str) -> Client {
        Client {
            client_id: "jwt-remote".into(),
            secret_hash: None,
            metadata: ClientMetadata {
                grant_types: vec!["client_credentials".into()],
                token_endpoint_auth_method: "private_key_jwt".into(),
                jwks_uri: Some(jwks_uri.into()),
                ..Default::default()
            },
            kind: ClientKind::Static,
            last_used_at: None,
        }
    }

    /// A public P-256 JWK with `kid`.
    fn jwk(seed: u64, kid: &str) -> Value {
        let mut k = Prover::new(seed).jwk;
        k["kid"] = kid.into();
        k
    }

    /// The keys for `kid` as an assertion would get them: the set, and whether it holds `kid`.
    fn keys(server: &Portcullis, client: &Client, kid: &str) -> Result<bool> {
        let set = run(client_keys(server, client, Some(kid)))?;
        Ok(crate::jose::select_key(&set, Some(kid)).is_some())
    }

    #[test]
    fn inline_keys_are_never_fetched() {
        let docs = Arc::new(Documents::new(300));
        let (server, _) = server_with(&docs);
        let mut client = remote_client(JWKS_URI);
        client.metadata.jwks_uri = None;
        client.metadata.jwks = Some(json!({ "keys": [jwk(1, "k1")] }));
        assert!(keys(&server, &client, "k1").unwrap());
        assert_eq!(docs.calls(), 0);
        client.metadata.jwks = None;
        let e = run(client_keys(&server, &client, None)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn jwks_uri_is_fetched_cached_and_refetched_once_on_an_unknown_kid() {
        let docs = Arc::new(Documents::new(300));
        docs.set(JWKS_URI, json!({ "keys": [jwk(1, "k1")] }));
        let (server, clock) = server_with(&docs);
        let client = remote_client(JWKS_URI);
        assert!(keys(&server, &client, "k1").unwrap());
        assert!(keys(&server, &client, "k1").unwrap());
        assert_eq!(docs.calls(), 1, "the set is cached");
        // The client rolls over to a new key, published at its jwks_uri.
        docs.set(JWKS_URI, json!({ "keys": [jwk(1, "k1"), jwk(2, "k2")] }));
        clock.advance(UNKNOWN_KID_REFETCH_SECS + 1);
        assert!(keys(&server, &client, "k2").unwrap());
        assert_eq!(docs.calls(), 2, "an unknown kid refetches the set");
        // Made-up kids refetch at most every few seconds.
        for i in 0..5 {
            assert!(!keys(&server, &client, &format!("nope-{i}")).unwrap());
        }
        assert_eq!(docs.calls(), 2, "within the interval nothing is fetched");
        // A failed refetch keeps the last good set.
        docs.set(JWKS_URI, json!("gone"));
        clock.advance(UNKNOWN_KID_REFETCH_SECS + 1);
        assert!(!keys(&server, &client, "nope").unwrap());
        assert_eq!(docs.calls(), 3);
        assert!(!keys(&server, &client, "nope").unwrap());
        assert_eq!(docs.calls(), 3, "the interval holds after a failed refetch");
        assert!(keys(&server, &client, "k2").unwrap());
    }

    #[test]
    fn jwks_uri_failures_are_reported_and_ssrf_destinations_never_fetched() {
        let docs = Arc::new(Documents::new(300));
        let (server, clock) = server_with(&docs);
        let ssrf = remote_client("https://169.254.169.254/latest/jwks.json");
        let e = keys(&server, &ssrf, "k1").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("could not be fetched"), "{e:?}");
        assert_eq!(docs.calls(), 0, "refused before fetching");
        // An unusable set is reported as such, and the failure is cached briefly.
        let client = remote_client(JWKS_URI);
        docs.set(JWKS_URI, json!({ "keys": "not a list" }));
        let e = keys(&server, &client, "k1").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.description.contains("could not be fetched"), "{e:?}");
        assert!(keys(&server, &client, "k1").is_err());
        assert_eq!(docs.calls(), 1);
        docs.set(JWKS_URI, json!({ "keys": [jwk(1, "k1")] }));
        clock.advance(server.config().cimd.failure_cache_secs);
        assert!(keys(&server, &client, "k1").unwrap());
        assert_eq!(docs.calls(), 2);
    }

    fn resp(status: u16, ct: &str, body: &[u8]) -> FetchResponse {
        FetchResponse {
            status,
            content_type: Some(ct.into()),
            cache_control: None,
            body: body.to_vec(),
        }
    }

    #[test]
    fn metadata_document_client_authenticates_with_its_jwks_uri() {
        let docs = Arc::new(Documents::new(300));
        let (server, _) = server_with(&docs);
        let id = "https://agent.example.com/oauth/client.json";
        let jwks_uri = "https://agent.example.com/oauth/jwks.json";
        docs.set(
            id,
            json!({
                "client_id": id,
                "client_name": "Agent",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": jwks_uri,
            }),
        );
        let agent = Prover::new(404);
        let mut key = agent.jwk.clone();
        key["kid"] = "agent-1".into();
        docs.set(jwks_uri, json!({ "keys": [key] }));
        let now = server.now();
        let claims = json!({
            "iss": id, "sub": id, "aud": server.issuer(),
            "exp": now + 60, "iat": now, "jti": "m1",
        });
        let jwt = agent.sign(&json!({ "alg": "ES256", "kid": "agent-1" }), &claims);
        let params = crate::request::Params::from_pairs([
            ("client_assertion_type", super::super::ASSERTION_TYPE),
            ("client_assertion", jwt.as_str()),
        ]);
        let headers = http::HeaderMap::new();
        let client = run(super::super::authenticate(&server, &headers, &params)).unwrap();
        assert_eq!(client.client_id, id);
        assert_eq!(client.kind, ClientKind::MetadataDocument);
        // It cannot fall back to client_id alone.
        let params = crate::request::Params::from_pairs([("client_id", id)]);
        let e = run(super::super::authenticate(&server, &headers, &params)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn s5_s6_fetched_sets_are_validated() {
        let good = br#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}"#;
        validate_document(&resp(200, "application/json", good)).unwrap();
        validate_document(&resp(200, "application/jwk-set+json; charset=utf-8", good)).unwrap();
        let private = br#"{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}"#;
        for (why, r) in [
            ("status", resp(404, "application/json", good)),
            ("redirect", resp(302, "application/json", good)),
            ("type", resp(200, "text/html", good)),
            ("json", resp(200, "application/json", b"{not json")),
            ("shape", resp(200, "application/json", b"[]")),
            ("private", resp(200, "application/json", private)),
            (
                "size",
                resp(
                    200,
                    "application/json",
                    &vec![b' '; MAX_JWKS_DOCUMENT_BYTES + 1],
                ),
            ),
        ] {
            assert!(validate_document(&r).is_err(), "{why}");
        }
        assert_eq!(
            validate_document(&resp(200, "application/json", good)).unwrap()["keys"][0]["x"],
            json!("a")
        );
    }
}
