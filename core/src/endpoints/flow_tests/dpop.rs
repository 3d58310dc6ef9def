//! DPoP at the token endpoint (RFC 9449 §5, §8, §10): SECURITY-CHECKLIST D1 (each refused
//! proof its own test), D2 (replay, fail closed), D3 (bound refresh tokens, codes bound with
//! `dpop_jkt`, clients that require DPoP) and D4 (nonces), plus bound tokens' `cnf.jkt`,
//! `token_type` and introspection. Resource-server verification is in [`resource`].

mod resource;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};

use super::harness::*;
use crate::dpop::test_support::Prover;
use crate::store::repo::audit::{self, AuditFilter};
use crate::store::SqlStore;

const TOKEN_URL: &str = "http://127.0.0.1:9000/oauth/token";

/// A token endpoint answer.
struct Answer {
    status: StatusCode,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    fn error(&self) -> Option<&str> {
        self.body["error"].as_str()
    }
    fn assert_error(&self, status: StatusCode, error: &str) {
        assert_eq!(
            (self.status, self.error()),
            (status, Some(error)),
            "{}",
            self.body
        );
    }
    fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        &self.body
    }
    fn nonce(&self) -> Option<String> {
        self.headers
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CONFIDENTIAL}:{SECRET}"))
    )
}

/// POSTs to the token endpoint as `client` with the given `DPoP` headers.
fn token_req(h: &H, client: &str, form: &[(&str, &str)], proofs: &[&str]) -> Answer {
    let mut form = form.to_vec();
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if client == CONFIDENTIAL {
        b = b.header(header::AUTHORIZATION, basic());
    } else {
        form.push(("client_id", client));
    }
    for p in proofs {
        b = b.header("dpop", *p);
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let resp = h.send(b.body(Bytes::from(body)).unwrap());
    let headers = resp.headers().clone();
    let (status, body) = json_of(resp);
    Answer {
        status,
        body,
        headers,
    }
}

fn client_credentials(h: &H, proofs: &[&str]) -> Answer {
    token_req(
        h,
        CONFIDENTIAL,
        &[("grant_type", "client_credentials"), ("resource", RESOURCE)],
        proofs,
    )
}

fn redeem_with(h: &H, client: &str, code: &str, proofs: &[&str]) -> Answer {
    token_req(
        h,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        proofs,
    )
}

fn refresh_with(h: &H, client: &str, rt: &str, proofs: &[&str]) -> Answer {
    token_req(
        h,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        proofs,
    )
}

fn now(h: &H) -> i64 {
    h.server.now()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&crate::crypto::b64_decode(payload).unwrap()).unwrap()
}

/// The reasons of the `dpop.rejected` events so far, oldest first.
fn rejections(h: &H) -> Vec<String> {
    let rows = block(audit::list(
        h.sql.as_ref(),
        &AuditFilter {
            action: Some("dpop.rejected".into()),
            limit: 100,
            ..Default::default()
        },
    ))
    .unwrap();
    rows.into_iter().rev().filter_map(|r| r.reason).collect()
}

/// A D1 case: the proof is refused with `invalid_dpop_proof`, no token is issued, and the
/// refusal is audited with `reason`.
fn assert_refused(h: &H, proof: &str, reason: &str) {
    let a = client_credentials(h, &[proof]);
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    assert!(a.body.get("access_token").is_none());
    assert_eq!(rejections(h).last().map(String::as_str), Some(reason));
}

fn signed_with_header(p: &Prover, h: &H, f: impl FnOnce(&mut Value)) -> String {
    let mut header = p.header();
    f(&mut header);
    p.sign(&header, &p.claims("POST", TOKEN_URL, now(h)))
}

fn signed_with_claims(p: &Prover, h: &H, f: impl FnOnce(&mut Value)) -> String {
    let mut c = p.claims("POST", TOKEN_URL, now(h));
    f(&mut c);
    p.sign(&p.header(), &c)
}

#[test]
fn dpop_bound_client_credentials_token_carries_cnf_jkt() {
    let h = H::new();
    let p = Prover::new(1);
    let a = client_credentials(&h, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    let body = a.ok();
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(at)["cnf"], json!({ "jkt": p.jkt() }));
    assert!(a.nonce().is_none(), "no nonces unless required");
    let i = h.introspect(at);
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], p.jkt());
}

#[test]
fn without_a_proof_tokens_stay_bearer() {
    let h = H::new();
    let body = client_credentials(&h, &[]).ok().clone();
    assert_eq!(body["token_type"], "Bearer");
    let at = body["access_token"].as_str().unwrap();
    assert!(claims_of(at).get("cnf").is_none());
    let i = h.introspect(at);
    assert_eq!(i["token_type"], "Bearer");
    assert!(i.get("cnf").is_none());
}

#[test]
fn discovery_advertises_dpop_algs() {
    let h = H::new();
    let (_, doc) = json_of(h.get("/.well-known/oauth-authorization-server", ""));
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256"]));
}

// ---- D1: each refused proof ---------------------------------------------------------------

#[test]
fn d1_wrong_typ_refused() {
    let h = H::new();
    let p = Prover::new(2);
    assert_refused(
        &h,
        &signed_with_header(&p, &h, |x| x["typ"] = "JWT".into()),
        "typ",
    );
}

#[test]
fn d1_alg_mismatch_refused() {
    let h = H::new();
    let p = Prover::new(3);
    assert_refused(
        &h,
        &signed_with_header(&p, &h, |x| x["alg"] = "ES384".into()),
        "alg",
    );
    assert_refused(
        &h,
        &signed_with_header(&p, &h, |x| x["alg"] = "none".into()),
        "alg",
    );
}

#[test]
fn d1_private_key_in_header_refused() {
    let h = H::new();
    let p = Prover::new(4);
    let private = p.private_jwk();
    assert_refused(
        &h,
        &signed_with_header(&p, &h, |x| x["jwk"] = private),
        "jwk",
    );
}

#[test]
fn d1_symmetric_key_in_header_refused() {
    let h = H::new();
    let p = Prover::new(5);
    let oct = json!({ "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAx" });
    assert_refused(&h, &signed_with_header(&p, &h, |x| x["jwk"] = oct), "jwk");
}

#[test]
fn d1_signature_by_another_key_refused() {
    let h = H::new();
    let p = Prover::new(6);
    let other = Prover::new(7).jwk;
    assert_refused(
        &h,
        &signed_with_header(&p, &h, |x| x["jwk"] = other),
        "signature",
    );
}

#[test]
fn d1_missing_jti_refused() {
    let h = H::new();
    let p = Prover::new(8);
    let proof = signed_with_claims(&p, &h, |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    assert_refused(&h, &proof, "jti");
}

#[test]
fn d1_htm_mismatch_refused() {
    let h = H::new();
    let p = Prover::new(9);
    assert_refused(&h, &p.proof("GET", TOKEN_URL, now(&h)), "htm");
}

#[test]
fn d1_htu_mismatch_refused() {
    let h = H::new();
    let p = Prover::new(10);
    assert_refused(
        &h,
        &p.proof("POST", "http://127.0.0.1:9000/oauth/introspect", now(&h)),
        "htu",
    );
    assert_refused(
        &h,
        &p.proof("POST", "https://127.0.0.1:9000/oauth/token", now(&h)),
        "htu",
    );
}

#[test]
fn d1_htu_with_query_still_matches() {
    let h = H::new();
    let p = Prover::new(11);
    let proof = p.proof("POST", &format!("{TOKEN_URL}?a=b#c"), now(&h));
    client_credentials(&h, &[&proof]).ok();
}

#[test]
fn d1_iat_too_old_refused() {
    let h = H::new();
    let p = Prover::new(12);
    let max_age = h.server.config().dpop.proof_max_age_secs;
    assert_refused(
        &h,
        &p.proof("POST", TOKEN_URL, now(&h) - max_age - 1),
        "iat_too_old",
    );
    client_credentials(&h, &[&p.proof("POST", TOKEN_URL, now(&h) - max_age)]).ok();
}

#[test]
fn d1_iat_in_future_refused() {
    let h = H::new();
    let p = Prover::new(13);
    assert_refused(
        &h,
        &p.proof("POST", TOKEN_URL, now(&h) + 120),
        "iat_in_future",
    );
}

#[test]
fn d1_two_dpop_headers_refused() {
    let h = H::new();
    let p = Prover::new(14);
    let (a, b) = (
        p.proof("POST", TOKEN_URL, now(&h)),
        p.proof("POST", TOKEN_URL, now(&h)),
    );
    let ans = client_credentials(&h, &[&a, &b]);
    ans.assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    assert_eq!(rejections(&h), vec!["multiple_proofs"]);
}

#[test]
fn d1_refused_proof_does_not_burn_the_code() {
    let h = H::new();
    let p = Prover::new(15);
    let code = h.code(PUBLIC);
    redeem_with(&h, PUBLIC, &code, &[&p.proof("GET", TOKEN_URL, now(&h))])
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    let a = redeem_with(&h, PUBLIC, &code, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    assert_eq!(a.ok()["token_type"], "DPoP");
}

// ---- D2: replay ---------------------------------------------------------------------------

#[test]
fn d2_replayed_proof_refused() {
    let h = H::new();
    let p = Prover::new(20);
    let proof = p.proof("POST", TOKEN_URL, now(&h));
    client_credentials(&h, &[&proof]).ok();
    h.clock.advance(5);
    client_credentials(&h, &[&proof]).assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    assert_eq!(rejections(&h), vec!["replay"]);
}

#[test]
fn d2_replay_is_keyed_by_thumbprint_and_jti() {
    let h = H::new();
    let (a, b) = (Prover::new(21), Prover::new(22));
    let mut claims = a.claims("POST", TOKEN_URL, now(&h));
    claims["jti"] = "same-jti".into();
    client_credentials(&h, &[&a.sign(&a.header(), &claims)]).ok();
    // The same jti from another key is another proof.
    client_credentials(&h, &[&b.sign(&b.header(), &claims)]).ok();
    client_credentials(&h, &[&a.sign(&a.header(), &claims)])
        .assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
}

#[test]
fn d2_replay_refused_until_the_proof_expires() {
    let h = H::new();
    let p = Prover::new(23);
    let max_age = h.server.config().dpop.proof_max_age_secs;
    let proof = p.proof("POST", TOKEN_URL, now(&h));
    client_credentials(&h, &[&proof]).ok();
    // At the last second the proof's iat is acceptable, it is still reserved.
    h.clock.advance(max_age);
    client_credentials(&h, &[&proof]).assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    assert_eq!(rejections(&h), vec!["replay"]);
    h.clock.advance(1);
    assert_refused(&h, &proof, "iat_too_old");
}

#[test]
fn d2_failed_checks_do_not_spend_the_jti() {
    let h = H::new();
    let p = Prover::new(24);
    let mut claims = p.claims("GET", TOKEN_URL, now(&h));
    assert_refused(&h, &p.sign(&p.header(), &claims), "htm");
    claims["htm"] = "POST".into();
    client_credentials(&h, &[&p.sign(&p.header(), &claims)]).ok();
}

#[test]
fn d2_missing_replay_store_fails_closed() {
    let h = H::new();
    let p = Prover::new(25);
    block(h.sql.execute("DROP TABLE replay_cache", &[])).unwrap();
    let a = client_credentials(&h, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    a.assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    assert!(a.body.get("access_token").is_none());
}

// ---- D3: bindings -------------------------------------------------------------------------

fn public_dpop_tokens(h: &H, p: &Prover) -> (String, String) {
    let code = h.code(PUBLIC);
    let a = redeem_with(h, PUBLIC, &code, &[&p.proof("POST", TOKEN_URL, now(h))]);
    let body = a.ok();
    assert_eq!(body["token_type"], "DPoP");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn d3_public_client_refresh_token_bound_to_its_key() {
    let h = H::new();
    let p = Prover::new(30);
    let (at, rt) = public_dpop_tokens(&h, &p);
    assert_eq!(claims_of(&at)["cnf"]["jkt"], p.jkt());
    // Without a proof, or with another key: refused, and the token is not consumed.
    refresh_with(&h, PUBLIC, &rt, &[]).assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let thief = Prover::new(31);
    refresh_with(&h, PUBLIC, &rt, &[&thief.proof("POST", TOKEN_URL, now(&h))])
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(rejections(&h), vec!["missing", "key_mismatch"]);
    // With the key: rotated, and the new refresh token is bound too.
    let a = refresh_with(&h, PUBLIC, &rt, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    let body = a.ok().clone();
    assert_eq!(body["token_type"], "DPoP");
    let at2 = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(at2)["cnf"]["jkt"], p.jkt());
    let rt2 = body["refresh_token"].as_str().unwrap();
    refresh_with(&h, PUBLIC, rt2, &[]).assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    refresh_with(&h, PUBLIC, rt2, &[&p.proof("POST", TOKEN_URL, now(&h))]).ok();
}

#[test]
fn d3_confidential_refresh_token_not_key_bound() {
    let h = H::new();
    let p = Prover::new(32);
    let code = h.code(CONFIDENTIAL);
    let a = redeem_with(
        &h,
        CONFIDENTIAL,
        &code,
        &[&p.proof("POST", TOKEN_URL, now(&h))],
    );
    let rt = a.ok()["refresh_token"].as_str().unwrap().to_owned();
    // No proof: a bearer token. Another key: a token bound to that key.
    let a = refresh_with(&h, CONFIDENTIAL, &rt, &[]);
    assert_eq!(a.ok()["token_type"], "Bearer");
    let rt2 = a.body["refresh_token"].as_str().unwrap().to_owned();
    let q = Prover::new(33);
    let a = refresh_with(
        &h,
        CONFIDENTIAL,
        &rt2,
        &[&q.proof("POST", TOKEN_URL, now(&h))],
    );
    let at = a.ok()["access_token"].as_str().unwrap();
    assert_eq!(claims_of(at)["cnf"]["jkt"], q.jkt());
}

#[test]
fn d3_public_client_without_dpop_gets_unbound_refresh_token() {
    let h = H::new();
    let code = h.code(PUBLIC);
    let (_, body) = h.redeem(PUBLIC, &code);
    assert_eq!(body["token_type"], "Bearer");
    let rt = body["refresh_token"].as_str().unwrap();
    refresh_with(&h, PUBLIC, rt, &[]).ok();
}

#[test]
fn dpop_jkt_at_authorize_binds_the_code() {
    let h = H::new();
    let p = Prover::new(34);
    let url = h.authorize(PUBLIC, &[("dpop_jkt", &p.jkt())], true);
    let code = query(&url, "code").unwrap();
    redeem_with(&h, PUBLIC, &code, &[]).assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let other = Prover::new(35);
    redeem_with(
        &h,
        PUBLIC,
        &code,
        &[&other.proof("POST", TOKEN_URL, now(&h))],
    )
    .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // Neither attempt burned the code.
    let a = redeem_with(&h, PUBLIC, &code, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    let at = a.ok()["access_token"].as_str().unwrap();
    assert_eq!(claims_of(at)["cnf"]["jkt"], p.jkt());
}

#[test]
fn dpop_jkt_at_authorize_must_be_a_thumbprint() {
    let h = H::new();
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", PUBLIC)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", RESOURCE)
        .append_pair("state", "s1")
        .append_pair("dpop_jkt", "not a thumbprint")
        .finish();
    let resp = h.get(&format!("/oauth/authorize?{q}"), "");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let url = url::Url::parse(&location(&resp)).unwrap();
    assert_eq!(query(&url, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&url, "state").as_deref(), Some("s1"));
}

#[test]
fn dpop_bound_access_tokens_client_cannot_get_bearer_tokens() {
    let h = H::new();
    let resp = h.send(
        Request::builder()
            .method(Method::POST)
            .uri("/oauth/register")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(
                json!({
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                    "dpop_bound_access_tokens": true,
                })
                .to_string(),
            ))
            .unwrap(),
    );
    let (status, reg) = json_of(resp);
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["dpop_bound_access_tokens"], true);
    let id = reg["client_id"].as_str().unwrap();
    let code = h.code(id);
    redeem_with(&h, id, &code, &[]).assert_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof");
    assert_eq!(rejections(&h), vec!["missing"]);
    let p = Prover::new(36);
    let a = redeem_with(&h, id, &code, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    assert_eq!(a.ok()["token_type"], "DPoP");
}

// ---- D4: nonces ---------------------------------------------------------------------------

fn nonce_server(master: &str) -> H {
    let mut cfg = config();
    cfg.dpop.require_nonce = true;
    cfg.master_key = Some(crate::secret::Secret::new(master));
    H::with_config(cfg)
}

#[test]
fn d4_missing_nonce_gets_use_dpop_nonce_with_header() {
    let h = nonce_server("nonce master key 0123456789");
    let p = Prover::new(40);
    let a = client_credentials(&h, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    a.assert_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
    let nonce = a.nonce().expect("DPoP-Nonce header");
    assert_eq!(rejections(&h), vec!["nonce"]);
    // The retry with the nonce succeeds and carries a fresh nonce.
    let a = client_credentials(
        &h,
        &[&p.proof_with_nonce("POST", TOKEN_URL, now(&h), &nonce)],
    );
    assert_eq!(a.ok()["token_type"], "DPoP");
    assert!(a.nonce().is_some());
}

#[test]
fn d4_stale_nonce_refused() {
    let h = nonce_server("nonce master key 0123456789");
    let p = Prover::new(41);
    let a = client_credentials(&h, &[&p.proof("POST", TOKEN_URL, now(&h))]);
    let nonce = a.nonce().unwrap();
    h.clock
        .advance(h.server.config().dpop.nonce_lifetime_secs + 1);
    let a = client_credentials(
        &h,
        &[&p.proof_with_nonce("POST", TOKEN_URL, now(&h), &nonce)],
    );
    a.assert_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
    let fresh = a.nonce().unwrap();
    assert_ne!(fresh, nonce);
    client_credentials(
        &h,
        &[&p.proof_with_nonce("POST", TOKEN_URL, now(&h), &fresh)],
    )
    .ok();
}

#[test]
fn d4_nonce_works_across_instances_sharing_the_master_key() {
    let a = nonce_server("shared master key 0123456789");
    let b = nonce_server("shared master key 0123456789");
    let c = nonce_server("different master key 0123456");
    let p = Prover::new(42);
    let nonce = client_credentials(&a, &[&p.proof("POST", TOKEN_URL, now(&a))])
        .nonce()
        .unwrap();
    client_credentials(
        &b,
        &[&p.proof_with_nonce("POST", TOKEN_URL, now(&b), &nonce)],
    )
    .ok();
    client_credentials(
        &c,
        &[&p.proof_with_nonce("POST", TOKEN_URL, now(&c), &nonce)],
    )
    .assert_error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
}

#[test]
fn d4_bearer_requests_unaffected_by_required_nonces() {
    let h = nonce_server("nonce master key 0123456789");
    let a = client_credentials(&h, &[]);
    assert_eq!(a.ok()["token_type"], "Bearer");
    assert!(a.nonce().is_none());
}
