//! Flow tests for the JWT bearer grant with ID-JAG assertions (RFC 7523 §2.1,
//! draft-ietf-oauth-identity-assertion-authz-grant): SECURITY-CHECKLIST X5 (each violation
//! refused, refused assertions do not spend their `jti`), policies, subject mapping, scope
//! narrowing, remote JWKS (fetched, cached, refreshed on an unknown `kid`), the admin API
//! and the configuration seeds. This file holds the test IdP, the helpers and the X5 cases;
//! [`registry`] the policy, mapping, key-fetching, admin and seed cases.

mod registry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::harness::*;
use crate::config::{Config, SeedClient, SeedIdp, SeedIdpPolicy};
use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use crate::crypto::{b64, CryptoProvider, RustCrypto};
use crate::endpoints::token::JWT_BEARER;
use crate::runtime::{FetchError, FetchResponse, Fetcher, SeededRng};
use crate::server::Portcullis;
use crate::store::repo;
use crate::store::test_store::{test_env_on, TestSql};

const IDP: &str = "https://idp.example.com";
const AGENT: &str = "agent-app";
const AGENT_SECRET: &str = "agent-secret-0123456789abcdef";
const OTHER_AGENT: &str = "other-agent";
const TYP: &str = "oauth-id-jag+jwt";

/// A test IdP: a P-256 key and its `kid`.
struct TestIdp {
    scalar: [u8; 32],
    kid: String,
}

impl TestIdp {
    fn new(seed: u64, kid: &str) -> Self {
        Self {
            scalar: generate_scalar(&SeededRng::new(seed)),
            kid: kid.into(),
        }
    }

    fn jwk(&self) -> Value {
        let mut jwk = crate::keys::public_jwk(&public_key_sec1(&self.scalar).unwrap());
        jwk["kid"] = self.kid.clone().into();
        jwk["alg"] = "ES256".into();
        jwk
    }

    fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let signer = RustCrypto.es256_signer(&self.scalar).unwrap();
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = block(signer.sign(input.as_bytes())).unwrap();
        format!("{input}.{}", b64(sig))
    }

    /// An ID-JAG with the standard header.
    fn sign(&self, claims: &Value) -> String {
        self.sign_with(
            &json!({ "alg": "ES256", "typ": TYP, "kid": self.kid }),
            claims,
        )
    }
}

fn next_jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}", N.fetch_add(1, Ordering::SeqCst))
}

/// Valid ID-JAG claims for the agent client at the current time.
fn claims(h: &H) -> Value {
    let now = h.server.now();
    json!({
        "iss": IDP,
        "sub": "employee-42",
        "aud": h.server.issuer(),
        "client_id": AGENT,
        "jti": next_jti(),
        "iat": now,
        "exp": now + 300,
        "resource": RESOURCE,
        "scope": "mcp:tools mcp:resources",
    })
}

fn agent_client(id: &str) -> SeedClient {
    // From JSON, so settings other engineers add to `SeedClient` keep their defaults.
    serde_json::from_value(json!({
        "client_id": id,
        "client_secret": AGENT_SECRET,
        "client_name": "Enterprise agent",
        "redirect_uris": [],
        "grant_types": [JWT_BEARER],
        "token_endpoint_auth_method": "client_secret_basic",
    }))
    .expect("a valid seed client")
}

fn jb_config(idp: Option<&TestIdp>, jwks_uri: Option<&str>) -> Config {
    let mut cfg = config();
    cfg.clients.push(agent_client(AGENT));
    cfg.clients.push(agent_client(OTHER_AGENT));
    cfg.idps.push(SeedIdp {
        issuer: IDP.into(),
        jwks_uri: jwks_uri.map(str::to_owned),
        jwks: idp.map(TestIdp::jwks),
    });
    cfg.idp_policies.push(SeedIdpPolicy {
        issuer: IDP.into(),
        client_id: AGENT.into(),
        resource: RESOURCE.into(),
        scopes: vec!["mcp:tools".into(), "mcp:resources".into()],
    });
    cfg
}

fn setup() -> (H, TestIdp) {
    let idp = TestIdp::new(101, "idp-key-1");
    let h = H::with_config(jb_config(Some(&idp), None));
    (h, idp)
}

fn basic(id: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{AGENT_SECRET}"))
    )
}

/// The JWT bearer grant as `client`.
fn grant_as(h: &H, client: &str, assertion: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    let auth = basic(client);
    json_of(h.post_form("/oauth/token", &form, &[("authorization", &auth)]))
}

fn grant(h: &H, assertion: &str) -> (StatusCode, Value) {
    grant_as(h, AGENT, assertion, &[])
}

fn payload(jwt: &str) -> Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&crate::crypto::b64_decode(p).unwrap()).unwrap()
}

/// Asserts `invalid_grant` (400) and returns the description.
#[track_caller]
fn assert_invalid_grant(r: (StatusCode, Value), case: &str) -> String {
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{case}: {}", r.1);
    assert_eq!(r.1["error"], "invalid_grant", "{case}: {}", r.1);
    r.1["error_description"].as_str().unwrap_or("").to_owned()
}

fn audit(h: &H, outcome: &str) -> Vec<repo::audit::AuditRow> {
    block(repo::audit::list(
        h.server.env().sql.as_ref(),
        &repo::audit::AuditFilter {
            action: Some("token.jwt_bearer".into()),
            outcome: Some(outcome.into()),
            limit: 100,
            ..Default::default()
        },
    ))
    .unwrap()
}

fn admin(h: &H, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(path);
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    json_of(block(crate::admin::route_trusted(
        &h.server,
        b.body(body).unwrap(),
    )))
}

#[test]
fn jwt_bearer_issues_an_access_token_for_the_idp_user() {
    let (h, idp) = setup();
    let c = claims(&h);
    let (status, body) = grant(&h, &idp.sign(&c));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:tools mcp:resources");
    assert!(body.get("refresh_token").is_none(), "no refresh token");
    assert_eq!(body["expires_in"], 300, "capped by the assertion's exp");
    let at = payload(body["access_token"].as_str().unwrap());
    let sub = crate::idp::automatic_subject(IDP, "employee-42");
    assert_eq!(at["sub"], sub.as_str());
    assert!(sub.starts_with("idp:"));
    assert_eq!(at["aud"], RESOURCE);
    assert_eq!(at["client_id"], AGENT);
    assert_eq!(at["iss"], h.server.issuer());
    assert_eq!(
        at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(),
        300
    );
    let (_, intro) = json_of(h.post_form(
        "/oauth/introspect",
        &[("token", body["access_token"].as_str().unwrap())],
        &[("authorization", &basic(AGENT))],
    ));
    assert_eq!(intro["active"], true, "{intro}");

    let ok = audit(&h, "success");
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].subject.as_deref(), Some(sub.as_str()));
    let d = ok[0].detail.as_ref().unwrap();
    assert_eq!(d["issuer"], IDP);
    assert_eq!(d["assertion_jti"], c["jti"]);
}

#[test]
fn jwt_bearer_lifetime_is_the_shorter_of_ttl_and_assertion() {
    let (h, idp) = setup();
    let mut c = claims(&h);
    c["exp"] = (h.server.now() + 3600).into();
    let (status, body) = grant(&h, &idp.sign(&c));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], h.server.config().access_token_ttl);
    let mut c = claims(&h);
    c["exp"] = (h.server.now() + 20).into();
    let (_, body) = grant(&h, &idp.sign(&c));
    assert_eq!(body["expires_in"], 20);
}

#[test]
fn x5_untrusted_issuer_refused() {
    let (h, idp) = setup();
    for iss in [
        json!("https://evil.example.com"),
        json!("https://idp.example.com/"),
        json!("https://IDP.example.com"),
        json!(""),
        json!(null),
        json!(["https://idp.example.com"]),
    ] {
        let mut c = claims(&h);
        c["iss"] = iss.clone();
        assert_invalid_grant(grant(&h, &idp.sign(&c)), &format!("iss {iss}"));
    }
    let denied = audit(&h, "failure");
    assert!(denied
        .iter()
        .any(|e| e.reason.as_deref() == Some("untrusted_issuer")
            && e.detail.as_ref().unwrap()["issuer"] == "https://evil.example.com"));
}

#[test]
fn x5_wrong_typ_refused() {
    let (h, idp) = setup();
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("OAUTH-ID-JAG+JWT"),
        json!("application/oauth-id-jag+jwt"),
        json!("oauth-id-jag+jwt "),
        json!(null),
    ] {
        let header = json!({ "alg": "ES256", "typ": typ, "kid": idp.kid });
        let t = idp.sign_with(&header, &claims(&h));
        let why = assert_invalid_grant(grant(&h, &t), &format!("typ {typ}"));
        assert!(why.contains("typ"), "{why}");
    }
    let t = idp.sign_with(&json!({ "alg": "ES256", "kid": idp.kid }), &claims(&h));
    assert_invalid_grant(grant(&h, &t), "no typ");
}

#[test]
fn x5_aud_not_our_issuer_refused() {
    let (h, idp) = setup();
    let issuer = h.server.issuer().to_owned();
    for aud in [
        json!("https://other-as.example.com"),
        json!(format!("{issuer}/")),
        json!(format!("{issuer}/oauth/token")),
        json!(RESOURCE),
        json!(["https://other-as.example.com"]),
        json!([]),
        json!(null),
        json!(7),
    ] {
        let mut c = claims(&h);
        c["aud"] = aud.clone();
        let why = assert_invalid_grant(grant(&h, &idp.sign(&c)), &format!("aud {aud}"));
        assert!(why.contains("aud"), "{why}");
    }
    // An array containing our issuer is fine.
    let mut c = claims(&h);
    c["aud"] = json!(["https://other-as.example.com", issuer]);
    assert_eq!(grant(&h, &idp.sign(&c)).0, StatusCode::OK);
}

#[test]
fn x5_expired_or_missing_exp_refused() {
    let (h, idp) = setup();
    let now = h.server.now();
    for exp in [json!(now), json!(now - 1), json!(null), json!("soon")] {
        let mut c = claims(&h);
        if exp.is_null() {
            c.as_object_mut().unwrap().remove("exp");
        } else {
            c["exp"] = exp.clone();
        }
        assert_invalid_grant(grant(&h, &idp.sign(&c)), &format!("exp {exp}"));
    }
    // One second before expiry it is still accepted.
    let mut c = claims(&h);
    c["exp"] = (now + 1).into();
    assert_eq!(grant(&h, &idp.sign(&c)).0, StatusCode::OK);
}

#[test]
fn x5_too_old_future_or_missing_iat_refused() {
    let (h, idp) = setup();
    let now = h.server.now();
    let cases = [
        (json!(now - 301), "more than 300 seconds ago"),
        (json!(now + 61), "future"),
        (json!(null), "no 'iat'"),
    ];
    for (iat, want) in cases {
        let mut c = claims(&h);
        if iat.is_null() {
            c.as_object_mut().unwrap().remove("iat");
        } else {
            c["iat"] = iat.clone();
        }
        let why = assert_invalid_grant(grant(&h, &idp.sign(&c)), &format!("iat {iat}"));
        assert!(why.contains(want), "{why}");
    }
    // The edges: exactly the maximum age, and within the skew.
    for iat in [now - 300, now + 60] {
        let mut c = claims(&h);
        c["iat"] = iat.into();
        assert_eq!(grant(&h, &idp.sign(&c)).0, StatusCode::OK, "iat {iat}");
    }
    let mut c = claims(&h);
    c["nbf"] = (now + 61).into();
    assert_invalid_grant(grant(&h, &idp.sign(&c)), "nbf in the future");
}

#[test]
fn x5_missing_claims_refused() {
    let (h, idp) = setup();
    for claim in ["sub", "jti", "client_id", "iss"] {
        for value in [None, Some(json!("")), Some(json!(5))] {
            let mut c = claims(&h);
            match &value {
                None => {
                    c.as_object_mut().unwrap().remove(claim);
                }
                Some(v) => c[claim] = v.clone(),
            }
            assert_invalid_grant(grant(&h, &idp.sign(&c)), &format!("{claim} = {value:?}"));
        }
    }
}

#[test]
fn x5_assertion_client_id_must_be_the_authenticated_client() {
    let (h, idp) = setup();
    let mut c = claims(&h);
    c["client_id"] = OTHER_AGENT.into();
    let why = assert_invalid_grant(grant(&h, &idp.sign(&c)), "other client_id");
    assert!(why.contains("another client"), "{why}");
    // The other client, authenticated as itself, presenting an assertion for the agent.
    let c = claims(&h);
    assert_invalid_grant(
        grant_as(&h, OTHER_AGENT, &idp.sign(&c), &[]),
        "assertion for another client",
    );
    let mut c = claims(&h);
    c["client_id"] = AGENT.to_uppercase().into();
    assert_invalid_grant(grant(&h, &idp.sign(&c)), "case-changed client_id");
}

#[test]
fn x5_signature_must_verify_with_the_idp_key() {
    let (h, idp) = setup();
    let impostor = TestIdp::new(202, "idp-key-1");
    let why = assert_invalid_grant(grant(&h, &impostor.sign(&claims(&h))), "wrong key");
    assert!(why.contains("signature"), "{why}");
    let unknown = TestIdp::new(101, "other-kid");
    assert_invalid_grant(grant(&h, &unknown.sign(&claims(&h))), "unknown kid");
    // Without a kid, the IdP's only key is used.
    let t = idp.sign_with(&json!({ "alg": "ES256", "typ": TYP }), &claims(&h));
    assert_eq!(grant(&h, &t).0, StatusCode::OK);
    // J1: alg none; J2: HS256; tampered payload.
    let none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": TYP, "kid": idp.kid }).to_string()),
        b64(claims(&h).to_string())
    );
    assert_invalid_grant(grant(&h, &none), "alg none");
    let hs = format!(
        "{}.{}.{}",
        b64(json!({ "alg": "HS256", "typ": TYP, "kid": idp.kid }).to_string()),
        b64(claims(&h).to_string()),
        b64([7u8; 32])
    );
    assert_invalid_grant(grant(&h, &hs), "alg HS256");
    let good = idp.sign(&claims(&h));
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged = claims(&h);
    forged["sub"] = "ceo".into();
    let tampered = format!("{}.{}.{}", parts[0], b64(forged.to_string()), parts[2]);
    assert_invalid_grant(grant(&h, &tampered), "tampered payload");
    for junk in ["", "a.b", "a.b.c", "...."] {
        let r = grant(&h, junk);
        assert_eq!(r.0, StatusCode::BAD_REQUEST, "{junk:?}: {}", r.1);
    }
}

#[test]
fn x5_replayed_jti_refused() {
    let (h, idp) = setup();
    let t = idp.sign(&claims(&h));
    assert_eq!(grant(&h, &t).0, StatusCode::OK);
    let why = assert_invalid_grant(grant(&h, &t), "replay");
    assert!(why.contains("already been used"), "{why}");
    h.clock.advance(200);
    assert_invalid_grant(grant(&h, &t), "replay later");
    // Another assertion with the same jti (re-signed, other claims) is a replay too.
    let mut c = payload(&t);
    c["iat"] = h.server.now().into();
    c["exp"] = (h.server.now() + 100).into();
    assert_invalid_grant(grant(&h, &idp.sign(&c)), "same jti, new assertion");
    assert!(audit(&h, "failure")
        .iter()
        .any(|e| e.reason.as_deref() == Some("replayed")));
}

#[test]
fn x5_failed_checks_do_not_spend_the_jti() {
    let (h, idp) = setup();
    let valid = claims(&h);
    let now = h.server.now();
    let impostor = TestIdp::new(303, "idp-key-1");
    type Edit = fn(&mut Value, i64);
    let edits: Vec<(&str, Edit)> = vec![
        ("aud", |c, _| {
            c["aud"] = "https://other-as.example.com".into()
        }),
        ("exp", |c, now| c["exp"] = now.into()),
        ("iat old", |c, now| c["iat"] = (now - 1000).into()),
        ("iat future", |c, now| c["iat"] = (now + 1000).into()),
        ("sub", |c, _| {
            c.as_object_mut().unwrap().remove("sub");
        }),
        ("client_id", |c, _| c["client_id"] = OTHER_AGENT.into()),
        ("resource", |c, _| {
            c["resource"] = "https://unregistered.example.com/mcp".into()
        }),
        ("scope", |c, _| c["scope"] = "admin:all".into()),
    ];
    for (name, edit) in edits {
        let mut c = valid.clone();
        edit(&mut c, now);
        let r = grant(&h, &idp.sign(&c));
        assert_ne!(r.0, StatusCode::OK, "{name}: {}", r.1);
    }
    let mut typ = idp.sign_with(
        &json!({ "alg": "ES256", "typ": "JWT", "kid": idp.kid }),
        &valid,
    );
    assert_invalid_grant(grant(&h, &typ), "typ");
    typ = impostor.sign(&valid);
    assert_invalid_grant(grant(&h, &typ), "signature");
    let r = grant_as(&h, OTHER_AGENT, &idp.sign(&valid), &[]);
    assert_ne!(r.0, StatusCode::OK, "other client: {}", r.1);
    let r = grant_as(
        &h,
        AGENT,
        &idp.sign(&valid),
        &[("resource", "https://mcp.example.com/other")],
    );
    assert_eq!(r.1["error"], "invalid_target", "{}", r.1);

    // The same jti, corrected: accepted once, then a replay.
    let t = idp.sign(&valid);
    let (status, body) = grant(&h, &t);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_invalid_grant(grant(&h, &t), "replay after success");
}
