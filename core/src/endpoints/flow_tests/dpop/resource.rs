//! Resource-server verification ([`crate::resource_server`]): bearer and DPoP schemes
//! (RFC 6750 §2.1, RFC 9449 §7), D3 (a bound token presented as bearer is refused), `ath`
//! and key binding, replay of a resource proof (D2), nonces at the resource (D4, RFC 9449
//! §9), audience (M2), scope (M4) and the `WWW-Authenticate` challenges.

use http::{HeaderMap, HeaderValue, StatusCode};

use super::*;
use crate::resource_server::{verify, Denied, Presented, Requirements};

const MCP_URL: &str = "https://mcp.example.com/mcp";
const MD: &str = "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp";

fn needs() -> Requirements<'static> {
    Requirements {
        resource: RESOURCE,
        scopes: &[],
        resource_metadata: Some(MD),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn call(
    h: &H,
    pairs: &[(&str, &str)],
    needs: &Requirements<'_>,
) -> Result<crate::resource_server::Authorized, Denied> {
    let hm = headers(pairs);
    block(verify(
        &h.server,
        &Presented {
            method: "POST",
            url: MCP_URL,
            headers: &hm,
        },
        needs,
    ))
}

fn denied(h: &H, pairs: &[(&str, &str)]) -> Denied {
    call(h, pairs, &needs()).expect_err("the request must be refused")
}

/// A DPoP-bound access token for `p` (client_credentials).
fn bound_token(h: &H, p: &Prover) -> String {
    let a = client_credentials(h, &[&p.proof("POST", TOKEN_URL, now(h))]);
    a.ok()["access_token"].as_str().unwrap().to_owned()
}

fn bearer_token(h: &H) -> String {
    client_credentials(h, &[]).ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn dpop_auth(token: &str) -> String {
    format!("DPoP {token}")
}

#[test]
fn bearer_token_accepted_as_bearer() {
    let h = H::new();
    let at = bearer_token(&h);
    let ok = call(&h, &[("authorization", &format!("Bearer {at}"))], &needs()).unwrap();
    assert_eq!(ok.claims.aud, RESOURCE);
    assert_eq!(ok.jkt, None);
}

#[test]
fn dpop_token_with_its_proof_accepted() {
    let h = H::new();
    let p = Prover::new(50);
    let at = bound_token(&h, &p);
    let proof = p.proof_for_token("POST", MCP_URL, now(&h), &at);
    let ok = call(
        &h,
        &[("authorization", &dpop_auth(&at)), ("dpop", &proof)],
        &needs(),
    )
    .unwrap();
    assert_eq!(ok.jkt.as_deref(), Some(p.jkt().as_str()));
    assert_eq!(ok.claims.cnf.unwrap().jkt, p.jkt());
}

#[test]
fn d3_dpop_bound_token_presented_as_bearer_refused() {
    let h = H::new();
    let p = Prover::new(51);
    let at = bound_token(&h, &p);
    let d = denied(&h, &[("authorization", &format!("Bearer {at}"))]);
    assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    assert_eq!(d.error, Some("invalid_token"));
    assert!(
        d.challenges[1].starts_with("DPoP algs=\"ES256\""),
        "{:?}",
        d.challenges
    );
    assert!(d.challenges[1].contains("error=\"invalid_token\""));
    // Even with a valid proof alongside, the bearer scheme is refused.
    let proof = p.proof_for_token("POST", MCP_URL, now(&h), &at);
    let d = denied(
        &h,
        &[("authorization", &format!("Bearer {at}")), ("dpop", &proof)],
    );
    assert_eq!(d.error, Some("invalid_token"));
    assert_eq!(rejections(&h), vec!["missing", "missing"]);
}

#[test]
fn unbound_token_with_dpop_scheme_refused() {
    let h = H::new();
    let p = Prover::new(52);
    let at = bearer_token(&h);
    let proof = p.proof_for_token("POST", MCP_URL, now(&h), &at);
    let d = denied(&h, &[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn dpop_scheme_without_proof_refused() {
    let h = H::new();
    let p = Prover::new(53);
    let at = bound_token(&h, &p);
    let d = denied(&h, &[("authorization", &dpop_auth(&at))]);
    assert_eq!(
        (d.status, d.error),
        (StatusCode::UNAUTHORIZED, Some("invalid_dpop_proof"))
    );
}

#[test]
fn proof_by_another_key_refused() {
    let h = H::new();
    let p = Prover::new(54);
    let at = bound_token(&h, &p);
    let thief = Prover::new(55);
    let proof = thief.proof_for_token("POST", MCP_URL, now(&h), &at);
    let d = denied(&h, &[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_token"));
    assert_eq!(rejections(&h), vec!["key_mismatch"]);
}

#[test]
fn proof_without_matching_ath_refused() {
    let h = H::new();
    let p = Prover::new(56);
    let at = bound_token(&h, &p);
    let proof = p.proof("POST", MCP_URL, now(&h));
    let d = denied(&h, &[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert!(d.challenges[1].contains("error=\"invalid_dpop_proof\""));
    assert_eq!(rejections(&h), vec!["ath"]);
}

#[test]
fn d1_resource_proof_htu_and_htm_checked() {
    let h = H::new();
    let p = Prover::new(57);
    let at = bound_token(&h, &p);
    let proof = p.proof_for_token("POST", "https://other.example.com/mcp", now(&h), &at);
    let d = denied(&h, &[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    let proof = p.proof_for_token("GET", MCP_URL, now(&h), &at);
    let d = denied(&h, &[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert_eq!(rejections(&h), vec!["htu", "htm"]);
}

#[test]
fn d2_resource_proof_replay_refused() {
    let h = H::new();
    let p = Prover::new(58);
    let at = bound_token(&h, &p);
    let proof = p.proof_for_token("POST", MCP_URL, now(&h), &at);
    let auth = dpop_auth(&at);
    let pairs = [("authorization", auth.as_str()), ("dpop", proof.as_str())];
    call(&h, &pairs, &needs()).unwrap();
    let d = denied(&h, &pairs);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert_eq!(rejections(&h), vec!["replay"]);
}

#[test]
fn d2_refused_resource_request_does_not_spend_the_proof() {
    let h = H::new();
    let p = Prover::new(59);
    let at = bound_token(&h, &p);
    let proof = p.proof_for_token("POST", MCP_URL, now(&h), &at);
    let auth = dpop_auth(&at);
    let pairs = [("authorization", auth.as_str()), ("dpop", proof.as_str())];
    let scoped = Requirements {
        scopes: &["admin:all"],
        ..needs()
    };
    let d = call(&h, &pairs, &scoped).unwrap_err();
    assert_eq!(d.error, Some("insufficient_scope"));
    call(&h, &pairs, &needs()).unwrap();
}

#[test]
fn d4_resource_nonce_challenge_round_trips() {
    let h = nonce_server("nonce master key 0123456789");
    let p = Prover::new(60);
    let nonce = client_credentials(&h, &[&p.proof("POST", TOKEN_URL, now(&h))])
        .nonce()
        .unwrap();
    let at = bound_token_with_nonce(&h, &p, &nonce);
    let auth = dpop_auth(&at);
    let proof = p.proof_for_token("POST", MCP_URL, now(&h), &at);
    let d = denied(&h, &[("authorization", &auth), ("dpop", &proof)]);
    assert_eq!(
        (d.status, d.error),
        (StatusCode::UNAUTHORIZED, Some("use_dpop_nonce"))
    );
    assert!(d.challenges[1].contains("error=\"use_dpop_nonce\""));
    let (name, nonce) = d.headers.iter().find(|(n, _)| n == "dpop-nonce").unwrap();
    assert_eq!(name, "dpop-nonce");
    let mut c = p.claims("POST", MCP_URL, now(&h));
    c["ath"] = crate::dpop::proof::access_token_hash(&at).into();
    c["nonce"] = nonce.as_str().into();
    let proof = p.sign(&p.header(), &c);
    let ok = call(&h, &[("authorization", &auth), ("dpop", &proof)], &needs()).unwrap();
    assert!(ok.response_headers.iter().any(|(n, _)| n == "dpop-nonce"));
}

fn bound_token_with_nonce(h: &H, p: &Prover, nonce: &str) -> String {
    let a = client_credentials(h, &[&p.proof_with_nonce("POST", TOKEN_URL, now(h), nonce)]);
    a.ok()["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn no_credentials_challenge_names_both_schemes_and_metadata() {
    let h = H::new();
    assert_eq!(
        crate::resource_server::resource_metadata_url(&h.server, RESOURCE).as_deref(),
        Some(MD)
    );
    let d = denied(&h, &[]);
    assert_eq!((d.status, d.error), (StatusCode::UNAUTHORIZED, None));
    assert_eq!(
        d.challenges,
        vec![
            format!("Bearer realm=\"portcullis\", resource_metadata=\"{MD}\""),
            format!("DPoP algs=\"ES256\", resource_metadata=\"{MD}\""),
        ]
    );
    let resp = d.into_response();
    assert_eq!(resp.headers().get_all("www-authenticate").iter().count(), 2);
}

#[test]
fn m2_token_for_another_resource_refused() {
    let h = H::new();
    let at = bearer_token(&h);
    let other = Requirements {
        resource: "https://other.example.com/mcp",
        ..needs()
    };
    let d = call(&h, &[("authorization", &format!("Bearer {at}"))], &other).unwrap_err();
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn m4_insufficient_scope_lists_the_needed_scopes() {
    let h = H::new();
    let at = bearer_token(&h);
    let scoped = Requirements {
        scopes: &["mcp:tools", "admin:all"],
        ..needs()
    };
    let d = call(&h, &[("authorization", &format!("Bearer {at}"))], &scoped).unwrap_err();
    assert_eq!(
        (d.status, d.error),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert!(d.challenges[0].contains("scope=\"mcp:tools admin:all\""));
}

#[test]
fn malformed_authorization_refused() {
    let h = H::new();
    let d = denied(&h, &[("authorization", "Bearer a b")]);
    assert_eq!(
        (d.status, d.error),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let d = denied(
        &h,
        &[("authorization", "Bearer x"), ("authorization", "Bearer y")],
    );
    assert_eq!(d.error, Some("invalid_request"));
    let d = denied(&h, &[("authorization", "Bearer not-a-jwt")]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn revoked_token_refused() {
    let h = H::new();
    let code = h.code(CONFIDENTIAL);
    let (_, body) = h.redeem(CONFIDENTIAL, &code);
    let at = body["access_token"].as_str().unwrap();
    call(&h, &[("authorization", &format!("Bearer {at}"))], &needs()).unwrap();
    let resp = h.post_form(
        "/oauth/revoke",
        &[("token", at)],
        &[("authorization", &basic())],
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let d = denied(&h, &[("authorization", &format!("Bearer {at}"))]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn verify_request_takes_an_http_request() {
    let h = H::new();
    let p = Prover::new(61);
    let at = bound_token(&h, &p);
    let proof = p.proof_for_token("GET", "https://mcp.example.com/mcp", now(&h), &at);
    let req = http::Request::builder()
        .method("GET")
        .uri("/mcp?session=1")
        .header("authorization", dpop_auth(&at))
        .header("dpop", proof)
        .body(())
        .unwrap();
    let ok = block(crate::resource_server::verify_request(
        &h.server,
        &req,
        "https://mcp.example.com/mcp?session=1",
        &needs(),
    ))
    .unwrap();
    assert_eq!(ok.claims.sub, CONFIDENTIAL);
    // The same proof again is a replay; the refusal as a response: 401 and a JSON error.
    let resp = block(crate::resource_server::verify_request(
        &h.server,
        &req,
        "https://mcp.example.com/mcp",
        &needs(),
    ))
    .unwrap_err()
    .into_response();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, body) = json_of(resp);
    assert_eq!(body["error"], "invalid_dpop_proof");
}
