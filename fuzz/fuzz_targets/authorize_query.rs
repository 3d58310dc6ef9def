//! Fuzz target: the authorization request's query string (RFC 6749 §4.1.1, RFC 7636 §4.3,
//! RFC 8707 §2, RFC 9449 §10) through the parsers the authorization endpoint runs before
//! it looks anything up: parameters, scope, PKCE challenge, redirect URI matching, the
//! client ID metadata document URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::request::Params;
use portcullis_core::{cimd, pkce, redirect, scope};
use portcullis_fuzz::assert_client_error;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/authorize?{query}").parse::<http::Uri>() else {
        return;
    };
    let params = match Params::from_query(&uri) {
        Ok(p) => p,
        Err(e) => return assert_client_error(&e),
    };
    if let Some(s) = params.get("scope") {
        match scope::parse(s) {
            Ok(list) => assert!(list.iter().all(|s| !s.is_empty() && !s.contains(' '))),
            Err(e) => assert_client_error(&e),
        }
    }
    if let Err(e) = pkce::validate_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        assert_client_error(&e);
    }
    if let Some(client_id) = params.get("client_id") {
        if cimd::is_metadata_document_id(client_id) {
            // S1: https, or plain http to a loopback host (fetched only where the loopback
            // rule allows it).
            if let Ok(url) = cimd::document_url(client_id) {
                assert!(
                    url.scheme() == "https"
                        || (url.scheme() == "http" && redirect::is_loopback_host(&url))
                );
            }
        }
        let _ = cimd::cache_key(client_id);
    }
    if let Some(requested) = params.get("redirect_uri") {
        let registered = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
            "com.example.app:/cb".to_string(),
        ];
        if redirect::matches(&registered, requested) {
            assert!(!redirect::is_dangerous_scheme(requested));
        }
    }
});
