//! Unit tests of [`crate::resource_server`] on a started server (fixed clock, seeded RNG,
//! in-memory store), its tokens obtained from the token endpoint through
//! [`Portcullis::handle`]: the bearer and DPoP schemes (RFC 6750 §2.1, RFC 9449 §7), D3 (a
//! bound token presented as bearer), `ath` and key binding, replay of a resource proof (D2),
//! nonces at the resource (D4, RFC 9449 §9), audience (M2), scope (M4), revocation and the
//! `WWW-Authenticate` challenges, each refusal's `dpop.rejected` audit reason included.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde_json::Value;

use super::*;
use crate::config::{Config, SeedClient, SeedResource};
use crate::dpop::test_support::Prover;
use crate::runtime::FixedClock;
use crate::secret::Secret;
use crate::server::Portcullis;
use crate::store::repo::audit::{self, AuditFilter};
use crate::store::test_store::test_env;

const RESOURCE: &str = "https://mcp.example.com/mcp";
const MCP_URL: &str = RESOURCE;
const MD: &str = "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp";
const TOKEN_URL: &str = "http://127.0.0.1:9000/oauth/token";
const CLIENT: &str = "machine";
const SECRET: &str = "machine-secret-0123456789";

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// A server with one resource and one confidential `client_credentials` client.
struct H {
    server: Portcullis,
    clock: Arc<FixedClock>,
}

impl H {
    fn new() -> Self {
        Self::with(|_| {})
    }

    /// A server requiring DPoP nonces.
    fn requiring_nonces() -> Self {
        Self::with(|cfg| {
            cfg.dpop.require_nonce = true;
            cfg.master_key = Some(Secret::new("nonce master key 0123456789"));
        })
    }

    fn with(edit: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = Config {
            resources: vec![SeedResource {
                uri: RESOURCE.into(),
                scopes: vec!["mcp:tools".into(), "mcp:resources".into()],
                name: Some("Example MCP".into()),
                introspection_clients: vec![],
                exchange_clients: vec![],
            }],
            clients: vec![SeedClient {
                client_id: CLIENT.into(),
                client_secret: Some(Secret::new(SECRET)),
                client_name: Some("Machine".into()),
                redirect_uris: vec![],
                grant_types: vec!["client_credentials".into()],
                scope: Some("mcp:tools mcp:resources".into()),
                token_endpoint_auth_method: Some("client_secret_basic".into()),
                jwks: None,
                jwks_uri: None,
            }],
            ..Config::default()
        };
        edit(&mut cfg);
        let (env, clock) = test_env();
        let server = block(Portcullis::start(env, cfg)).expect("server starts");
        Self { server, clock }
    }

    fn now(&self) -> i64 {
        self.server.now()
    }

    /// POSTs `form` to `path` as the client (Basic), with `DPoP` headers.
    fn post(&self, path: &str, form: &[(&str, &str)], proofs: &[&str]) -> Response<Bytes> {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}"));
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Basic {basic}"));
        for p in proofs {
            b = b.header("dpop", *p);
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        block(self.server.handle(b.body(Bytes::from(body)).unwrap()))
    }

    /// A client_credentials token response.
    fn token_response(&self, proofs: &[&str]) -> Response<Bytes> {
        let form = [("grant_type", "client_credentials"), ("resource", RESOURCE)];
        let resp = self.post("/oauth/token", &form, proofs);
        assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.body());
        resp
    }

    /// A client_credentials access token, bound to the key of `proofs` when there is one.
    fn token(&self, proofs: &[&str]) -> String {
        let v: Value = serde_json::from_slice(self.token_response(proofs).body()).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// A DPoP-bound access token for `p`.
    fn bound_token(&self, p: &Prover) -> String {
        self.token(&[&p.proof("POST", TOKEN_URL, self.now())])
    }

    /// The reasons of the `dpop.rejected` events so far, oldest first.
    fn rejections(&self) -> Vec<String> {
        let f = AuditFilter {
            action: Some("dpop.rejected".into()),
            limit: 100,
            ..Default::default()
        };
        let rows = block(audit::list(self.server.env().sql.as_ref(), &f)).unwrap();
        rows.into_iter().rev().filter_map(|r| r.reason).collect()
    }

    fn call(&self, pairs: &[(&str, &str)], needs: &Requirements<'_>) -> Result<Authorized, Denied> {
        let hm = headers(pairs);
        let presented = Presented {
            method: "POST",
            url: MCP_URL,
            headers: &hm,
        };
        block(verify(&self.server, &presented, needs))
    }

    fn denied(&self, pairs: &[(&str, &str)]) -> Denied {
        self.call(pairs, &needs())
            .expect_err("the request must be refused")
    }
}

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

fn dpop_auth(token: &str) -> String {
    format!("DPoP {token}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn bearer_token_accepted_as_bearer() {
    let h = H::new();
    let at = h.token(&[]);
    let ok = h
        .call(&[("authorization", &bearer(&at))], &needs())
        .unwrap();
    assert_eq!(ok.claims.aud, RESOURCE);
    assert_eq!(ok.jkt, None);
}

#[test]
fn dpop_token_with_its_proof_accepted() {
    let h = H::new();
    let p = Prover::new(50);
    let at = h.bound_token(&p);
    let proof = p.proof_for_token("POST", MCP_URL, h.now(), &at);
    let pairs = [("authorization", dpop_auth(&at)), ("dpop", proof)];
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = h.call(&pairs, &needs()).unwrap();
    assert_eq!(ok.jkt.as_deref(), Some(p.jkt().as_str()));
    assert_eq!(ok.claims.cnf.unwrap().jkt, p.jkt());
}

#[test]
fn d3_dpop_bound_token_presented_as_bearer_refused() {
    let h = H::new();
    let p = Prover::new(51);
    let at = h.bound_token(&p);
    let d = h.denied(&[("authorization", &bearer(&at))]);
    assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    assert_eq!(d.error, Some("invalid_token"));
    assert!(
        d.challenges[1].starts_with("DPoP algs=\"ES256\""),
        "{:?}",
        d.challenges
    );
    assert!(d.challenges[1].contains("error=\"invalid_token\""));
    // Even with a valid proof alongside, the bearer scheme is refused.
    let proof = p.proof_for_token("POST", MCP_URL, h.now(), &at);
    let d = h.denied(&[("authorization", &bearer(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_token"));
    assert_eq!(h.rejections(), vec!["missing", "missing"]);
}

#[test]
fn unbound_token_with_dpop_scheme_refused() {
    let h = H::new();
    let p = Prover::new(52);
    let at = h.token(&[]);
    let proof = p.proof_for_token("POST", MCP_URL, h.now(), &at);
    let d = h.denied(&[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn dpop_scheme_without_proof_refused() {
    let h = H::new();
    let at = h.bound_token(&Prover::new(53));
    let d = h.denied(&[("authorization", &dpop_auth(&at))]);
    assert_eq!(
        (d.status, d.error),
        (StatusCode::UNAUTHORIZED, Some("invalid_dpop_proof"))
    );
}

#[test]
fn proof_by_another_key_refused() {
    let h = H::new();
    let at = h.bound_token(&Prover::new(54));
    let thief = Prover::new(55);
    let proof = thief.proof_for_token("POST", MCP_URL, h.now(), &at);
    let d = h.denied(&[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_token"));
    assert_eq!(h.rejections(), vec!["key_mismatch"]);
}

#[test]
fn proof_without_matching_ath_refused() {
    let h = H::new();
    let p = Prover::new(56);
    let at = h.bound_token(&p);
    let proof = p.proof("POST", MCP_URL, h.now());
    let d = h.denied(&[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert!(d.challenges[1].contains("error=\"invalid_dpop_proof\""));
    assert_eq!(h.rejections(), vec!["ath"]);
}

#[test]
fn d1_resource_proof_htu_and_htm_checked() {
    let h = H::new();
    let p = Prover::new(57);
    let at = h.bound_token(&p);
    let proof = p.proof_for_token("POST", "https://other.example.com/mcp", h.now(), &at);
    let d = h.denied(&[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    let proof = p.proof_for_token("GET", MCP_URL, h.now(), &at);
    let d = h.denied(&[("authorization", &dpop_auth(&at)), ("dpop", &proof)]);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert_eq!(h.rejections(), vec!["htu", "htm"]);
}

#[test]
fn d2_resource_proof_replay_refused() {
    let h = H::new();
    let p = Prover::new(58);
    let at = h.bound_token(&p);
    let proof = p.proof_for_token("POST", MCP_URL, h.now(), &at);
    let auth = dpop_auth(&at);
    let pairs = [("authorization", auth.as_str()), ("dpop", proof.as_str())];
    h.call(&pairs, &needs()).unwrap();
    let d = h.denied(&pairs);
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert_eq!(h.rejections(), vec!["replay"]);
}

#[test]
fn d2_refused_resource_request_does_not_spend_the_proof() {
    let h = H::new();
    let p = Prover::new(59);
    let at = h.bound_token(&p);
    let proof = p.proof_for_token("POST", MCP_URL, h.now(), &at);
    let auth = dpop_auth(&at);
    let pairs = [("authorization", auth.as_str()), ("dpop", proof.as_str())];
    let scoped = Requirements {
        scopes: &["admin:all"],
        ..needs()
    };
    let d = h.call(&pairs, &scoped).unwrap_err();
    assert_eq!(d.error, Some("insufficient_scope"));
    h.call(&pairs, &needs()).unwrap();
}

#[test]
fn d4_resource_nonce_challenge_round_trips() {
    let h = H::requiring_nonces();
    let p = Prover::new(60);
    // The token endpoint asks for a nonce first.
    let form = [("grant_type", "client_credentials"), ("resource", RESOURCE)];
    let first = h.post(
        "/oauth/token",
        &form,
        &[&p.proof("POST", TOKEN_URL, h.now())],
    );
    assert_eq!(first.status(), StatusCode::BAD_REQUEST);
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = p.proof_with_nonce("POST", TOKEN_URL, h.now(), &nonce);
    let at = h.token(&[&proof]);
    let auth = dpop_auth(&at);
    let proof = p.proof_for_token("POST", MCP_URL, h.now(), &at);
    let d = h.denied(&[("authorization", &auth), ("dpop", &proof)]);
    assert_eq!(
        (d.status, d.error),
        (StatusCode::UNAUTHORIZED, Some("use_dpop_nonce"))
    );
    assert!(d.challenges[1].contains("error=\"use_dpop_nonce\""));
    let (_, nonce) = d
        .headers
        .iter()
        .find(|(n, _)| n == "dpop-nonce")
        .expect("a DPoP-Nonce header");
    let mut c = p.claims("POST", MCP_URL, h.now());
    c["ath"] = crate::dpop::proof::access_token_hash(&at).into();
    c["nonce"] = nonce.as_str().into();
    let proof = p.sign(&p.header(), &c);
    let ok = h
        .call(&[("authorization", &auth), ("dpop", &proof)], &needs())
        .unwrap();
    assert!(ok.response_headers.iter().any(|(n, _)| n == "dpop-nonce"));
}

#[test]
fn no_credentials_challenge_names_both_schemes_and_metadata() {
    let h = H::new();
    assert_eq!(
        resource_metadata_url(&h.server, RESOURCE).as_deref(),
        Some(MD)
    );
    let d = h.denied(&[]);
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
    let at = h.token(&[]);
    let other = Requirements {
        resource: "https://other.example.com/mcp",
        ..needs()
    };
    let d = h
        .call(&[("authorization", &bearer(&at))], &other)
        .unwrap_err();
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn m4_insufficient_scope_lists_the_needed_scopes() {
    let h = H::new();
    let at = h.token(&[]);
    let scoped = Requirements {
        scopes: &["mcp:tools", "admin:all"],
        ..needs()
    };
    let d = h
        .call(&[("authorization", &bearer(&at))], &scoped)
        .unwrap_err();
    assert_eq!(
        (d.status, d.error),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert!(d.challenges[0].contains("scope=\"mcp:tools admin:all\""));
}

#[test]
fn malformed_authorization_refused() {
    let h = H::new();
    let d = h.denied(&[("authorization", "Bearer a b")]);
    assert_eq!(
        (d.status, d.error),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let d = h.denied(&[("authorization", "Bearer x"), ("authorization", "Bearer y")]);
    assert_eq!(d.error, Some("invalid_request"));
    let d = h.denied(&[("authorization", "Bearer not-a-jwt")]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn revoked_token_refused() {
    let h = H::new();
    let at = h.token(&[]);
    h.call(&[("authorization", &bearer(&at))], &needs())
        .unwrap();
    let resp = h.post("/oauth/revoke", &[("token", &at)], &[]);
    assert_eq!(resp.status(), StatusCode::OK);
    let d = h.denied(&[("authorization", &bearer(&at))]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn expired_token_refused() {
    let h = H::new();
    let at = h.token(&[]);
    let exp = h
        .call(&[("authorization", &bearer(&at))], &needs())
        .unwrap()
        .claims
        .exp;
    h.clock.advance(exp - h.now() + 1);
    let d = h.denied(&[("authorization", &bearer(&at))]);
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn verify_request_takes_an_http_request() {
    let h = H::new();
    let p = Prover::new(61);
    let at = h.bound_token(&p);
    let proof = p.proof_for_token("GET", MCP_URL, h.now(), &at);
    let req = Request::builder()
        .method("GET")
        .uri("/mcp?session=1")
        .header("authorization", dpop_auth(&at))
        .header("dpop", proof)
        .body(())
        .unwrap();
    let url = format!("{MCP_URL}?session=1");
    let ok = block(verify_request(&h.server, &req, &url, &needs())).unwrap();
    assert_eq!(ok.claims.sub, CLIENT);
    // The same proof again is a replay; the refusal as a response: 401 and a JSON error.
    let resp = block(verify_request(&h.server, &req, MCP_URL, &needs()))
        .unwrap_err()
        .into_response();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
}
