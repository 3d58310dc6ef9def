//! Unit tests of the Transit answers' parsing (the HTTP side runs against the test server
//! in the scenario suite, `tests/src/transit_server.rs`).

use base64::Engine;
use p256::pkcs8::EncodePublicKey;
use serde_json::json;

use super::*;
use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use crate::runtime::SeededRng;

fn pem(seed: u64) -> (String, Vec<u8>) {
    let scalar = generate_scalar(&SeededRng::new(seed));
    let sec1 = public_key_sec1(&scalar).unwrap();
    let key = p256::PublicKey::from_sec1_bytes(&sec1).unwrap();
    let der = key.to_public_key_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let body: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    (
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            body.join("\n")
        ),
        sec1,
    )
}

#[test]
fn key_versions_are_published_newest_first_from_the_minimum_version() {
    let (p1, s1) = pem(1);
    let (p2, s2) = pem(2);
    let mut data = json!({
        "type": "ecdsa-p256",
        "latest_version": 2,
        "min_decryption_version": 1,
        "keys": {
            "1": {"name": "P-256", "public_key": p1, "creation_time": "2026-01-01T00:00:00Z"},
            "2": {"name": "P-256", "public_key": p2, "creation_time": "2026-02-01T00:00:00Z"},
        },
    });
    let set = parse_key_set(&data).unwrap();
    assert_eq!(set.keys.len(), 2);
    let signing = set.signing().unwrap();
    assert_eq!((signing.version, &signing.sec1), (2, &s2));
    assert_eq!(set.keys[1].sec1, s1);
    let jwk = &signing.jwk;
    assert_eq!(jwk["kid"], signing.kid.as_str());
    assert_eq!(
        (jwk["alg"].as_str(), jwk["kty"].as_str()),
        (Some("ES256"), Some("EC"))
    );
    assert_eq!(
        signing.kid,
        crate::crypto::thumbprint(&crate::crypto::public_jwk(&s2))
    );
    assert!(jwk.get("d").is_none(), "public only");
    assert_eq!(set.by_kid(&set.keys[1].kid).unwrap().version, 1);
    data["min_decryption_version"] = 2.into();
    assert_eq!(parse_key_set(&data).unwrap().keys.len(), 1);
}

#[test]
fn keys_of_another_type_or_without_public_keys_are_refused() {
    let (p1, _) = pem(3);
    for data in [
        json!({"type": "aes256-gcm96", "keys": {"1": 1_442_851_412}}),
        json!({"type": "rsa-2048", "keys": {"1": {"public_key": p1}}}),
        json!({"type": "ecdsa-p256", "keys": {"1": {"name": "P-256"}}}),
        json!({"type": "ecdsa-p256", "keys": {"1": {"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}}}),
        json!({"type": "ecdsa-p256", "keys": {}}),
        json!({"type": "ecdsa-p256"}),
    ] {
        assert!(parse_key_set(&data).is_err(), "{data}");
    }
}

#[test]
fn jws_signatures_are_parsed_and_their_version_checked() {
    let sig = [7u8; 64];
    let text = format!("vault:v3:{}", crate::crypto::b64(sig));
    assert_eq!(parse_signature(&text, 3).unwrap(), sig);
    assert!(parse_signature(&text, 2).is_err(), "another version");
    let asn1 = format!(
        "vault:v3:{}",
        base64::engine::general_purpose::STANDARD.encode([0x30u8; 70])
    );
    assert!(parse_signature(&asn1, 3).is_err(), "ASN.1, not JWS");
    for bad in ["", "vault:v3", "v3:abc", "vault:vx:abc"] {
        assert!(parse_signature(bad, 3).is_err(), "{bad}");
    }
}

#[test]
fn vault_errors_are_read_from_the_errors_array() {
    assert_eq!(
        vault_errors(br#"{"errors":["permission denied"]}"#),
        "permission denied"
    );
    assert_eq!(vault_errors(b"<html>"), "no error message");
    assert_eq!(vault_errors(br#"{"errors":[]}"#), "no error message");
}
