//! Request-level decisions through the [`Verifier`] with a fixed clock, fixed keys and a fake
//! fetcher that serves the issuer's metadata and JWKS and counts fetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::config::{Config, DpopMode};
use crate::decision::Decision;
use crate::dpop::tests::{jkt, proof, URL};
use crate::jwks::tests::{public_jwk, signing_key};
use crate::policy::UnknownTools;
use crate::token::tests::{claims, header, sign, ISS, NOW, RES};
use crate::verifier::{FetchError, FixedClock, HttpFetch, Verifier};

struct FakeIssuer {
    jwks: std::sync::Mutex<Value>,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl HttpFetch for FakeIssuer {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        match url {
            "https://as.example/.well-known/oauth-authorization-server" => Ok(json!({
                "issuer": ISS, "jwks_uri": "https://as.example/jwks"
            })
            .to_string()
            .into_bytes()),
            "https://as.example/jwks" => Ok(self.jwks.lock().unwrap().to_string().into_bytes()),
            _ => Err(FetchError(format!("no such URL {url}"))),
        }
    }
}

fn issuer() -> Arc<FakeIssuer> {
    Arc::new(FakeIssuer {
        jwks: std::sync::Mutex::new(json!({ "keys": [public_jwk(&signing_key(1), "k1")] })),
        fetches: AtomicUsize::new(0),
    })
}

fn config() -> Config {
    assert_eq!(URL, RES);
    Config::new(ISS, RES)
        .unwrap()
        .required_scopes(["mcp:read"])
        .tool("whoami", ["mcp:read"])
        .tool("write_note", ["mcp:write"])
}

fn verifier_with(config: Config, fetch: Arc<FakeIssuer>) -> Verifier {
    Verifier::new(config, fetch, Arc::new(FixedClock(NOW)))
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

fn run(v: &Verifier, h: &HeaderMap) -> Decision {
    futures::executor::block_on(v.authorize("POST", URL, h))
}

fn denial(d: Decision) -> crate::Denial {
    match d {
        Decision::Deny(d) => d,
        Decision::Allow(t) => panic!("expected a refusal, got {t:?}"),
    }
}

fn token(f: impl FnOnce(&mut Value)) -> String {
    let mut c = claims();
    f(&mut c);
    sign(1, header(), c)
}

struct MovingClock(std::sync::atomic::AtomicI64);

impl crate::Clock for MovingClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

const RM: &str = "https://mcp.example/.well-known/oauth-protected-resource/mcp";

#[test]
fn no_token_is_401_without_error_with_metadata_and_scope() {
    let v = verifier_with(config(), issuer());
    let d = denial(run(&v, &HeaderMap::new()));
    assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    assert_eq!(d.error, None);
    assert_eq!(
        d.www_authenticate(),
        [
            format!("Bearer resource_metadata=\"{RM}\", scope=\"mcp:read\""),
            "DPoP algs=\"ES256\"".into()
        ]
    );
    // Another scheme counts as no token.
    let d = denial(run(
        &v,
        &headers(&[("authorization", "Basic dXNlcjpwdw==")]),
    ));
    assert_eq!(d.error, None);
}

#[test]
fn bearer_token_is_verified_and_claims_are_returned() {
    let fetch = issuer();
    let v = verifier_with(config(), fetch.clone());
    let t = token(|c| c["act"] = json!({"sub": "agent-7"}));
    match run(&v, &headers(&[("authorization", &format!("Bearer {t}"))])) {
        Decision::Allow(ok) => {
            assert_eq!(ok.subject(), "user-1");
            assert_eq!(ok.client_id(), "client-1");
            assert_eq!(ok.claims.actor_chain(), ["agent-7"]);
            assert_eq!(ok.access_token(), t);
        }
        Decision::Deny(d) => panic!("{d:?}"),
    }
    assert_eq!(
        fetch.fetches.load(Ordering::SeqCst),
        2,
        "metadata then JWKS"
    );
    // Cached: no further fetch.
    assert!(matches!(
        run(&v, &headers(&[("authorization", &format!("bearer {t}"))])),
        Decision::Allow(_)
    ));
    assert_eq!(fetch.fetches.load(Ordering::SeqCst), 2);
}

#[test]
fn bad_tokens_are_401_invalid_token() {
    let v = verifier_with(config(), issuer());
    for (t, why) in [
        (
            token(|c| c["aud"] = "https://mcp.example/other".into()),
            "not meant for this resource",
        ),
        (token(|c| c["exp"] = (NOW - 100).into()), "expired"),
        (
            token(|c| c["iss"] = "https://evil.example".into()),
            "another issuer",
        ),
        (
            sign(1, json!({"alg": "HS256", "typ": "at+jwt"}), claims()),
            "algorithm",
        ),
        ("e30.e30.e30".to_owned(), "well-formed"),
    ] {
        let d = denial(run(
            &v,
            &headers(&[("authorization", &format!("Bearer {t}"))]),
        ));
        assert_eq!(d.status, StatusCode::UNAUTHORIZED);
        assert_eq!(d.error, Some("invalid_token"));
        assert!(d.description.as_deref().unwrap().contains(why), "{d:?}");
        assert!(d.www_authenticate()[0].starts_with(&format!(
            "Bearer resource_metadata=\"{RM}\", scope=\"mcp:read\", error=\"invalid_token\""
        )));
    }
}

#[test]
fn malformed_authorization_is_400() {
    let v = verifier_with(config(), issuer());
    let d = denial(run(&v, &headers(&[("authorization", "Bearer a b")])));
    assert_eq!(
        (d.status, d.error),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let d = denial(run(
        &v,
        &headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
    ));
    assert_eq!(d.status, StatusCode::BAD_REQUEST);
    let d = denial(run(&v, &headers(&[("authorization", "Bearer")])));
    assert_eq!(d.status, StatusCode::BAD_REQUEST);
}

#[test]
fn unknown_kid_refetches_once_per_floor_and_picks_up_rotated_keys() {
    let fetch = issuer();
    let clock = Arc::new(MovingClock(std::sync::atomic::AtomicI64::new(NOW)));
    let v = Verifier::new(config(), fetch.clone(), clock.clone());
    let mut h = header();
    h["kid"] = "k2".into();
    let rotated = sign(2, h, claims());
    let auth = headers(&[("authorization", &format!("Bearer {rotated}"))]);
    let d = denial(run(&v, &auth));
    assert_eq!(d.error, Some("invalid_token"));
    assert_eq!(fetch.fetches.load(Ordering::SeqCst), 2);
    // Within the floor: no refetch, even though the issuer now has the key.
    *fetch.jwks.lock().unwrap() =
        json!({ "keys": [public_jwk(&signing_key(1), "k1"), public_jwk(&signing_key(2), "k2")] });
    for _ in 0..5 {
        denial(run(&v, &auth));
    }
    assert_eq!(fetch.fetches.load(Ordering::SeqCst), 2);
    // After the floor has passed, the unknown kid triggers one fetch and the rotated key works.
    clock.0.store(NOW + 10, Ordering::SeqCst);
    assert!(matches!(run(&v, &auth), Decision::Allow(_)));
    assert_eq!(
        fetch.fetches.load(Ordering::SeqCst),
        3,
        "the JWKS again, not the metadata"
    );
}

#[test]
fn issuer_unreachable_is_503() {
    struct Down;
    #[async_trait::async_trait]
    impl HttpFetch for Down {
        async fn get(&self, _: &str) -> Result<Vec<u8>, FetchError> {
            Err(FetchError("connection refused".into()))
        }
    }
    let v = Verifier::new(config(), Arc::new(Down), Arc::new(FixedClock(NOW)));
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("Bearer {}", token(|_| {})))]),
    ));
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(d.challenges.is_empty());
}

#[test]
fn metadata_naming_another_issuer_is_not_trusted() {
    struct Liar;
    #[async_trait::async_trait]
    impl HttpFetch for Liar {
        async fn get(&self, _: &str) -> Result<Vec<u8>, FetchError> {
            Ok(
                json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"})
                    .to_string()
                    .into_bytes(),
            )
        }
    }
    let v = Verifier::new(config(), Arc::new(Liar), Arc::new(FixedClock(NOW)));
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("Bearer {}", token(|_| {})))]),
    ));
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn missing_required_scope_is_403_with_the_scope_to_ask_for() {
    let v = verifier_with(config(), issuer());
    let t = token(|c| c["scope"] = "other".into());
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("Bearer {t}"))]),
    ));
    assert_eq!(
        (d.status, d.error),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert!(
        d.www_authenticate()[0].contains("scope=\"other mcp:read\", error=\"insufficient_scope\"")
    );
}

#[test]
fn tool_policy_gives_insufficient_scope_for_step_up() {
    let v = verifier_with(config(), issuer());
    let t = token(|_| {});
    let Decision::Allow(ok) = run(&v, &headers(&[("authorization", &format!("Bearer {t}"))]))
    else {
        panic!()
    };
    let call = |name: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#)
    };
    assert!(v.check_tools(&ok, call("whoami").as_bytes()).is_none());
    assert!(v
        .check_tools(&ok, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .is_none());
    let d = v.check_tools(&ok, call("write_note").as_bytes()).unwrap();
    assert_eq!(
        (d.status, d.error),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert_eq!(
        d.www_authenticate()[0],
        format!("Bearer resource_metadata=\"{RM}\", scope=\"mcp:read mcp:write\", error=\"insufficient_scope\", \
                 error_description=\"this request needs scope mcp:write\"")
    );
    // Unknown tools: allowed by default, denied when configured so.
    assert!(v.check_tools(&ok, call("other").as_bytes()).is_none());
    let strict = verifier_with(config().unknown_tools(UnknownTools::Deny), issuer());
    let d = strict.check_tools(&ok, call("other").as_bytes()).unwrap();
    assert_eq!(d.status, StatusCode::FORBIDDEN);
    assert!(d.challenges.is_empty());
}

fn bound_token(seed: u8) -> String {
    token(|c| c["cnf"] = json!({ "jkt": jkt(seed) }))
}

#[test]
fn dpop_bound_token_with_a_good_proof_is_accepted_once() {
    let v = verifier_with(config(), issuer());
    let t = bound_token(3);
    let p = proof(3, &t, |_, _| {});
    let h = headers(&[("authorization", &format!("DPoP {t}")), ("dpop", &p)]);
    match run(&v, &h) {
        Decision::Allow(ok) => assert_eq!(ok.scheme, crate::Scheme::DPoP),
        Decision::Deny(d) => panic!("{d:?}"),
    }
    let d = denial(run(&v, &h));
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    assert!(d.description.as_deref().unwrap().contains("already used"));
    assert!(
        d.www_authenticate()[1].starts_with("DPoP algs=\"ES256\", error=\"invalid_dpop_proof\"")
    );
}

#[test]
fn dpop_nonces_are_required_when_configured_and_handed_out_with_use_dpop_nonce() {
    let secret = [9u8; 32];
    let cfg = config()
        .dpop_nonces(&secret, std::time::Duration::from_secs(60))
        .unwrap();
    let v = verifier_with(cfg, issuer());
    let t = bound_token(3);
    let send = |p: &str| {
        run(
            &v,
            &headers(&[("authorization", &format!("DPoP {t}")), ("dpop", p)]),
        )
    };
    // No nonce: 401 use_dpop_nonce on the DPoP challenge, with a nonce in DPoP-Nonce.
    let d = denial(send(&proof(3, &t, |_, _| {})));
    assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    assert_eq!(d.error, Some("use_dpop_nonce"));
    assert!(d.www_authenticate()[1].contains("error=\"use_dpop_nonce\""));
    let nonce = d.dpop_nonce.clone().expect("a nonce to retry with");
    let res = d.to_response();
    assert_eq!(res.headers()["dpop-nonce"], nonce.as_str());
    // A nonce of our own making, or one from another secret: the same answer.
    let other = crate::nonce::NonceKey::new(&[8u8; 32], std::time::Duration::from_secs(60))
        .unwrap()
        .issue(NOW);
    for bad in ["made-up", other.as_str()] {
        let d = denial(send(&proof(3, &t, |_, c| {
            c["nonce"] = bad.into();
            c["jti"] = format!("p-{bad}").into();
        })));
        assert_eq!(d.error, Some("use_dpop_nonce"), "{bad}");
    }
    // With the nonce it was given: accepted.
    let good = proof(3, &t, |_, c| {
        c["nonce"] = nonce.clone().into();
        c["jti"] = "p-good".into();
    });
    assert!(matches!(send(&good), Decision::Allow(_)));
    // Bearer tokens are not affected.
    let bearer = token(|_| {});
    assert!(matches!(
        run(
            &v,
            &headers(&[("authorization", &format!("Bearer {bearer}"))])
        ),
        Decision::Allow(_)
    ));
}

#[test]
fn dpop_refusals() {
    let v = verifier_with(config(), issuer());
    let t = bound_token(3);
    // A DPoP-bound token presented as a bearer token.
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("Bearer {t}"))]),
    ));
    assert_eq!(d.error, Some("invalid_token"));
    assert!(d.description.as_deref().unwrap().contains("DPoP-bound"));
    // No proof; a proof by another key; a proof for another URL.
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("DPoP {t}"))]),
    ));
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    let p = proof(4, &t, |_, _| {});
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("DPoP {t}")), ("dpop", &p)]),
    ));
    assert!(d.description.as_deref().unwrap().contains("cnf.jkt"));
    let p = proof(3, &t, |_, c| {
        c["htu"] = "https://mcp.example/elsewhere".into()
    });
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("DPoP {t}")), ("dpop", &p)]),
    ));
    assert!(d.description.as_deref().unwrap().contains("htu"));
    // Two DPoP headers.
    let p = proof(3, &t, |_, _| {});
    let d = denial(run(
        &v,
        &headers(&[
            ("authorization", &format!("DPoP {t}")),
            ("dpop", &p),
            ("dpop", &p),
        ]),
    ));
    assert_eq!(d.error, Some("invalid_dpop_proof"));
    // An unbound token with the DPoP scheme.
    let plain = token(|_| {});
    let p = proof(3, &plain, |_, _| {});
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("DPoP {plain}")), ("dpop", &p)]),
    ));
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn dpop_required_refuses_bearer_and_challenges_with_dpop_only() {
    let v = verifier_with(config().dpop(DpopMode::Required), issuer());
    let d = denial(run(&v, &HeaderMap::new()));
    assert_eq!(
        d.www_authenticate(),
        [format!(
            "DPoP algs=\"ES256\", resource_metadata=\"{RM}\", scope=\"mcp:read\""
        )]
    );
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("Bearer {}", token(|_| {})))]),
    ));
    assert_eq!(d.error, Some("invalid_token"));
    assert!(d.www_authenticate()[0].contains("error=\"invalid_token\""));
    assert!(d
        .description
        .as_deref()
        .unwrap()
        .contains("requires a DPoP-bound token"));
}

#[test]
fn dpop_off_refuses_dpop_and_has_only_the_bearer_challenge() {
    let v = verifier_with(config().dpop(DpopMode::Off), issuer());
    let d = denial(run(&v, &HeaderMap::new()));
    assert_eq!(d.www_authenticate().len(), 1);
    let t = bound_token(3);
    let p = proof(3, &t, |_, _| {});
    let d = denial(run(
        &v,
        &headers(&[("authorization", &format!("DPoP {t}")), ("dpop", &p)]),
    ));
    assert_eq!(d.error, Some("invalid_token"));
}

#[test]
fn denial_response_has_challenges_and_json() {
    let v = verifier_with(config(), issuer());
    let res = denial(run(&v, &headers(&[("authorization", "Bearer x.y.z")]))).to_response();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers().get_all("www-authenticate").iter().count(), 2);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[test]
fn concurrent_first_requests_share_one_fetch() {
    let fetch = issuer();
    let v = verifier_with(config(), fetch.clone());
    let h = headers(&[("authorization", &format!("Bearer {}", token(|_| {})))]);
    let all = futures::executor::block_on(async {
        let a = v.authorize("POST", URL, &h);
        let b = v.authorize("POST", URL, &h);
        let c = v.authorize("POST", URL, &h);
        futures::join!(a, b, c)
    });
    for d in [all.0, all.1, all.2] {
        assert!(matches!(d, Decision::Allow(_)), "{d:?}");
    }
    assert_eq!(
        fetch.fetches.load(Ordering::SeqCst),
        2,
        "metadata and JWKS once"
    );
}

/// Bad input gives an answer, never a panic: malformed headers, tokens, proofs and bodies from
/// a deterministic generator (pieces of real tokens, separators, odd bytes).
#[test]
fn garbage_never_panics() {
    let v = verifier_with(config(), issuer());
    let good = bound_token(3);
    let pieces: Vec<String> = vec![
        good.clone(),
        proof(3, &good, |_, _| {}),
        ".".into(),
        "..".into(),
        "=".into(),
        "e30".into(),
        "eyJhbGciOiJub25lIn0".into(),
        "%%%".into(),
        "\u{7f}".into(),
        " ".into(),
        "A".repeat(3000),
        "{\"method\":\"tools/call\"".into(),
        "[{\"method\":\"tools/call\",\"params\":{\"name\":[]}}]".into(),
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..400 {
        let mut s = String::new();
        for _ in 0..1 + next(4) {
            let p = &pieces[next(pieces.len())];
            let cut = next(p.len() + 1);
            s.push_str(p.get(..cut).unwrap_or(p));
        }
        let scheme = ["Bearer ", "DPoP ", "bearer  ", "Basic ", ""][next(5)];
        let mut h = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("{scheme}{s}")) {
            h.insert(http::header::AUTHORIZATION, value);
        }
        if let Ok(value) = HeaderValue::from_str(&s) {
            h.insert("dpop", value);
        }
        let _ = run(&v, &h);
        let _ = crate::dpop::check(
            &s,
            &crate::dpop::Expected {
                method: "POST",
                url: &s,
                access_token: &s,
                jkt: &s,
                now: NOW,
                max_age: 300,
                leeway: 60,
            },
            &[crate::Alg::Es256],
        );
        let _ = crate::policy::tools_called(s.as_bytes());
        let _ = crate::jwks::KeySet::from_json(s.as_bytes());
        let _ = crate::vend::parse_response(400, s.as_bytes());
    }
}
