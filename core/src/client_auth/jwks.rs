//! The public keys of a `private_key_jwt` client (RFC 7591 §2 `jwks` / `jwks_uri`, RFC 7517
//! JWK Set): the inline set as registered, or the set at `jwks_uri`, fetched through the
//! SSRF-safe [`Fetcher`](crate::env::Fetcher) after [`ssrf::check_url`](crate::ssrf::check_url)
//! (SECURITY-CHECKLIST S1–S5; loopback only when `cimd.allow_loopback` is set on a loopback
//! issuer) and cached in the KV store for the response's `max-age` within the `cimd` floor and
//! ceiling, failures for `cimd.failure_cache_secs` (S7). A `kid` missing from the cached set
//! refetches it once, at most every [`UNKNOWN_KID_REFETCH_SECS`], so a client's key rollover
//! is picked up at once while made-up `kid`s cannot make us hammer its server.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clients::Client;
use crate::env::FetchResponse;
use crate::error::{Error, Result};
use crate::server::Portcullis;

/// Shortest interval between two refetches of one `jwks_uri` caused by an unknown `kid`.
pub const UNKNOWN_KID_REFETCH_SECS: i64 = 10;
/// Largest JWK Set fetched, bytes.
pub const MAX_JWKS_DOCUMENT_BYTES: usize = 64 * 1024;

/// What the cache holds for a `jwks_uri`.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    fetched_at: i64,
    result: std::result::Result<Value, String>,
}

fn cache_key(uri: &str) -> String {
    format!("client-jwks:{}", crate::crypto::token_hash(uri))
}

fn unavailable(why: &str) -> Error {
    Error::invalid_client(format!(
        "client assertion refused: the client's jwks_uri could not be fetched: {why}"
    ))
}

/// The JWK Set to verify `client`'s assertion with. `kid` is the assertion's, used only to
/// decide whether a cached remote set must be refetched.
pub async fn client_keys(server: &Portcullis, client: &Client, kid: Option<&str>) -> Result<Value> {
    if let Some(set) = &client.metadata.jwks {
        return Ok(set.clone());
    }
    let Some(uri) = client.metadata.jwks_uri.as_deref() else {
        return Err(Error::invalid_client(
            "client assertion refused: the client has no registered keys (jwks or jwks_uri)",
        ));
    };
    let env = server.env();
    let now = server.now();
    let key = cache_key(uri);
    let cached = match env.kv.get(&key, now).await {
        Ok(Some(bytes)) => serde_json::from_slice::<Entry>(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "client JWKS cache unavailable");
            None
        }
    };
    let stale_for_kid = |set: &Value| kid.is_some() && crate::jose::select_key(set, kid).is_none();
    let previous = match cached {
        Some(Entry {
            result: Err(why), ..
        }) => return Err(unavailable(&why)),
        Some(Entry {
            result: Ok(set),
            fetched_at,
        }) => {
            if !stale_for_kid(&set) || now - fetched_at < UNKNOWN_KID_REFETCH_SECS {
                return Ok(set);
            }
            Some(set)
        }
        None => None,
    };
    let result = match (fetch(server, uri).await, previous) {
        // A failed refetch keeps the set we had (for the cache floor, so the refetch
        // interval still holds); a failed first fetch is remembered briefly.
        (Err(_), Some(set)) => {
            let entry = Entry {
                fetched_at: now,
                result: Ok(set.clone()),
            };
            put(
                server,
                &key,
                &entry,
                now + server.config().cimd.min_cache_secs,
            )
            .await;
            return Ok(set);
        }
        (result, _) => result,
    };
    let (entry, expires_at) = match &result {
        Ok((set, ttl)) => (
            Entry {
                fetched_at: now,
                result: Ok(set.clone()),
            },
            now + ttl,
        ),
        Err(why) => (
            Entry {
                fetched_at: now,
                result: Err(why.clone()),
            },
            now + server.config().cimd.failure_cache_secs,
        ),
    };
    put(server, &key, &entry, expires_at).await;
    result.map(|(set, _)| set).map_err(|why| unavailable(&why))
}

async fn put(server: &Portcullis, key: &str, entry: &Entry, expires_at: i64) {
    if expires_at <= server.now() {
        return;
    }
    if let Ok(bytes) = serde_json::to_vec(entry) {
        if let Err(e) = server.env().kv.put(key, bytes, expires_at).await {
            tracing::warn!(error = %e, "client JWKS cache write failed");
        }
    }
}

/// Fetches and validates the set at `uri`; returns it with its cache lifetime.
async fn fetch(server: &Portcullis, uri: &str) -> std::result::Result<(Value, i64), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("not a valid URL ({e})"))?;
    let cfg = server.config();
    // E1: why a destination was refused or a fetch failed is logged, never told.
    let unreachable = |detail: String| {
        tracing::warn!(jwks_uri = %crate::http_util::truncate(uri, 200), %detail, "client JWK Set not retrieved");
        "the JWK Set could not be retrieved (the server's log has the reason)".to_owned()
    };
    crate::ssrf::check_url(&url, cfg.cimd.allow_loopback && cfg.issuer_is_loopback())
        .map_err(unreachable)?;
    let resp = server
        .env()
        .fetcher
        .get(&url, MAX_JWKS_DOCUMENT_BYTES)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let set = validate_document(&resp)?;
    Ok((
        set,
        crate::cimd::cache_ttl(resp.cache_control.as_deref(), &cfg.cimd),
    ))
}

/// Validates a fetched JWK Set (S5, S6): HTTP 200, a JSON content type
/// (`application/json`, `application/jwk-set+json`), within the size limit, a set of public
/// keys only.
pub fn validate_document(resp: &FetchResponse) -> std::result::Result<Value, String> {
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
