//! Fuzz target: client ID metadata documents (draft-ietf-oauth-client-id-metadata-document
//! §3, §4) and fetched JWK Sets (RFC 7517 §5) as the server receives them: status, content
//! type, `Cache-Control` and body; an accepted document yields a client that is public or
//! `private_key_jwt`, never one with a secret, and a cache lifetime within the configured
//! bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::cimd;
use portcullis_core::client_auth::jwks;
use portcullis_core::config::CimdConfig;
use portcullis_core::runtime::FetchResponse;
use portcullis_fuzz::{split, text};

const CLIENT_ID: &str = "https://app.example/client.json";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (cache_control, body) = split(rest, b'\n');
    let content_type = match mode % 4 {
        0 => Some("application/json".to_string()),
        1 => Some("application/jwk-set+json; charset=utf-8".to_string()),
        2 => None,
        _ => Some("text/html".to_string()),
    };
    let resp = FetchResponse {
        status: if mode & 0x80 == 0 { 200 } else { 404 },
        content_type,
        cache_control: Some(text(cache_control)),
        body: body.to_vec(),
    };
    let cfg = CimdConfig::default();
    if let Ok((client, ttl)) = cimd::validate_document(CLIENT_ID, &resp, &cfg) {
        assert_eq!(client.client_id, CLIENT_ID);
        assert!(client.secret_hash.is_none());
        let method = client.metadata.token_endpoint_auth_method.as_str();
        assert!(
            method == "none" || method == "private_key_jwt",
            "{method:?}"
        );
        assert!(
            (cfg.min_cache_secs..=cfg.max_cache_secs).contains(&ttl),
            "{ttl}"
        );
    }
    let ttl = cimd::cache_ttl(Some(&text(cache_control)), &cfg);
    assert!(
        (cfg.min_cache_secs..=cfg.max_cache_secs).contains(&ttl),
        "{ttl}"
    );
    let _ = jwks::validate_document(&resp);
    let id = text(cache_control);
    if let Ok(url) = cimd::document_url(&id) {
        assert_eq!(url.scheme(), "https");
    }
});
