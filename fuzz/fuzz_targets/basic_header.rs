//! Fuzz target: the `Authorization: Basic` header of client authentication (RFC 6749
//! §2.3.1: form-encoded id and secret, RFC 7617 §2) alone and against the same credentials
//! in the body, then the decision whether the presented method is the registered one.
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_core::client_auth::{check, parse_credentials, PresentedMethod};
use portcullis_core::clients::{Client, ClientKind, ClientMetadata};
use portcullis_core::request::Params;
use portcullis_fuzz::{assert_client_error, split};

fuzz_target!(|data: &[u8]| {
    let (value, body) = split(data, b'\n');
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    let Ok(params) = Params::parse(body) else {
        return;
    };
    let presented = match parse_credentials(&headers, &params) {
        Ok(p) => p,
        Err(e) => return assert_client_error(&e),
    };
    assert!(!presented.client_id.is_empty());
    if presented.method == PresentedMethod::Basic {
        assert!(presented.assertion.is_none());
    }
    for method in [
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
    ] {
        let client = Client {
            client_id: presented.client_id.clone(),
            secret_hash: Some("$argon2id$unused".into()),
            metadata: ClientMetadata {
                token_endpoint_auth_method: method.into(),
                ..Default::default()
            },
            kind: ClientKind::Static,
            last_used_at: None,
        };
        if let Err(e) = check(&client, &presented) {
            assert_client_error(&e);
        }
    }
});
