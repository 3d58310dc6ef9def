//! Fuzz target: the token request's form body (RFC 6749 §3.2, §4.1.3, §6; RFC 8693 §2.1;
//! RFC 7523 §2.1) through the parsers the token endpoint runs first: the form, the grant
//! type, the PKCE verifier (RFC 7636 §4.5, §4.6), the scope and the client credentials
//! in the body (client_secret_post, client assertions).
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_core::client_auth::{assertion, parse_credentials};
use portcullis_core::endpoints::token::GrantType;
use portcullis_core::request::Params;
use portcullis_core::{pkce, scope};
use portcullis_fuzz::assert_client_error;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let ct = match mode % 4 {
        0 => "application/x-www-form-urlencoded",
        1 => "application/x-www-form-urlencoded; charset=UTF-8",
        2 => "Application/X-WWW-Form-Urlencoded ;",
        _ => "application/json",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    let params = match Params::from_form(&headers, body) {
        Ok(p) => p,
        Err(e) => return assert_client_error(&e),
    };
    if let Some(g) = params.get("grant_type") {
        if let Some(grant) = GrantType::parse(g) {
            assert_eq!(grant.as_str(), g);
        }
    }
    if let Some(s) = params.get("scope") {
        if let Err(e) = scope::parse(s) {
            assert_client_error(&e);
        }
    }
    if let Some(v) = params.get("code_verifier") {
        let valid = pkce::is_valid_verifier(v);
        let challenge = pkce::s256_challenge(v);
        let verdict = pkce::verify(Some(&challenge), Some("S256"), Some(v));
        // A well-formed verifier matches its own S256 challenge; a malformed one never does.
        assert_eq!(verdict.is_ok(), valid, "verifier {v:?}");
        if let Err(e) = verdict {
            assert_client_error(&e);
        }
    }
    if let Some(a) = params.get("client_assertion") {
        let _ = assertion::unverified_subject(a);
    }
    match parse_credentials(&headers, &params) {
        Ok(p) => assert!(!p.client_id.is_empty()),
        Err(e) => assert_client_error(&e),
    }
});
