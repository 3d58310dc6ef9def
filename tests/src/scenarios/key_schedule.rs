//! Signing keys over time (RFC 7517 JWKS, RFC 9068 §2.1 `kid`): a pre-published key is in the
//! JWKS at once and signs only from its activation; exactly one key signs at any moment;
//! retired keys stay published until the tokens they signed have expired; scheduled rotation
//! (`key_rotation_interval`) pre-publishes the successor without an operator; and resource
//! servers that cache the JWKS validate a continuous stream of tokens across rotations with
//! zero failures. All but the admin API check move the server's clock (`clocked!`) and run on
//! a server of their own, most with the rotation settings named in the lists.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::support::*;
use super::Target;

/// Scheduled rotation every 4 hours with 30 minutes of pre-publication.
pub const SCHEDULED: &[(&str, &str)] = &[
    ("key_rotation_interval", "14400"),
    ("key_prepublish_secs", "1800"),
];
/// Scheduled rotation every hour without configured pre-publication.
pub const HOURLY: &[(&str, &str)] = &[
    ("key_rotation_interval", "3600"),
    ("key_prepublish_secs", "0"),
];
/// Operator rotations pre-publish for two minutes unless told otherwise.
pub const PREPUBLISH_120: &[(&str, &str)] = &[("key_prepublish_secs", "120")];

/// The longest token lifetime of the default settings (`client_credentials_ttl`).
const LONGEST_TTL: i64 = 3600;

/// A resource and a machine client that issues tokens for it.
struct Issuer {
    resource: String,
    client: ClientCreds,
}

impl Issuer {
    async fn new(t: &Target) -> Self {
        Self {
            resource: new_resource(t, &SCOPES).await,
            client: new_client(t, "client_secret_basic", &["client_credentials"]).await,
        }
    }

    fn auth(&self) -> Auth<'_> {
        Auth::Basic(&self.client.id, self.client.secret.as_deref().unwrap_or(""))
    }

    /// A fresh `client_credentials` token from the server at `t`.
    async fn token(&self, t: &Target) -> String {
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", self.resource.as_str()),
        ];
        tokens(&token(t, &form, self.auth()).await).access
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWS")
        .kid
        .expect("a kid")
}

async fn jwks(t: &Target) -> Value {
    send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json()
}

fn kids(jwks: &Value) -> BTreeSet<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

async fn jwks_kids(t: &Target) -> BTreeSet<String> {
    kids(&jwks(t).await)
}

/// `POST /admin/keys/rotate`, with `prepublish_secs` when given; must answer 201.
async fn rotate(t: &Target, prepublish: Option<i64>) -> Value {
    let body = prepublish.map(|p| json!({ "prepublish_secs": p }));
    let r = admin(t, reqwest::Method::POST, "/admin/keys/rotate", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

/// `kid` → status, from the admin API.
async fn statuses(t: &Target) -> BTreeMap<String, String> {
    let v = admin_ok(t, reqwest::Method::GET, "/admin/keys", None).await;
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().expect("kid").to_owned(),
                k["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

async fn active_kids(t: &Target) -> Vec<String> {
    statuses(t)
        .await
        .into_iter()
        .filter(|(_, s)| s == "active")
        .map(|(k, _)| k)
        .collect()
}

async fn pending_count(t: &Target) -> usize {
    statuses(t)
        .await
        .values()
        .filter(|s| *s == "pending")
        .count()
}

/// How many audit events of `action` there are.
pub async fn audit_count(t: &Target, action: &str) -> usize {
    let v = admin_ok(
        t,
        reqwest::Method::GET,
        &format!("/admin/audit?action={action}&limit=500"),
        None,
    )
    .await;
    v.as_object()
        .and_then(|o| o.values().find_map(Value::as_array))
        .map_or(0, Vec::len)
}

/// A pre-published key (`prepublish_secs: 600`) is in the JWKS at once, pending, and signs
/// from `activates_at` on, retiring the old key; its activation is audited once; the old key
/// leaves the JWKS when the longest token lifetime plus a minute has passed since it stopped
/// signing (clocked).
pub async fn prepublished_key_is_published_at_once_and_signs_only_when_it_activates(t: &Target) {
    let i = Issuer::new(t).await;
    let old = kid_of(&i.token(t).await);
    let new = rotate(t, Some(600)).await;
    let new_kid = new["kid"].as_str().expect("kid").to_owned();
    assert_eq!(new["status"], json!("pending"), "{new}");
    assert_eq!(new["activates_at"], json!(t.now() + 600), "{new}");
    assert_eq!(
        jwks_kids(t).await,
        BTreeSet::from([old.clone(), new_kid.clone()])
    );
    let s = statuses(t).await;
    assert_eq!(
        (s[&old].as_str(), s[&new_kid].as_str()),
        ("active", "pending")
    );
    t.advance_clock(599);
    assert_eq!(
        kid_of(&i.token(t).await),
        old,
        "the pending key does not sign yet"
    );
    t.advance_clock(1);
    let signed = i.token(t).await;
    assert_eq!(kid_of(&signed), new_kid, "it signs from activates_at on");
    assert_eq!(statuses(t).await[&old], "retired");
    assert_eq!(active_kids(t).await, vec![new_kid.clone()]);
    assert!(is_active(t, &signed, i.auth()).await);
    assert_eq!(audit_count(t, "key.rotated").await, 1);
    assert_eq!(audit_count(t, "key.activated").await, 1);
    i.token(t).await;
    assert_eq!(audit_count(t, "key.activated").await, 1, "recorded once");
    t.advance_clock(LONGEST_TTL + 59);
    assert!(jwks_kids(t).await.contains(&old), "still published");
    t.advance_clock(1);
    assert_eq!(jwks_kids(t).await, BTreeSet::from([new_kid]));
}

/// An immediate rotation: both keys are published, the new one signs, tokens of the old one
/// still introspect active, and the retired key leaves the JWKS once its tokens have expired
/// (the longest lifetime, an hour, plus a minute) (clocked).
pub async fn key_rotation_keeps_the_retired_key_published_until_its_tokens_expire(t: &Target) {
    let i = Issuer::new(t).await;
    let old_token = i.token(t).await;
    let key = rotate(t, Some(0)).await;
    assert_eq!(key["status"], json!("active"), "{key}");
    assert_eq!(jwks_kids(t).await.len(), 2);
    let new_token = i.token(t).await;
    assert_ne!(kid_of(&old_token), kid_of(&new_token));
    assert!(is_active(t, &old_token, i.auth()).await);
    t.advance_clock(LONGEST_TTL + 61);
    assert_eq!(
        jwks_kids(t).await,
        BTreeSet::from([kid_of(&new_token)]),
        "only the signing key is left"
    );
}

/// `POST /admin/keys/rotate` without a body pre-publishes for the configured
/// `key_prepublish_secs` ([`PREPUBLISH_120`]); an immediate rotation retires the pending key
/// too; malformed bodies are 400 (no clock needed: runs on every host).
pub async fn admin_rotate_validates_its_body_and_defaults_to_the_configured_prepublication(
    t: &Target,
) {
    let before = t.now();
    let key = rotate(t, None).await;
    let after = t.now();
    assert_eq!(key["status"], json!("pending"), "{key}");
    let at = key["activates_at"].as_i64().expect("activates_at");
    assert!(
        (before + 120..=after + 120).contains(&at),
        "activates two minutes after the rotation: {key}"
    );
    let key = rotate(t, Some(0)).await;
    assert_eq!(key["status"], json!("active"), "{key}");
    let s = statuses(t).await;
    assert_eq!(s.values().filter(|v| *v == "active").count(), 1, "{s:?}");
    assert_eq!(s.values().filter(|v| *v == "pending").count(), 0, "{s:?}");
    for bad in [
        json!({ "prepublish_secs": -1 }),
        json!({ "prepublish_secs": 10 * 365 * 24 * 3600 }),
        json!({ "prepublish_secs": "soon" }),
        json!({ "other": 1 }),
    ] {
        let r = admin(
            t,
            reqwest::Method::POST,
            "/admin/keys/rotate",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

/// Scheduled rotation ([`SCHEDULED`]): the successor is published `key_prepublish_secs`
/// before the interval ends, pending, and signs from the end of the interval; one successor
/// only (clocked).
pub async fn scheduled_rotation_prepublishes_the_successor(t: &Target) {
    let (interval, prepublish) = (14400, 1800);
    let i = Issuer::new(t).await;
    let first = kid_of(&i.token(t).await);
    t.advance_clock(interval - prepublish - 1);
    assert_eq!(kid_of(&i.token(t).await), first);
    assert_eq!(jwks_kids(t).await.len(), 1, "nothing scheduled yet");
    t.advance_clock(1);
    assert_eq!(
        kid_of(&i.token(t).await),
        first,
        "the successor is scheduled, not active"
    );
    let published = jwks_kids(t).await;
    assert_eq!(published.len(), 2, "and published");
    let next = published
        .iter()
        .find(|k| **k != first)
        .expect("a successor")
        .clone();
    assert_eq!(statuses(t).await[&next], "pending");
    t.advance_clock(prepublish - 1);
    assert_eq!(kid_of(&i.token(t).await), first);
    assert_eq!(jwks_kids(t).await.len(), 2, "one successor only");
    t.advance_clock(1);
    assert_eq!(kid_of(&i.token(t).await), next);
    assert_eq!(active_kids(t).await, vec![next]);
    assert_eq!(audit_count(t, "key.rotated").await, 1);
}

/// Scheduled rotation ([`HOURLY`]) on a server nobody asked for a token until long after the
/// interval: the old key keeps signing until the successor has been published for as long as
/// verifiers may cache the JWKS (clocked).
pub async fn scheduled_rotation_without_traffic_still_prepublishes(t: &Target) {
    let interval = 3600;
    let i = Issuer::new(t).await;
    let first = kid_of(&i.token(t).await);
    t.advance_clock(5 * interval);
    assert_eq!(kid_of(&i.token(t).await), first);
    assert_eq!(jwks_kids(t).await.len(), 2);
    t.advance_clock(portcullis_core::keys::JWKS_MAX_AGE_SECS - 1);
    assert_eq!(kid_of(&i.token(t).await), first);
    t.advance_clock(1);
    assert_ne!(kid_of(&i.token(t).await), first);
    assert_eq!(pending_count(t).await, 0);
}

/// A resource server's verifier: it caches the JWKS, refreshes it when the cached copy is
/// older than `max_age` (None: never, only on an unknown `kid`), and refetches on an unknown
/// `kid` at most every `min_refetch` seconds. Times are the server's.
struct Verifier {
    audience: String,
    max_age: Option<i64>,
    min_refetch: i64,
    jwks: Value,
    fetched_at: i64,
    fetches: usize,
    unknown_kid_fetches: usize,
    failures: Vec<String>,
}

impl Verifier {
    async fn new(t: &Target, audience: &str, max_age: Option<i64>, min_refetch: i64) -> Self {
        let mut v = Self {
            audience: audience.to_owned(),
            max_age,
            min_refetch,
            jwks: Value::Null,
            fetched_at: 0,
            fetches: 0,
            unknown_kid_fetches: 0,
            failures: vec![],
        };
        v.fetch(t).await;
        v
    }

    async fn fetch(&mut self, t: &Target) {
        let r = send(http().get(t.url("/.well-known/jwks.json"))).await;
        let cc = r.header("cache-control").unwrap_or_default();
        let max_age = portcullis_core::keys::JWKS_MAX_AGE_SECS;
        assert!(cc.contains(&format!("max-age={max_age}")), "{cc}");
        self.jwks = r.ok_json();
        self.fetched_at = t.now();
        self.fetches += 1;
    }

    async fn verify(&mut self, t: &Target, token: &str) {
        let now = t.now();
        if self.max_age.is_some_and(|m| now - self.fetched_at >= m) {
            self.fetch(t).await;
        }
        let kid = kid_of(token);
        if key_for(&self.jwks, &kid).is_none() && now - self.fetched_at >= self.min_refetch {
            self.unknown_kid_fetches += 1;
            self.fetch(t).await;
        }
        let Some(key) = key_for(&self.jwks, &kid) else {
            self.failures.push(format!("t={now}: unknown kid {kid}"));
            return;
        };
        match verify_at(token, &key, now) {
            Ok(claims) if claims["aud"] == json!(self.audience) => {}
            Ok(claims) => self.failures.push(format!("t={now}: bad claims {claims}")),
            Err(e) => self.failures.push(format!("t={now}: {e}")),
        }
    }
}

fn key_for(jwks: &Value, kid: &str) -> Option<Value> {
    jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .cloned()
}

/// Verifies an ES256 JWS against `jwk` (with `jsonwebtoken`) and checks `exp` against the
/// server's time `now` (the system clock would not do: the server's clock has moved).
fn verify_at(token: &str, jwk: &Value, now: i64) -> Result<Value, String> {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk.clone()).map_err(|e| format!("JWK: {e}"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| format!("key: {e}"))?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .map_err(|e| format!("signature: {e}"))?
        .claims;
    if claims["exp"].as_i64().is_some_and(|e| e > now) {
        Ok(claims)
    } else {
        Err(format!("expired: {claims}"))
    }
}

/// Fourteen hours of traffic, a token every two minutes, across two scheduled rotations
/// ([`SCHEDULED`]), one operator rotation with pre-publication and one immediate one: a
/// verifier that honours `Cache-Control` and one that refetches only on an unknown `kid` never
/// fail, nor does a cold verifier checking every unexpired token against the live JWKS at
/// every step;
/// exactly one key signs at any moment; every key but the immediate one was published for the
/// pre-publication time before it signed; and retired keys leave the JWKS only after their
/// last token expired (clocked).
pub async fn zero_verification_failures_while_keys_rotate(t: &Target) {
    let prepublish = 1800;
    let i = Issuer::new(t).await;
    let start = t.now();
    let max_age = portcullis_core::keys::JWKS_MAX_AGE_SECS;
    // Honours Cache-Control and refetches on an unknown kid at most once a minute.
    let mut periodic = Verifier::new(t, &i.resource, Some(max_age), 60).await;
    // Only ever refetches on an unknown kid, at most every ten minutes.
    let mut lazy = Verifier::new(t, &i.resource, None, 600).await;
    // Unexpired tokens with the key they last verified against (a token is checked again
    // only when the JWKS serves other material under its kid).
    let mut live: Vec<(String, i64, Option<Value>)> = vec![];
    let mut cold_failures = vec![];
    let mut first_published: BTreeMap<String, i64> = BTreeMap::new();
    let mut first_signed: BTreeMap<String, i64> = BTreeMap::new();
    let mut last_exp: BTreeMap<String, i64> = BTreeMap::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut published = jwks_kids(t).await;
    for k in &published {
        first_published.insert(k.clone(), start);
    }
    let step = 120;
    let mut immediate = None;
    while t.now() < start + 14 * 3600 {
        let elapsed = t.now() - start;
        // Operators rotate too: once with pre-publication, once immediately.
        if elapsed == 5 * 3600 {
            rotate(t, Some(prepublish)).await;
        }
        if elapsed == 8 * 3600 + step {
            let key = rotate(t, Some(0)).await;
            immediate = Some(key["kid"].as_str().expect("kid").to_owned());
        }
        let now = t.now();
        let tok = i.token(t).await;
        let kid = kid_of(&tok);
        first_signed.entry(kid.clone()).or_insert(now);
        last_exp.insert(kid.clone(), now + LONGEST_TTL);
        periodic.verify(t, &tok).await;
        lazy.verify(t, &tok).await;
        live.push((tok, now + LONGEST_TTL, None));
        live.retain(|(_, exp, _)| *exp > now);
        let current = jwks(t).await;
        for (tok, _, verified) in &mut live {
            let kid = kid_of(tok);
            match key_for(&current, &kid) {
                Some(k) if verified.as_ref() == Some(&k) => {}
                Some(k) if verify_at(tok, &k, now).is_ok() => *verified = Some(k),
                _ => cold_failures.push(format!("t={now}: {kid}")),
            }
        }
        assert_eq!(active_kids(t).await.len(), 1, "t={elapsed}: one key signs");
        let now_published = kids(&current);
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
        t.advance_clock(step);
    }
    assert!(periodic.failures.is_empty(), "{:?}", periodic.failures);
    assert!(lazy.failures.is_empty(), "{:?}", lazy.failures);
    assert!(cold_failures.is_empty(), "{cold_failures:?}");
    // Five keys signed: the first, two scheduled successors, two operator rotations.
    assert_eq!(first_signed.len(), 5, "{first_signed:?}");
    let immediate = immediate.expect("the immediate rotation happened");
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
    assert_eq!(audit_count(t, "key.rotated").await, 4);
    assert_eq!(audit_count(t, "key.activated").await, 3);
}
