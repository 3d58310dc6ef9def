//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core 1.0 §9) at the
//! token, revocation and introspection endpoints: SECURITY-CHECKLIST A2, A3, A5 and J1–J5 at
//! the HTTP layer, keys from inline `jwks`, `jwks_uri` (fetched, cached, refetched on an
//! unknown `kid`), dynamic registration and client ID metadata documents.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::harness::*;
use crate::client_auth::ASSERTION_TYPE;
use crate::config::{Config, SeedClient};
use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use crate::crypto::{b64, CryptoProvider, Es256Signer, RustCrypto};
use crate::runtime::{FetchError, FetchResponse, Fetcher, SeededRng};
use crate::server::Portcullis;

const INLINE: &str = "jwt-app";
const REMOTE: &str = "jwt-remote";
const REMOTE_JWKS: &str = "https://keys.example.com/jwt-remote.json";
const SSRF: &str = "jwt-metadata-service";
const ISSUER: &str = "http://127.0.0.1:9000";
const TOKEN_ENDPOINT: &str = "http://127.0.0.1:9000/oauth/token";

/// A client's key pair: a signer and its public JWK (with `kid`).
struct Key {
    signer: Arc<dyn Es256Signer>,
    jwk: Value,
}

fn key(seed: u64, kid: &str) -> Key {
    let scalar = generate_scalar(&SeededRng::new(seed));
    let mut jwk = crate::keys::public_jwk(&public_key_sec1(&scalar).unwrap());
    jwk["kid"] = kid.into();
    Key {
        signer: RustCrypto.es256_signer(&scalar).unwrap(),
        jwk,
    }
}

fn client_key() -> Key {
    key(101, "k1")
}

/// A compact JWS over `claims` with exactly `header`, signed by `key`.
fn jws(key: &Key, header: Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = block(key.signer.sign(input.as_bytes())).unwrap();
    format!("{input}.{}", b64(sig))
}

fn es256(kid: &str) -> Value {
    json!({ "alg": "ES256", "typ": "JWT", "kid": kid })
}

fn claims(h: &H, client: &str, jti: &str) -> Value {
    let now = h.server.now();
    json!({
        "iss": client, "sub": client, "aud": TOKEN_ENDPOINT,
        "exp": now + 60, "iat": now, "jti": jti,
    })
}

fn assertion(h: &H, client: &str, jti: &str) -> String {
    jws(&client_key(), es256("k1"), &claims(h, client, jti))
}

/// Serves JWK Sets and metadata documents by URL, counting fetches.
#[derive(Default)]
struct Docs {
    docs: Mutex<HashMap<String, Value>>,
    calls: AtomicUsize,
}

impl Docs {
    fn set(&self, url: &str, doc: Value) {
        self.docs.lock().unwrap().insert(url.into(), doc);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Fetcher for Docs {
    async fn get(&self, url: &url::Url, _max: usize) -> Result<FetchResponse, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let doc = self.docs.lock().unwrap().get(url.as_str()).cloned();
        Ok(match doc {
            Some(d) => FetchResponse {
                status: 200,
                content_type: Some("application/json".into()),
                cache_control: Some("max-age=300".into()),
                body: serde_json::to_vec(&d).unwrap(),
            },
            None => FetchResponse {
                status: 404,
                content_type: Some("text/plain".into()),
                cache_control: None,
                body: b"not found".to_vec(),
            },
        })
    }
}

fn jwt_client(id: &str, jwks: Option<Value>, jwks_uri: Option<&str>) -> SeedClient {
    SeedClient {
        client_id: id.into(),
        client_secret: None,
        client_name: None,
        redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        scope: None,
        token_endpoint_auth_method: Some("private_key_jwt".into()),
        jwks,
        jwks_uri: jwks_uri.map(str::to_owned),
    }
}

/// The harness server plus three `private_key_jwt` clients (inline keys, `jwks_uri`, and a
/// `jwks_uri` pointing at a link-local address), with a fetcher serving the remote set.
fn server() -> (H, Arc<Docs>) {
    server_with(config())
}

fn server_with(mut cfg: Config) -> (H, Arc<Docs>) {
    let set = json!({ "keys": [client_key().jwk] });
    cfg.clients
        .push(jwt_client(INLINE, Some(set.clone()), None));
    cfg.clients
        .push(jwt_client(REMOTE, None, Some(REMOTE_JWKS)));
    cfg.clients.push(jwt_client(
        SSRF,
        None,
        Some("https://169.254.169.254/latest/jwks.json"),
    ));
    let docs = Arc::new(Docs::default());
    docs.set(REMOTE_JWKS, set);
    let sql = Arc::new(crate::store::test_store::TestSql::memory());
    let (mut env, clock) = crate::store::test_store::test_env_on(sql.clone());
    env.fetcher = docs.clone();
    let server = block(Portcullis::start(env, cfg)).expect("server starts");
    (H { server, clock, sql }, docs)
}

struct Answer {
    status: StatusCode,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    fn refused(&self, status: StatusCode, error: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        if error == "invalid_client" {
            assert!(
                self.headers.contains_key(header::WWW_AUTHENTICATE),
                "invalid_client carries WWW-Authenticate"
            );
        }
    }
    fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        &self.body
    }
}

fn post(h: &H, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
    let resp = h.post_form(path, form, headers);
    let headers = resp.headers().clone();
    let (status, body) = json_of(resp);
    Answer {
        status,
        body,
        headers,
    }
}

/// `client_credentials` authenticated by `jwt` (plus `extra` parameters).
fn cc(h: &H, jwt: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt),
    ];
    form.extend_from_slice(extra);
    if !extra.iter().any(|(k, _)| *k == "scope") {
        // K5: a request without scope gets only the client's registered defaults.
        form.push(("scope", "mcp:tools"));
    }
    post(h, "/oauth/token", &form, &[])
}

fn audit(h: &H, action: &str) -> Vec<crate::store::repo::audit::AuditRow> {
    block(crate::store::repo::audit::list(
        h.server.env().sql.as_ref(),
        &crate::store::repo::audit::AuditFilter {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        },
    ))
    .unwrap()
}

#[test]
fn a5_private_key_jwt_authenticates_at_the_token_endpoint() {
    let (h, docs) = server();
    let body = cc(&h, &assertion(&h, INLINE, "jti-1"), &[]).ok().clone();
    assert_eq!(body["token_type"], "Bearer");
    let other = h.introspect(body["access_token"].as_str().unwrap());
    assert_eq!(
        other["active"], false,
        "another client may not introspect it"
    );
    // The issuer itself, an array containing the token endpoint, and client_id in the body
    // are all accepted.
    let mut c = claims(&h, INLINE, "jti-2");
    c["aud"] = ISSUER.into();
    cc(
        &h,
        &jws(&client_key(), es256("k1"), &c),
        &[("client_id", INLINE)],
    )
    .ok();
    c["aud"] = json!(["https://other.example", TOKEN_ENDPOINT]);
    c["jti"] = "jti-3".into();
    cc(&h, &jws(&client_key(), es256("k1"), &c), &[]).ok();
    // "typ" may be absent or the rfc7523bis type; "kid" may be absent with one key.
    c["jti"] = "jti-4".into();
    let header = json!({"alg": "ES256", "typ": "client-authentication+jwt"});
    cc(&h, &jws(&client_key(), header, &c), &[]).ok();
    assert_eq!(docs.calls(), 0, "inline keys are never fetched");
    let events = audit(&h, "client.assertion");
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.outcome == "success"));
    assert_eq!(events[0].client_id.as_deref(), Some(INLINE));
}

#[test]
fn a5_replayed_jti_refused() {
    let (h, _) = server();
    let jwt = assertion(&h, INLINE, "once");
    cc(&h, &jwt, &[]).ok();
    cc(&h, &jwt, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    // The same jti in a newly signed assertion is a replay too.
    h.clock.advance(5);
    cc(&h, &assertion(&h, INLINE, "once"), &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    // Another client may use the same jti value: the reservation is per client.
    cc(&h, &assertion(&h, REMOTE, "once"), &[]).ok();
    let refusals = audit(&h, "client.assertion")
        .into_iter()
        .filter(|e| e.outcome == "failure")
        .count();
    assert_eq!(refusals, 2);
}

#[test]
fn a5_refused_assertions_do_not_spend_the_jti() {
    let (h, _) = server();
    let mut bad = claims(&h, INLINE, "keep");
    bad["aud"] = "https://evil.example/oauth/token".into();
    cc(&h, &jws(&client_key(), es256("k1"), &bad), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    let forged = jws(&key(666, "k1"), es256("k1"), &claims(&h, INLINE, "keep"));
    cc(&h, &forged, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    cc(&h, &assertion(&h, INLINE, "keep"), &[]).ok();
}

#[test]
fn a5_aud_must_be_the_issuer_or_token_endpoint() {
    let (h, _) = server();
    for (i, aud) in [
        json!("http://127.0.0.1:9000/oauth/introspect"),
        json!("http://127.0.0.1:9000/"),
        json!("https://evil.example/oauth/token"),
        json!(["https://evil.example"]),
        json!(null),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = claims(&h, INLINE, &format!("aud-{i}"));
        c["aud"] = aud.clone();
        let answer = cc(&h, &jws(&client_key(), es256("k1"), &c), &[]);
        answer.refused(StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(
            answer.body["error_description"]
                .as_str()
                .unwrap()
                .contains("aud"),
            "{aud}: {}",
            answer.body
        );
    }
}

#[test]
fn a5_exp_required_and_enforced() {
    let (h, _) = server();
    let mut c = claims(&h, INLINE, "no-exp");
    c.as_object_mut().unwrap().remove("exp");
    cc(&h, &jws(&client_key(), es256("k1"), &c), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    let jwt = assertion(&h, INLINE, "late");
    h.clock.advance(60);
    cc(&h, &jwt, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    let mut c = claims(&h, INLINE, "too-long");
    c["exp"] = (h.server.now() + 2 * 3600).into();
    cc(&h, &jws(&client_key(), es256("k1"), &c), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[test]
fn a5_iss_sub_and_client_id_must_agree() {
    let (h, _) = server();
    // iss must be the client whose key signed (and equal sub), whatever the signature.
    let mut c = claims(&h, INLINE, "who");
    c["iss"] = REMOTE.into();
    cc(&h, &jws(&client_key(), es256("k1"), &c), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    cc(&h, &assertion(&h, INLINE, "who"), &[("client_id", REMOTE)])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    // No sub and no client_id: nobody to authenticate.
    let mut c = claims(&h, INLINE, "who");
    c.as_object_mut().unwrap().remove("sub");
    cc(&h, &jws(&client_key(), es256("k1"), &c), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    cc(
        &h,
        &jws(&client_key(), es256("k1"), &c),
        &[("client_id", INLINE)],
    )
    .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    cc(&h, &assertion(&h, "no-such-client", "who"), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    cc(&h, &assertion(&h, INLINE, "who"), &[]).ok();
}

#[test]
fn a2_assertion_with_a_secret_is_invalid_request() {
    let (h, _) = server();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{INLINE}:whatever"))
    );
    let jwt = assertion(&h, INLINE, "two-ways");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt.as_str()),
    ];
    post(&h, "/oauth/token", &form, &[("authorization", &basic)])
        .refused(StatusCode::BAD_REQUEST, "invalid_request");
    cc(&h, &jwt, &[("client_secret", "whatever")])
        .refused(StatusCode::BAD_REQUEST, "invalid_request");
    // Neither attempt spent the jti.
    cc(&h, &jwt, &[]).ok();
}

#[test]
fn a3_registered_method_enforced_both_ways() {
    let (h, _) = server();
    // The private_key_jwt client cannot use a secret (it has none, and a made-up one is
    // refused whatever its value), nor authenticate by client_id alone.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{INLINE}:{SECRET}"))
    );
    post(
        &h,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        &[("authorization", &basic)],
    )
    .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    post(
        &h,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", INLINE)],
        &[],
    )
    .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    // A secret client cannot use an assertion, even one signed by a registered key.
    cc(&h, &assertion(&h, CONFIDENTIAL, "secret-client"), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    cc(&h, &assertion(&h, PUBLIC, "public-client"), &[])
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    // An unknown assertion type is refused.
    let jwt = assertion(&h, INLINE, "type");
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        ),
        ("client_assertion", jwt.as_str()),
    ];
    post(&h, "/oauth/token", &form, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[test]
fn a5_revocation_and_introspection_accept_private_key_jwt() {
    let (h, _) = server();
    let token = cc(&h, &assertion(&h, INLINE, "t"), &[]).ok()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_assertion = |jti: &str, token: &str| {
        vec![
            ("token".to_owned(), token.to_owned()),
            ("client_assertion_type".into(), ASSERTION_TYPE.into()),
            ("client_assertion".into(), assertion(&h, INLINE, jti)),
        ]
    };
    let form = with_assertion("i1", &token);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let body = post(&h, "/oauth/introspect", &form, &[]).ok().clone();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], INLINE);
    // A replayed assertion is refused at introspection too.
    post(&h, "/oauth/introspect", &form, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    let form = with_assertion("r1", &token);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post(&h, "/oauth/revoke", &form, &[]).ok();
    let form = with_assertion("i2", &token);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        post(&h, "/oauth/introspect", &form, &[]).ok()["active"],
        false
    );
    // A bad assertion at revocation is invalid_client.
    let form = with_assertion("r1", &token);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post(&h, "/oauth/revoke", &form, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[test]
fn j1_alg_none_refused() {
    let (h, _) = server();
    for alg in ["none", "None", "NONE"] {
        let c = claims(&h, INLINE, &format!("none-{alg}"));
        let jwt = format!(
            "{}.{}.",
            b64(json!({"alg": alg, "kid": "k1"}).to_string()),
            b64(c.to_string())
        );
        cc(&h, &jwt, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
}

#[test]
fn j2_hs256_with_the_client_public_key_as_secret_refused() {
    use hkdf::hmac::{Hmac, Mac};
    let (h, _) = server();
    let public = client_key().jwk;
    let c = claims(&h, INLINE, "hs256");
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": "k1"}).to_string()),
        b64(c.to_string())
    );
    for secret in [public.to_string(), public["x"].as_str().unwrap().to_owned()] {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let jwt = format!("{input}.{}", b64(mac.finalize().into_bytes()));
        cc(&h, &jwt, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    cc(&h, &assertion(&h, INLINE, "hs256"), &[]).ok();
}

#[test]
fn j3_header_key_references_are_ignored() {
    let (h, docs) = server();
    let attacker = key(666, "k1");
    let c = claims(&h, INLINE, "j3");
    // The attacker's own key carried in the header, with the client's kid, another kid or
    // none: the signature is checked with the registered key only.
    for header in [
        json!({"alg": "ES256", "kid": "k1", "jwk": attacker.jwk}),
        json!({"alg": "ES256", "jwk": attacker.jwk}),
        json!({"alg": "ES256", "kid": "evil", "jwk": attacker.jwk}),
        json!({"alg": "ES256", "kid": "k1", "jku": "https://evil.example/jwks.json"}),
        json!({"alg": "ES256", "kid": "k1", "x5u": "https://evil.example/cert.pem"}),
        json!({"alg": "ES256", "kid": "k1", "x5c": ["MIIB"]}),
    ] {
        let jwt = jws(&attacker, header.clone(), &c);
        cc(&h, &jwt, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
        // Also for the jwks_uri client: only its registered URI is ever fetched.
        let mut rc = c.clone();
        rc["iss"] = REMOTE.into();
        rc["sub"] = REMOTE.into();
        cc(&h, &jws(&attacker, header, &rc), &[])
            .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    assert!(docs.calls() >= 1);
    // Header references do not hurt a genuinely signed assertion either (they are ignored).
    let header = json!({"alg": "ES256", "kid": "k1", "jku": "https://evil.example/jwks.json"});
    cc(&h, &jws(&client_key(), header, &c), &[]).ok();
    let fetched_only_registered = docs.calls();
    h.clock.advance(400);
    let mut rc = claims(&h, REMOTE, "j3-remote");
    rc["aud"] = ISSUER.into();
    let header = json!({"alg": "ES256", "kid": "k1", "jku": "https://evil.example/jwks.json"});
    cc(&h, &jws(&client_key(), header, &rc), &[]).ok();
    assert_eq!(
        docs.calls(),
        fetched_only_registered + 1,
        "one refetch of the expired cache"
    );
}

#[test]
fn j4_zero_signature_refused() {
    let (h, _) = server();
    let c = claims(&h, INLINE, "zero");
    let input = format!("{}.{}", b64(es256("k1").to_string()), b64(c.to_string()));
    for sig in [
        vec![0u8; 64],
        [vec![0u8; 32], vec![1u8; 32]].concat(),
        vec![],
    ] {
        let jwt = format!("{input}.{}", b64(&sig));
        cc(&h, &jwt, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    cc(&h, &assertion(&h, INLINE, "zero"), &[]).ok();
}

#[test]
fn j5_time_claims_and_type_enforced_with_bounded_skew() {
    let (h, _) = server();
    let now = h.server.now();
    let cases = [
        ("iat in the future", "iat", json!(now + 120)),
        ("nbf in the future", "nbf", json!(now + 120)),
        ("iat far in the past", "iat", json!(now - 4000)),
        ("exp not a number", "exp", json!("tomorrow")),
    ];
    for (i, (why, claim, value)) in cases.iter().enumerate() {
        let mut c = claims(&h, INLINE, &format!("j5-{i}"));
        c[*claim] = value.clone();
        let answer = cc(&h, &jws(&client_key(), es256("k1"), &c), &[]);
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {}",
            answer.body
        );
    }
    for typ in ["at+jwt", "dpop+jwt", "oauth-id-jag+jwt"] {
        let header = json!({"alg": "ES256", "kid": "k1", "typ": typ});
        cc(
            &h,
            &jws(&client_key(), header, &claims(&h, INLINE, typ)),
            &[],
        )
        .refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    // Within the skew is fine.
    let mut c = claims(&h, INLINE, "skew-ok");
    c["iat"] = (now + 30).into();
    c["nbf"] = (now + 30).into();
    cc(&h, &jws(&client_key(), es256("k1"), &c), &[]).ok();
}

#[test]
fn jwks_uri_is_fetched_cached_and_refetched_once_on_an_unknown_kid() {
    let (h, docs) = server();
    cc(&h, &assertion(&h, REMOTE, "r1"), &[]).ok();
    cc(&h, &assertion(&h, REMOTE, "r2"), &[]).ok();
    assert_eq!(docs.calls(), 1, "the set is cached");
    // The client rolls over to a new key, published at its jwks_uri.
    let next = key(202, "k2");
    docs.set(
        REMOTE_JWKS,
        json!({ "keys": [client_key().jwk, next.jwk.clone()] }),
    );
    h.clock.advance(11);
    cc(&h, &jws(&next, es256("k2"), &claims(&h, REMOTE, "r3")), &[]).ok();
    assert_eq!(docs.calls(), 2, "an unknown kid refetches the set");
    // Made-up kids refetch at most every few seconds.
    for i in 0..5 {
        let forged = jws(
            &next,
            es256(&format!("nope-{i}")),
            &claims(&h, REMOTE, "r4"),
        );
        cc(&h, &forged, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    assert_eq!(
        docs.calls(),
        2,
        "within the refetch interval nothing is fetched"
    );
    // A failed refetch keeps the last good set.
    docs.set(REMOTE_JWKS, json!("gone"));
    h.clock.advance(11);
    let forged = jws(&next, es256("nope"), &claims(&h, REMOTE, "r5"));
    cc(&h, &forged, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(docs.calls(), 3);
    cc(&h, &forged, &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        docs.calls(),
        3,
        "the refetch interval holds after a failed refetch"
    );
    cc(&h, &jws(&next, es256("k2"), &claims(&h, REMOTE, "r6")), &[]).ok();
}

#[test]
fn jwks_uri_failures_are_reported_and_ssrf_destinations_never_fetched() {
    let (h, docs) = server();
    let answer = cc(&h, &assertion(&h, SSRF, "s1"), &[]);
    answer.refused(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .contains("could not be fetched"),
        "{}",
        answer.body
    );
    assert_eq!(
        docs.calls(),
        0,
        "a link-local destination is refused before fetching"
    );
    // An unreachable set is reported as such, and the failure is cached briefly.
    docs.set(REMOTE_JWKS, json!({"keys": "not a list"}));
    let answer = cc(&h, &assertion(&h, REMOTE, "s2"), &[]);
    answer.refused(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(answer.body["error_description"]
        .as_str()
        .unwrap()
        .contains("could not be fetched"));
    cc(&h, &assertion(&h, REMOTE, "s3"), &[]).refused(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(docs.calls(), 1);
    docs.set(REMOTE_JWKS, json!({ "keys": [client_key().jwk] }));
    h.clock.advance(h.server.config().cimd.failure_cache_secs);
    cc(&h, &assertion(&h, REMOTE, "s4"), &[]).ok();
    assert_eq!(docs.calls(), 2);
}

fn register(h: &H, body: &Value) -> (StatusCode, Value) {
    json_of(
        h.send(
            http::Request::builder()
                .method(http::Method::POST)
                .uri("/oauth/register")
                .header(header::CONTENT_TYPE, "application/json")
                .body(bytes::Bytes::from(body.to_string()))
                .unwrap(),
        ),
    )
}

fn allow_machine_grant(h: &H, id: &str) {
    block(crate::store::repo::client_policies::put(
        h.sql.as_ref(),
        &crate::store::repo::client_policies::ClientPolicy {
            client_id: id.into(),
            client_credentials: true,
            ..Default::default()
        },
    ))
    .unwrap();
}

#[test]
fn dynamically_registered_private_key_jwt_client_gets_no_secret() {
    let next = key(303, "dcr-key");
    let body = json!({
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": { "keys": [next.jwk] },
    });
    // K1: by default nobody registers a machine client for themselves.
    let (h, _) = server();
    let (status, err) = register(&h, &body);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "invalid_client_metadata");

    let mut cfg = config();
    cfg.machine_clients.dynamic_registration = crate::config::MachineRegistration::Approval;
    let (h, _) = server_with(cfg);
    let (status, reg) = register(&h, &body);
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    assert!(reg.get("client_secret").is_none(), "{reg}");
    assert_eq!(reg["token_endpoint_auth_method"], "private_key_jwt");
    let id = reg["client_id"].as_str().unwrap();
    // Registered for approval: no token until the operator allows it.
    cc(
        &h,
        &jws(&next, es256("dcr-key"), &claims(&h, id, "d0")),
        &[],
    )
    .refused(StatusCode::BAD_REQUEST, "unauthorized_client");
    allow_machine_grant(&h, id);
    cc(
        &h,
        &jws(&next, es256("dcr-key"), &claims(&h, id, "d1")),
        &[],
    )
    .ok();
    // Registering private_key_jwt without keys, or with a private key, is refused.
    let mut private = next.jwk.clone();
    private["d"] = "c2VjcmV0".into();
    for bad in [
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
               "jwks": {"keys": [private]}}),
    ] {
        let (status, err) = register(&h, &bad);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(err["error"], "invalid_client_metadata");
    }
}

#[test]
fn metadata_document_client_authenticates_with_its_jwks_uri() {
    let (h, docs) = server();
    let id = "https://agent.example.com/oauth/client.json";
    let jwks_uri = "https://agent.example.com/oauth/jwks.json";
    let agent = key(404, "agent-1");
    docs.set(
        id,
        json!({
            "client_id": id,
            "client_name": "Agent",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": jwks_uri,
        }),
    );
    docs.set(jwks_uri, json!({ "keys": [agent.jwk] }));
    // K1: a metadata document alone earns no machine token.
    cc(
        &h,
        &jws(&agent, es256("agent-1"), &claims(&h, id, "m0")),
        &[],
    )
    .refused(StatusCode::BAD_REQUEST, "unauthorized_client");
    allow_machine_grant(&h, id);
    cc(
        &h,
        &jws(&agent, es256("agent-1"), &claims(&h, id, "m1")),
        &[],
    )
    .ok();
    // It cannot fall back to client_id alone.
    post(
        &h,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", id)],
        &[],
    )
    .refused(StatusCode::UNAUTHORIZED, "invalid_client");
}
