//! Fuzz target: dynamic client registration metadata (RFC 7591 §2, §3.1): the JSON body
//! read into client metadata, then validated; accepted metadata only holds redirect URIs
//! that registration accepts one by one, and public key sets only (RFC 7517 §5).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::registration::{check_public_jwks, metadata_from_json, validate_metadata};
use portcullis_core::{redirect, scope};
use portcullis_fuzz::assert_client_error;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Some(jwks) = value.get("jwks") {
        let _ = check_public_jwks(jwks);
    }
    let mut meta = match metadata_from_json(value) {
        Ok(m) => m,
        Err(e) => return assert_client_error(&e),
    };
    if let Err(e) = validate_metadata(&mut meta) {
        return assert_client_error(&e);
    }
    for uri in &meta.redirect_uris {
        assert!(
            redirect::validate_for_registration(uri, &meta.application_type).is_ok(),
            "accepted redirect URI {uri:?} fails the registration check"
        );
    }
    if let Some(s) = &meta.scope {
        assert!(
            scope::parse(s).is_ok(),
            "accepted scope {s:?} does not parse"
        );
    }
});
