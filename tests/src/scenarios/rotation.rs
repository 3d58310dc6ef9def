//! Signing-key rotation against a running server (RFC 7517 JWKS, RFC 9068 §2.1 `kid`): a
//! pre-published key is in the JWKS before it signs, and a resource server's verifier that
//! caches the JWKS (refetching only on an unknown `kid`, at most once per interval) validates
//! a continuous stream of tokens across several rotations without a single failure. The
//! server's clock cannot be moved on every host, so the rotations that activate are immediate
//! (`prepublish_secs: 0`); the time-dependent windows (pre-publication, activation,
//! retirement) are the clocked scenarios of [`super::key_schedule`].
//!
//! Rotation changes server-wide state, so this scenario wants a server of its own.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::support::*;
use super::Target;

/// How often the verifier may refetch the JWKS because of an unknown `kid`.
const MIN_REFETCH: Duration = Duration::from_secs(1);

/// A resource server's token verifier with a cached JWKS (verification by `jsonwebtoken`).
struct CachingVerifier {
    audience: String,
    jwks: Value,
    fetched: Instant,
    fetches: usize,
    unknown_kid_fetches: usize,
    failures: Vec<String>,
}

impl CachingVerifier {
    async fn new(t: &Target, audience: &str) -> Self {
        Self {
            audience: audience.to_owned(),
            jwks: jwks(t).await,
            fetched: Instant::now(),
            fetches: 1,
            unknown_kid_fetches: 0,
            failures: vec![],
        }
    }

    fn key(&self, kid: &str) -> Option<Value> {
        self.jwks["keys"]
            .as_array()?
            .iter()
            .find(|k| k["kid"] == json!(kid))
            .cloned()
    }

    async fn verify(&mut self, t: &Target, token: &str) {
        let kid = match jsonwebtoken::decode_header(token) {
            Ok(h) => h.kid.unwrap_or_default(),
            Err(e) => return self.failures.push(format!("header: {e}")),
        };
        if self.key(&kid).is_none() && self.fetched.elapsed() >= MIN_REFETCH {
            self.jwks = jwks(t).await;
            self.fetched = Instant::now();
            self.fetches += 1;
            self.unknown_kid_fetches += 1;
        }
        let Some(jwk) = self.key(&kid) else {
            return self.failures.push(format!("unknown kid {kid}"));
        };
        let jwk: jsonwebtoken::jwk::Jwk = match serde_json::from_value(jwk) {
            Ok(j) => j,
            Err(e) => return self.failures.push(format!("JWK: {e}")),
        };
        let key = match jsonwebtoken::DecodingKey::from_jwk(&jwk) {
            Ok(k) => k,
            Err(e) => return self.failures.push(format!("key: {e}")),
        };
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_issuer(&[t.base.as_str()]);
        v.set_audience(&[self.audience.as_str()]);
        v.leeway = 5;
        if let Err(e) = jsonwebtoken::decode::<Value>(token, &key, &v) {
            self.failures.push(format!("kid {kid}: {e}"));
        }
    }
}

async fn jwks(t: &Target) -> Value {
    send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWS")
        .kid
        .expect("a kid")
}

async fn rotate(t: &Target, prepublish_secs: i64) -> Value {
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/keys/rotate",
        Some(json!({ "prepublish_secs": prepublish_secs })),
    )
    .await
}

/// `kid` → status, from the admin API.
async fn statuses(t: &Target) -> Vec<(String, String)> {
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

/// A pre-published key is in the JWKS at once but does not sign; immediate rotations make
/// a caching verifier meet an unknown `kid`, refetch once, and never fail; tokens signed by
/// retired keys keep verifying.
pub async fn key_rotation_zero_verification_failures(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let client = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let secret = client.secret.clone().expect("a secret");
    let issue = || async {
        tokens(
            &token(
                t,
                &[
                    ("grant_type", "client_credentials"),
                    ("resource", &resource),
                ],
                Auth::Basic(&client.id, &secret),
            )
            .await,
        )
        .access
    };
    let mut verifier = CachingVerifier::new(t, &resource).await;
    let mut issued = vec![issue().await];
    let first = kid_of(&issued[0]);
    verifier.verify(t, &issued[0]).await;

    // Pre-publication: published at once, pending, not signing.
    let pending = rotate(t, 3600).await;
    assert_eq!(pending["status"], json!("pending"), "{pending}");
    let pending_kid = pending["kid"].as_str().expect("kid").to_owned();
    assert!(kids(&jwks(t).await).contains(&pending_kid));
    let s = statuses(t).await;
    assert!(
        s.contains(&(pending_kid.clone(), "pending".into())),
        "{s:?}"
    );
    assert!(s.contains(&(first.clone(), "active".into())), "{s:?}");
    for _ in 0..3 {
        let tok = issue().await;
        assert_eq!(kid_of(&tok), first, "a pending key does not sign");
        verifier.verify(t, &tok).await;
        issued.push(tok);
    }
    assert_eq!(verifier.unknown_kid_fetches, 0);

    // Immediate rotations while tokens keep flowing.
    let mut signing = vec![first];
    for round in 0..3 {
        tokio::time::sleep(MIN_REFETCH).await;
        let key = rotate(t, 0).await;
        assert_eq!(key["status"], json!("active"), "{key}");
        let kid = key["kid"].as_str().expect("kid").to_owned();
        for _ in 0..4 {
            let tok = issue().await;
            assert_eq!(kid_of(&tok), kid, "round {round}: the new key signs");
            verifier.verify(t, &tok).await;
            issued.push(tok);
        }
        signing.push(kid);
        // Every token issued so far still verifies (retired keys stay published).
        for tok in &issued {
            verifier.verify(t, tok).await;
        }
        let s = statuses(t).await;
        assert_eq!(
            s.iter().filter(|(_, st)| st == "active").count(),
            1,
            "exactly one key signs: {s:?}"
        );
    }
    assert!(verifier.failures.is_empty(), "{:?}", verifier.failures);
    assert_eq!(verifier.unknown_kid_fetches, 3, "one refetch per new key");
    let published = kids(&jwks(t).await);
    for kid in &signing {
        assert!(published.contains(kid), "{kid} is still published");
    }
    // The pre-published key was superseded before it ever signed.
    let s = statuses(t).await;
    assert!(s.contains(&(pending_kid, "retired".into())), "{s:?}");
    let audit = admin_ok(
        t,
        reqwest::Method::GET,
        "/admin/audit?action=key.rotated",
        None,
    )
    .await;
    let events = audit
        .as_object()
        .and_then(|o| o.values().find_map(Value::as_array))
        .map_or(0, Vec::len);
    assert!(events >= 4, "every rotation is audited: {audit}");
}
