//! Unit tests of the proof checks (RFC 9449 §4.3) as plain functions: SECURITY-CHECKLIST D1
//! and D4, each refused case its own test; and D2 failing closed at the token endpoint of a
//! started server whose replay cache is gone.

use serde_json::{json, Value};

use super::nonce::NonceKey;
use super::proof::{normalize_htu, single_header, Expected, Reason};
use super::test_support::Prover;
use crate::crypto::{b64, RustCrypto};

/// The proof check under test, driven to completion.
fn check(
    crypto: &dyn crate::crypto::CryptoProvider,
    proof: &str,
    e: &Expected<'_>,
) -> Result<super::proof::Checked, super::proof::Rejection> {
    futures::executor::block_on(super::proof::check(crypto, proof, e))
}

const URL: &str = "https://as.example.com/oauth/token";
const NOW: i64 = 1_700_000_000;

fn expected() -> Expected<'static> {
    Expected {
        method: "POST",
        url: URL,
        access_token: None,
        now: NOW,
        max_age: 300,
        skew: 60,
        nonce: None,
    }
}

fn reason(proof: &str, e: &Expected<'_>) -> Reason {
    check(&RustCrypto, proof, e)
        .expect_err("the proof must be refused")
        .reason
}

fn with_header(p: &Prover, f: impl FnOnce(&mut Value)) -> String {
    let mut h = p.header();
    f(&mut h);
    p.sign(&h, &p.claims("POST", URL, NOW))
}

fn with_claims(p: &Prover, f: impl FnOnce(&mut Value)) -> String {
    let mut c = p.claims("POST", URL, NOW);
    f(&mut c);
    p.sign(&p.header(), &c)
}

#[test]
fn valid_proof_accepted_with_rfc7638_thumbprint() {
    let p = Prover::new(1);
    let c = check(&RustCrypto, &p.proof("POST", URL, NOW), &expected()).unwrap();
    assert_eq!(c.jkt, p.jkt());
    assert_eq!(c.iat, NOW);
    assert!(c.jti.starts_with("jti-"));
}

#[test]
fn rfc7638_thumbprint_example_key() {
    // RFC 7638 §3.1 uses an RSA key; this is the P-256 key of RFC 9449 §4.1 (figure 4) whose
    // thumbprint RFC 9449 §6.1 gives.
    let jwk = json!({
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256"
    });
    assert_eq!(
        crate::keys::thumbprint(&jwk),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}

#[test]
fn d1_wrong_typ_refused() {
    let p = Prover::new(2);
    for typ in [
        json!("jwt"),
        json!("DPOP+JWT"),
        json!("at+jwt"),
        Value::Null,
    ] {
        let proof = with_header(&p, |h| h["typ"] = typ.clone());
        assert_eq!(reason(&proof, &expected()), Reason::Type, "{typ}");
    }
}

#[test]
fn d1_alg_mismatch_refused() {
    let p = Prover::new(3);
    for alg in ["none", "HS256", "RS256", "ES384", "es256"] {
        let proof = with_header(&p, |h| h["alg"] = alg.into());
        assert_eq!(reason(&proof, &expected()), Reason::Algorithm, "{alg}");
    }
    // HS256 keyed with the public key (J2): still refused by the algorithm.
    let input = format!(
        "{}.{}",
        b64(json!({"typ":"dpop+jwt","alg":"HS256","jwk":p.jwk}).to_string()),
        b64(p.claims("POST", URL, NOW).to_string())
    );
    assert_eq!(
        reason(&format!("{input}.{}", b64([1u8; 32])), &expected()),
        Reason::Algorithm
    );
}

#[test]
fn d1_private_key_in_header_refused() {
    let p = Prover::new(4);
    let private = p.private_jwk();
    let proof = with_header(&p, |h| h["jwk"] = private);
    assert_eq!(reason(&proof, &expected()), Reason::Key);
}

#[test]
fn d1_symmetric_key_in_header_refused() {
    let p = Prover::new(5);
    let proof = with_header(&p, |h| {
        h["jwk"] = json!({"kty": "oct", "k": b64([7u8; 32])})
    });
    assert_eq!(reason(&proof, &expected()), Reason::Key);
}

#[test]
fn d1_missing_or_foreign_jwk_refused() {
    let p = Prover::new(6);
    let proof = with_header(&p, |h| {
        h.as_object_mut().unwrap().remove("jwk");
    });
    assert_eq!(reason(&proof, &expected()), Reason::Key);
    // Signed by one key, claiming another: the signature does not verify (J3).
    let other = Prover::new(7);
    let proof = with_header(&p, |h| h["jwk"] = other.jwk.clone());
    assert_eq!(reason(&proof, &expected()), Reason::Signature);
    // Off-curve point.
    let proof = with_header(&p, |h| h["jwk"]["y"] = p.jwk["x"].clone());
    assert_eq!(reason(&proof, &expected()), Reason::Key);
}

#[test]
fn d1_bad_signature_refused() {
    let p = Prover::new(8);
    let proof = p.proof("POST", URL, NOW);
    let (input, _) = proof.rsplit_once('.').unwrap();
    assert_eq!(
        reason(&format!("{input}.{}", b64([0u8; 64])), &expected()),
        Reason::Signature
    );
    // Claims changed after signing.
    let mut parts: Vec<String> = proof.split('.').map(str::to_owned).collect();
    let mut c = p.claims("POST", URL, NOW);
    c["htm"] = "GET".into();
    parts[1] = b64(c.to_string());
    assert_eq!(reason(&parts.join("."), &expected()), Reason::Signature);
}

#[test]
fn d1_missing_jti_refused() {
    let p = Prover::new(9);
    let proof = with_claims(&p, |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    assert_eq!(reason(&proof, &expected()), Reason::Jti);
    let proof = with_claims(&p, |c| c["jti"] = "".into());
    assert_eq!(reason(&proof, &expected()), Reason::Jti);
    let proof = with_claims(&p, |c| c["jti"] = 5.into());
    assert_eq!(reason(&proof, &expected()), Reason::Jti);
}

#[test]
fn d1_htm_mismatch_refused() {
    let p = Prover::new(10);
    for htm in [json!("GET"), json!("post"), Value::Null] {
        let proof = with_claims(&p, |c| c["htm"] = htm.clone());
        assert_eq!(reason(&proof, &expected()), Reason::Method, "{htm}");
    }
}

#[test]
fn d1_htu_mismatch_refused() {
    let p = Prover::new(11);
    for htu in [
        "https://as.example.com/oauth/revoke",
        "https://evil.example.com/oauth/token",
        "http://as.example.com/oauth/token",
        "https://as.example.com:8443/oauth/token",
        "https://as.example.com/oauth/token/",
        "/oauth/token",
        "",
    ] {
        let proof = with_claims(&p, |c| c["htu"] = htu.into());
        assert_eq!(reason(&proof, &expected()), Reason::Url, "{htu}");
    }
}

#[test]
fn htu_ignores_query_and_fragment_and_normalizes() {
    let p = Prover::new(12);
    for htu in [
        "https://as.example.com/oauth/token?x=1",
        "https://as.example.com/oauth/token#frag",
        "HTTPS://AS.EXAMPLE.COM:443/oauth/token",
        "https://as.example.com/oauth/./token",
    ] {
        let proof = with_claims(&p, |c| c["htu"] = htu.into());
        assert!(check(&RustCrypto, &proof, &expected()).is_ok(), "{htu}");
    }
    assert_eq!(normalize_htu("mailto:a@b"), None);
}

#[test]
fn d1_iat_too_old_refused() {
    let p = Prover::new(13);
    assert!(check(&RustCrypto, &p.proof("POST", URL, NOW - 300), &expected()).is_ok());
    assert_eq!(
        reason(&p.proof("POST", URL, NOW - 301), &expected()),
        Reason::TooOld
    );
    let proof = with_claims(&p, |c| {
        c.as_object_mut().unwrap().remove("iat");
    });
    assert_eq!(reason(&proof, &expected()), Reason::TooOld);
}

#[test]
fn d1_iat_in_future_refused() {
    let p = Prover::new(14);
    assert!(check(&RustCrypto, &p.proof("POST", URL, NOW + 60), &expected()).is_ok());
    assert_eq!(
        reason(&p.proof("POST", URL, NOW + 61), &expected()),
        Reason::InFuture
    );
    // The window is the configured jwt_clock_skew_seconds.
    let tight = Expected {
        skew: 10,
        ..expected()
    };
    assert!(check(&RustCrypto, &p.proof("POST", URL, NOW + 10), &tight).is_ok());
    assert_eq!(
        reason(&p.proof("POST", URL, NOW + 11), &tight),
        Reason::InFuture
    );
}

#[test]
fn d1_malformed_proofs_refused() {
    let p = Prover::new(15);
    for bad in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        &"A".repeat(9000),
    ] {
        assert_eq!(reason(bad, &expected()), Reason::Malformed, "{bad:.20}");
    }
    let proof = with_claims(&p, |c| c["iat"] = "yesterday".into());
    assert_eq!(reason(&proof, &expected()), Reason::Malformed);
}

#[test]
fn d1_two_dpop_headers_refused() {
    let mut h = http::HeaderMap::new();
    assert_eq!(single_header(&h).unwrap(), None);
    h.append("dpop", "a.b.c".parse().unwrap());
    assert_eq!(single_header(&h).unwrap(), Some("a.b.c"));
    h.append("dpop", "d.e.f".parse().unwrap());
    assert_eq!(
        single_header(&h).unwrap_err().reason,
        Reason::MultipleProofs
    );
}

#[test]
fn ath_must_match_the_access_token() {
    let p = Prover::new(16);
    let e = Expected {
        method: "GET",
        url: "https://mcp.example.com/mcp",
        access_token: Some("token-a"),
        ..expected()
    };
    let good = p.proof_for_token("GET", "https://mcp.example.com/mcp", NOW, "token-a");
    assert!(check(&RustCrypto, &good, &e).is_ok());
    let other = p.proof_for_token("GET", "https://mcp.example.com/mcp", NOW, "token-b");
    assert_eq!(reason(&other, &e), Reason::AccessTokenHash);
    let none = p.proof("GET", "https://mcp.example.com/mcp", NOW);
    assert_eq!(reason(&none, &e), Reason::AccessTokenHash);
}

#[test]
fn d4_nonce_required_missing_stale_or_forged_refused() {
    let p = Prover::new(17);
    let key = NonceKey::derive(b"master key 0123456789");
    let e = Expected {
        nonce: Some((&key, 300)),
        ..expected()
    };
    assert_eq!(reason(&p.proof("POST", URL, NOW), &e), Reason::Nonce);
    let stale = key.issue(NOW - 301);
    assert_eq!(
        reason(&p.proof_with_nonce("POST", URL, NOW, &stale), &e),
        Reason::Nonce
    );
    let forged = NonceKey::derive(b"another master key 0123").issue(NOW);
    assert_eq!(
        reason(&p.proof_with_nonce("POST", URL, NOW, &forged), &e),
        Reason::Nonce
    );
    let fresh = key.issue(NOW - 10);
    assert!(check(
        &RustCrypto,
        &p.proof_with_nonce("POST", URL, NOW, &fresh),
        &e
    )
    .is_ok());
}

#[test]
fn d2_missing_replay_store_fails_closed() {
    use crate::store::test_store::{test_env_on, TestSql};
    use crate::store::SqlStore;
    use base64::Engine;
    let sql = std::sync::Arc::new(TestSql::memory());
    let (env, _) = test_env_on(sql.clone());
    let cfg = crate::config::Config {
        resources: vec![crate::config::SeedResource {
            uri: "https://mcp.example.com/mcp".into(),
            scopes: vec!["mcp:tools".into()],
            name: None,
            introspection_clients: vec![],
            exchange_clients: vec![],
        }],
        clients: vec![crate::config::SeedClient {
            client_id: "machine".into(),
            client_secret: Some(crate::secret::Secret::new("machine-secret-0123456789")),
            client_name: None,
            redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            scope: Some("mcp:tools".into()),
            token_endpoint_auth_method: Some("client_secret_basic".into()),
            jwks: None,
            jwks_uri: None,
        }],
        ..Default::default()
    };
    use futures::executor::block_on as run;
    let server = run(crate::server::Portcullis::start(env, cfg)).unwrap();
    run(sql.execute("DROP TABLE replay_cache", &[])).unwrap();
    let basic =
        base64::engine::general_purpose::STANDARD.encode("machine:machine-secret-0123456789");
    let proof = Prover::new(25).proof("POST", "http://127.0.0.1:9000/oauth/token", server.now());
    let req = http::Request::builder()
        .method("POST")
        .uri("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .header("dpop", proof)
        .body(bytes::Bytes::from_static(
            b"grant_type=client_credentials&resource=https%3A%2F%2Fmcp.example.com%2Fmcp",
        ))
        .unwrap();
    let resp = run(server.handle(req));
    assert_eq!(resp.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("access_token").is_none(), "{body}");
}
