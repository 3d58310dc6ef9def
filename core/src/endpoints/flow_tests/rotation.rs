//! Signing-key rotation with pre-publication (RFC 7517 JWKS, RFC 9068 §2.1 `kid`): a new key
//! is in the JWKS before it signs, exactly one key signs at any time, retired keys stay
//! published until their tokens expire, scheduled rotation needs no operator, and several
//! instances on one store agree. The centrepiece is a verifier that caches the JWKS
//! validating a continuous stream of tokens across several rotations with zero failures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use super::harness::*;
use crate::config::Config;
use crate::crypto::RustCrypto;
use crate::runtime::FixedClock;
use crate::server::Portcullis;
use crate::store::test_store::{test_env_on, TestSql};

const ADMIN_KEY: &str = "rotation-admin-key-0123456789";

fn cfg(rotation_interval: i64, prepublish: i64) -> Config {
    Config {
        admin_api_key: Some(ADMIN_KEY.into()),
        key_rotation_interval: rotation_interval,
        key_prepublish_secs: prepublish,
        access_token_ttl: 900,
        client_credentials_ttl: 3600,
        ..config()
    }
}

fn admin(h: &H, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Bytes::new, |v| Bytes::from(v.to_string()));
    json_of(block(h.server.handle_admin(b.body(body).unwrap())))
}

/// `(kid, status)` of every published key, from the admin API.
fn statuses(h: &H) -> BTreeMap<String, String> {
    let (status, body) = admin(h, Method::GET, "/admin/keys", None);
    assert_eq!(status, StatusCode::OK, "{body}");
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn active_kids(h: &H) -> Vec<String> {
    statuses(h)
        .into_iter()
        .filter(|(_, s)| s == "active")
        .map(|(k, _)| k)
        .collect()
}

/// A fresh `client_credentials` token (its response must be 200).
fn token(h: &H) -> String {
    let (status, body) = h.token(CONFIDENTIAL, &[("grant_type", "client_credentials")]);
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn kid_of(token: &str) -> String {
    crate::jose::header(token).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn jwks_kids(h: &H) -> BTreeSet<String> {
    let (_, jwks) = json_of(h.get("/.well-known/jwks.json", ""));
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn rotate(h: &H, prepublish: Option<i64>) -> Value {
    let body = prepublish.map(|p| json!({ "prepublish_secs": p }));
    let (status, key) = admin(h, Method::POST, "/admin/keys/rotate", body);
    assert_eq!(status, StatusCode::CREATED, "{key}");
    key
}

fn audit_count(h: &H, action: &str) -> usize {
    block(crate::store::repo::audit::list(
        h.server.env().sql.as_ref(),
        &crate::store::repo::audit::AuditFilter {
            action: Some(action.into()),
            limit: 1000,
            ..Default::default()
        },
    ))
    .unwrap()
    .len()
}

#[test]
fn prepublished_key_is_published_at_once_and_signs_only_when_it_activates() {
    let h = H::with_config(cfg(0, 0));
    let old = kid_of(&token(&h));
    let new = rotate(&h, Some(600));
    let new_kid = new["kid"].as_str().unwrap().to_owned();
    assert_eq!(new["status"], "pending");
    assert_eq!(new["activates_at"], h.server.now() + 600);
    assert_eq!(
        jwks_kids(&h),
        BTreeSet::from([old.clone(), new_kid.clone()])
    );
    assert_eq!(statuses(&h)[&old], "active");
    assert_eq!(statuses(&h)[&new_kid], "pending");
    h.clock.advance(599);
    assert_eq!(kid_of(&token(&h)), old, "the pending key does not sign yet");
    h.clock.advance(1);
    let t = token(&h);
    assert_eq!(kid_of(&t), new_kid, "it signs from activates_at on");
    assert_eq!(statuses(&h)[&old], "retired");
    assert_eq!(active_kids(&h), vec![new_kid.clone()]);
    assert_eq!(h.introspect(&t)["active"], true);
    assert_eq!(audit_count(&h, "key.rotated"), 1);
    assert_eq!(audit_count(&h, "key.activated"), 1);
    token(&h);
    assert_eq!(audit_count(&h, "key.activated"), 1, "recorded once");
    // The retired key leaves the JWKS once the longest token lifetime (plus a margin) has
    // passed since it stopped signing.
    h.clock.advance(3600 + 59);
    assert!(jwks_kids(&h).contains(&old));
    h.clock.advance(1);
    assert_eq!(jwks_kids(&h), BTreeSet::from([new_kid]));
}

#[test]
fn admin_rotate_validates_its_body_and_defaults_to_the_configured_prepublication() {
    let h = H::with_config(cfg(0, 120));
    let key = rotate(&h, None);
    assert_eq!(key["status"], "pending");
    assert_eq!(key["activates_at"], h.server.now() + 120);
    let key = rotate(&h, Some(0));
    assert_eq!(key["status"], "active");
    // The immediate rotation also retired the key that was still pending.
    let s = statuses(&h);
    assert_eq!(s.values().filter(|v| *v == "active").count(), 1);
    assert_eq!(s.values().filter(|v| *v == "pending").count(), 0);
    for bad in [
        json!({ "prepublish_secs": -1 }),
        json!({ "prepublish_secs": 10 * 365 * 24 * 3600 }),
        json!({ "prepublish_secs": "soon" }),
        json!({ "other": 1 }),
    ] {
        let (status, body) = admin(&h, Method::POST, "/admin/keys/rotate", Some(bad.clone()));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[test]
fn scheduled_rotation_prepublishes_the_successor() {
    let interval = 4 * 3600;
    let h = H::with_config(cfg(interval, 1800));
    let first = kid_of(&token(&h));
    h.clock.advance(interval - 1800 - 1);
    assert_eq!(kid_of(&token(&h)), first);
    assert_eq!(jwks_kids(&h).len(), 1, "nothing scheduled yet");
    h.clock.advance(1);
    assert_eq!(
        kid_of(&token(&h)),
        first,
        "the successor is scheduled, not active"
    );
    let kids = jwks_kids(&h);
    assert_eq!(kids.len(), 2, "and published");
    let next = kids.iter().find(|k| **k != first).unwrap().clone();
    assert_eq!(statuses(&h)[&next], "pending");
    h.clock.advance(1799);
    assert_eq!(kid_of(&token(&h)), first);
    assert_eq!(jwks_kids(&h).len(), 2, "one successor only");
    h.clock.advance(1);
    assert_eq!(kid_of(&token(&h)), next);
    assert_eq!(active_kids(&h), vec![next]);
    assert_eq!(audit_count(&h, "key.rotated"), 1);
}

#[test]
fn scheduled_rotation_without_traffic_still_prepublishes() {
    // Nobody asks for a token until long after the interval: the old key keeps signing
    // until the successor has been published for the pre-publication time.
    let interval = 3600;
    let h = H::with_config(cfg(interval, 0));
    let first = kid_of(&token(&h));
    h.clock.advance(5 * interval);
    assert_eq!(kid_of(&token(&h)), first);
    assert_eq!(jwks_kids(&h).len(), 2);
    h.clock.advance(crate::keys::JWKS_MAX_AGE_SECS - 1);
    assert_eq!(kid_of(&token(&h)), first);
    h.clock.advance(1);
    assert_ne!(kid_of(&token(&h)), first);
}

/// Two instances (own caches, own RNG) sharing one store and one clock.
fn two_instances(cfg: Config) -> (H, Portcullis) {
    let sql = Arc::new(TestSql::memory());
    let (env, clock) = test_env_on(sql.clone());
    let a = block(Portcullis::start(env.clone(), cfg.clone())).unwrap();
    let mut env_b = env;
    env_b.rng = Arc::new(crate::runtime::SeededRng::new(99));
    env_b.kv = Arc::new(crate::store::MemoryKv::default());
    let b = block(Portcullis::start(env_b, cfg)).unwrap();
    (
        H {
            server: a,
            clock,
            sql,
        },
        b,
    )
}

fn token_from(server: &Portcullis) -> String {
    let h = H {
        server: server.clone(),
        clock: Arc::new(FixedClock::at(0)),
        sql: Arc::new(TestSql::memory()),
    };
    token(&h)
}

#[test]
fn instances_sharing_a_store_publish_before_signing_and_schedule_one_successor() {
    let interval = 4 * 3600;
    let (a, b) = two_instances(cfg(interval, 1800));
    let first = kid_of(&token(&a));
    assert_eq!(
        kid_of(&token_from(&b)),
        first,
        "the second instance uses the stored key"
    );
    // Instance A rotates with pre-publication; B publishes the new key at once (its JWKS
    // is read from storage) although its signer cache is older.
    let new = rotate(&a, Some(600))["kid"].as_str().unwrap().to_owned();
    let b_jwks = || {
        let (_, j) = json_of(block(
            b.handle(
                Request::builder()
                    .uri("/.well-known/jwks.json")
                    .body(Bytes::new())
                    .unwrap(),
            ),
        ));
        j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert!(b_jwks().contains(&new));
    // At every moment, whatever either instance signs is in the other's JWKS.
    for _ in 0..30 {
        a.clock.advance(60);
        for t in [token(&a), token_from(&b)] {
            assert!(b_jwks().contains(&kid_of(&t)));
            assert!(jwks_kids(&a).contains(&kid_of(&t)));
        }
    }
    assert_eq!(kid_of(&token(&a)), new);
    assert_eq!(kid_of(&token_from(&b)), new);
    // The scheduled rotation point: while one instance holds the right to create the
    // successor (simulated by reserving it), the others create none and keep signing.
    let since = a.server.now() - 1800 + 600;
    a.clock.set(since + interval - 1800);
    let now = a.server.now();
    let lock = format!("key-rotation:{new}");
    assert!(block(crate::store::repo::replay::reserve(
        a.sql.as_ref(),
        &lock,
        now + 600,
        now
    ))
    .unwrap());
    let pending = |h: &H| statuses(h).values().filter(|s| *s == "pending").count();
    assert_eq!(kid_of(&token_from(&b)), new);
    assert_eq!(kid_of(&token(&a)), new);
    assert_eq!(pending(&a), 0);
    // Once the right lapses, the next instance to sign creates exactly one successor.
    a.clock.advance(600);
    assert_eq!(kid_of(&token_from(&b)), new);
    assert_eq!(pending(&a), 1);
    a.clock.advance(31);
    token(&a);
    token_from(&b);
    assert_eq!(pending(&a), 1);
    assert_eq!(audit_count(&a, "key.rotated"), 2);
}

/// A resource server's verifier: it caches the JWKS, refreshes it when the cached copy is
/// older than `max_age` (None: never, only on an unknown `kid`), and refetches on an
/// unknown `kid` at most every `min_refetch` seconds.
struct Verifier {
    max_age: Option<i64>,
    min_refetch: i64,
    jwks: Value,
    fetched_at: i64,
    fetches: usize,
    unknown_kid_fetches: usize,
    failures: Vec<String>,
}

impl Verifier {
    fn new(h: &H, max_age: Option<i64>, min_refetch: i64) -> Self {
        let mut v = Self {
            max_age,
            min_refetch,
            jwks: Value::Null,
            fetched_at: 0,
            fetches: 0,
            unknown_kid_fetches: 0,
            failures: vec![],
        };
        v.fetch(h);
        v
    }

    fn fetch(&mut self, h: &H) {
        let resp = h.get("/.well-known/jwks.json", "");
        let cc = resp.headers()[header::CACHE_CONTROL].to_str().unwrap();
        assert!(cc.contains(&format!("max-age={}", crate::keys::JWKS_MAX_AGE_SECS)));
        self.jwks = json_of(resp).1;
        self.fetched_at = h.server.now();
        self.fetches += 1;
    }

    fn verify(&mut self, h: &H, token: &str) {
        let now = h.server.now();
        if self.max_age.is_some_and(|m| now - self.fetched_at >= m) {
            self.fetch(h);
        }
        let kid = kid_of(token);
        if crate::jose::select_key(&self.jwks, Some(&kid)).is_none()
            && now - self.fetched_at >= self.min_refetch
        {
            self.unknown_kid_fetches += 1;
            self.fetch(h);
        }
        let Some(key) = crate::jose::select_key(&self.jwks, Some(&kid)) else {
            self.failures.push(format!("t={now}: unknown kid {kid}"));
            return;
        };
        match futures::executor::block_on(crate::jose::verify_with_jwk(&RustCrypto, token, key)) {
            Ok(c) if c["exp"].as_i64().is_some_and(|e| e > now) && c["aud"] == RESOURCE => {}
            Ok(c) => self.failures.push(format!("t={now}: bad claims {c:?}")),
            Err(e) => self.failures.push(format!("t={now}: {e}")),
        }
    }
}

#[test]
fn zero_verification_failures_while_keys_rotate() {
    let interval = 4 * 3600;
    let prepublish = 1800;
    let h = H::with_config(cfg(interval, prepublish));
    let start = h.server.now();
    // Honours Cache-Control and refetches on an unknown kid at most once a minute.
    let mut periodic = Verifier::new(&h, Some(crate::keys::JWKS_MAX_AGE_SECS), 60);
    // Only ever refetches on an unknown kid, at most every ten minutes.
    let mut lazy = Verifier::new(&h, None, 600);
    // A cold verifier (fresh JWKS each time) re-checks every unexpired token.
    let mut live: Vec<(String, i64)> = vec![];
    let mut cold_failures = vec![];
    let mut first_published: BTreeMap<String, i64> = BTreeMap::new();
    let mut first_signed: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_exp: BTreeMap<String, i64> = BTreeMap::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut published: BTreeSet<String> = jwks_kids(&h);
    for k in &published {
        first_published.insert(k.clone(), start);
    }
    let step = 120;
    let mut immediate = None;
    while h.server.now() < start + 14 * 3600 {
        let elapsed = h.server.now() - start;
        // Operators rotate too: once with pre-publication, once immediately.
        if elapsed == 5 * 3600 {
            rotate(&h, Some(prepublish));
        }
        if elapsed == 8 * 3600 + step {
            immediate = Some(rotate(&h, Some(0))["kid"].as_str().unwrap().to_owned());
        }
        let now = h.server.now();
        let t = token(&h);
        let kid = kid_of(&t);
        first_signed.entry(kid.clone()).or_insert(now);
        last_exp.insert(kid.clone(), now + 3600);
        periodic.verify(&h, &t);
        lazy.verify(&h, &t);
        live.push((t, now + 3600));
        live.retain(|(_, exp)| *exp > now);
        let jwks = h.get("/.well-known/jwks.json", "");
        let jwks = json_of(jwks).1;
        for (tok, _) in &live {
            let key = crate::jose::select_key(&jwks, Some(&kid_of(tok)));
            if key.is_none_or(|k| {
                futures::executor::block_on(crate::jose::verify_with_jwk(&RustCrypto, tok, k))
                    .is_err()
            }) {
                cold_failures.push(format!("t={now}: {}", kid_of(tok)));
            }
        }
        // Exactly one key signs at any moment.
        assert_eq!(active_kids(&h).len(), 1, "t={elapsed}");
        let now_published = jwks_kids(&h);
        for k in now_published.difference(&published) {
            first_published.insert(k.clone(), now);
        }
        for k in published.difference(&now_published) {
            assert!(
                last_exp.get(k).is_none_or(|e| *e <= now),
                "{k} left the JWKS before its last token expired"
            );
            removed.insert(k.clone());
        }
        published = now_published;
        h.clock.advance(step);
    }
    assert!(periodic.failures.is_empty(), "{:?}", periodic.failures);
    assert!(lazy.failures.is_empty(), "{:?}", lazy.failures);
    assert!(cold_failures.is_empty(), "{cold_failures:?}");
    // Five keys signed: the first, two scheduled successors, two operator rotations.
    assert_eq!(first_signed.len(), 5, "{first_signed:?}");
    let immediate = immediate.unwrap();
    for (kid, signed) in &first_signed {
        let lead = signed - first_published[kid];
        if *kid == immediate {
            assert_eq!(lead, 0);
        } else if *signed > start {
            assert!(
                lead >= prepublish,
                "{kid} signed {lead} s after publication"
            );
        }
    }
    // The verifier honouring Cache-Control met an unknown kid only for the immediate
    // rotation; the lazy one once per new key, and never failed.
    assert_eq!(periodic.unknown_kid_fetches, 1);
    assert_eq!(lazy.unknown_kid_fetches, 4);
    assert_eq!(lazy.fetches, 5);
    // Retired keys did leave the JWKS after their tokens expired.
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert_eq!(published.len(), 1);
    assert_eq!(audit_count(&h, "key.rotated"), 4);
    assert_eq!(audit_count(&h, "key.activated"), 3);
}
