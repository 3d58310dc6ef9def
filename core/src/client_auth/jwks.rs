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
    use super::*;
    use serde_json::json;

    fn resp(status: u16, ct: &str, body: &[u8]) -> FetchResponse {
        FetchResponse {
            status,
            content_type: Some(ct.into()),
            cache_control: None,
            body: body.to_vec(),
        }
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
