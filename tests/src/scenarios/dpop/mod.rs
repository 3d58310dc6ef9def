//! DPoP (RFC 9449) at the token endpoint over HTTP: bound tokens (`token_type: DPoP`,
//! `cnf.jkt`, introspection) and bearer tokens without a proof, every refused proof of
//! SECURITY-CHECKLIST D1 (each its own scenario, with the reason of its `dpop.rejected` audit
//! event read through the admin API), and replay (D2). Bindings (D3) and server nonces (D4)
//! are in [`binding`]; the D4 scenarios in [`NONCE_REQUIRED`] need a server started with
//! `dpop.require_nonce = true` (`PORTCULLIS_DPOP__REQUIRE_NONCE=true`), the others run on a
//! server without it.
//!
//! Proofs are built here from their parts (header, claims, ES256 signature) so that each
//! malformed variant can be sent.

mod binding;

pub use binding::*;

use std::sync::Mutex;

use portcullis_core::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
use portcullis_core::runtime::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::support::*;
use super::Target;

/// Scenarios that need a server requiring DPoP nonces.
pub const NONCE_REQUIRED: &[&str] = &[
    "d4_nonce_challenge_round_trips",
    "d4_forged_nonce_refused",
    "d4_bearer_requests_unaffected_by_required_nonces",
];

/// Randomness for key generation, from the suite's unique ids.
struct SuiteRng(Mutex<u32>, String);

impl Rng for SuiteRng {
    fn fill(&self, buf: &mut [u8]) {
        let mut n = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in buf.chunks_mut(32) {
            *n += 1;
            let block = Sha256::digest(format!("{}/{}", self.1, *n).as_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// A DPoP client key.
pub struct Key {
    scalar: [u8; 32],
    /// The public JWK.
    pub jwk: Value,
}

impl Key {
    /// A fresh P-256 key.
    pub fn new() -> Self {
        let rng = SuiteRng(Mutex::new(0), random_b64(32));
        let scalar = generate_scalar(&rng);
        let sec1 = public_key_sec1(&scalar).expect("a valid scalar");
        Self {
            scalar,
            jwk: portcullis_core::keys::public_jwk(&sec1),
        }
    }
    /// RFC 7638 thumbprint, computed here from the canonical JSON.
    pub fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        b64(Sha256::digest(canonical.as_bytes()))
    }
    /// The standard proof header.
    pub fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk })
    }
    /// Standard claims for a POST to `url`, issued now.
    pub fn claims(&self, url: &str) -> Value {
        self.claims_at(url, unix_now())
    }
    /// Standard claims for a POST to `url`, issued at `iat`.
    pub fn claims_at(&self, url: &str, iat: i64) -> Value {
        json!({ "jti": random_b64(16), "htm": "POST", "htu": url, "iat": iat })
    }
    /// Signs `claims` under `header`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signer = RustCrypto.es256_signer(&self.scalar).expect("signer");
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = futures::executor::block_on(signer.sign(input.as_bytes())).expect("signs");
        format!("{input}.{}", b64(sig))
    }
    /// A valid proof for the token endpoint of `t`.
    pub fn proof(&self, t: &Target) -> String {
        self.sign(&self.header(), &self.claims(&t.url("/oauth/token")))
    }
    /// A valid proof with a server nonce.
    pub fn proof_with_nonce(&self, t: &Target, nonce: &str) -> String {
        let mut c = self.claims(&t.url("/oauth/token"));
        c["nonce"] = nonce.into();
        self.sign(&self.header(), &c)
    }
}

impl Default for Key {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// POSTs to the token endpoint with client authentication and `DPoP` headers.
pub async fn dpop_token(
    t: &Target,
    form: &[(&str, &str)],
    auth: Auth<'_>,
    proofs: &[&str],
) -> Resp {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut rb = http().post(t.url("/oauth/token"));
    match auth {
        Auth::Nothing => {}
        Auth::Public(id) => form.push(("client_id", id)),
        Auth::Basic(id, secret) => rb = rb.header("authorization", basic(id, secret)),
        Auth::Post(id, secret) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
    }
    for p in proofs {
        rb = rb.header("dpop", *p);
    }
    send(rb.form(&form)).await
}

/// A confidential client_credentials client and a resource.
struct Machine {
    resource: String,
    client: ClientCreds,
}

impl Machine {
    async fn new(t: &Target) -> Self {
        Self {
            resource: new_resource(t, &SCOPES).await,
            client: new_client(t, "client_secret_basic", &["client_credentials"]).await,
        }
    }
    fn auth(&self) -> Auth<'_> {
        Auth::Basic(&self.client.id, self.client.secret.as_deref().unwrap())
    }
    /// The reasons of this client's `dpop.rejected` audit events, oldest first.
    async fn rejections(&self, t: &Target) -> Vec<String> {
        failure_reasons(&audit_events(t, "dpop.rejected", &self.client.id).await)
    }
    async fn token(&self, t: &Target, proofs: &[&str]) -> Resp {
        dpop_token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &self.resource),
            ],
            self.auth(),
            proofs,
        )
        .await
    }
}

/// Asserts a bound token response for `key` and returns the access token.
fn assert_bound(r: &Resp, key: &Key) -> String {
    let v = r.ok_json();
    assert_no_store(r);
    assert_eq!(v["token_type"], json!("DPoP"), "RFC 9449 §5: {v}");
    let at = v["access_token"].as_str().expect("access_token").to_owned();
    assert_eq!(
        jwt_claims(&at)["cnf"],
        json!({ "jkt": key.jkt() }),
        "RFC 9449 §6.1: cnf.jkt is the thumbprint of the proof key"
    );
    at
}

/// A DPoP-bound client_credentials token carries `cnf.jkt`; introspection reports
/// `token_type: DPoP` and `cnf`; no `DPoP-Nonce` comes unless nonces are required; the
/// metadata advertises the proof algorithms. Without a proof the same client gets a bearer
/// token with no `cnf`, which introspection reports as `Bearer`.
pub async fn dpop_bound_token_carries_cnf_jkt(t: &Target) {
    let meta = send(http().get(t.url("/.well-known/oauth-authorization-server")))
        .await
        .ok_json();
    assert_eq!(meta["dpop_signing_alg_values_supported"], json!(["ES256"]));
    let m = Machine::new(t).await;
    let key = Key::new();
    let r = m.token(t, &[&key.proof(t)]).await;
    let at = assert_bound(&r, &key);
    assert!(
        r.header("dpop-nonce").is_none(),
        "no DPoP-Nonce unless nonces are required"
    );
    verify_access_token(t, &at, &m.resource).await;
    let i = introspect(t, &at, m.auth()).await.ok_json();
    assert_eq!(i["active"], json!(true));
    assert_eq!(i["token_type"], json!("DPoP"));
    assert_eq!(i["cnf"], json!({ "jkt": key.jkt() }));
    // Without a proof the same client gets a bearer token.
    let v = m.token(t, &[]).await.ok_json();
    assert_eq!(v["token_type"], json!("Bearer"));
    let bearer = v["access_token"].as_str().expect("access_token");
    assert!(jwt_claims(bearer).get("cnf").is_none(), "{v}");
    let i = introspect(t, bearer, m.auth()).await.ok_json();
    assert_eq!(i["token_type"], json!("Bearer"), "{i}");
    assert!(i.get("cnf").is_none(), "{i}");
}

/// A D1 case: a fresh client sends `proof`; it is refused with `invalid_dpop_proof`, no token
/// is issued, and the refusal is audited as `dpop.rejected` with `reason`.
async fn refused(t: &Target, proof: &str, reason: &str) {
    let m = Machine::new(t).await;
    let r = m.token(t, &[proof]).await;
    r.assert_oauth_error(400, "invalid_dpop_proof");
    assert!(r.json().get("access_token").is_none(), "{}", r.body);
    assert_eq!(
        m.rejections(t).await,
        [reason],
        "the refusal is audited with its reason"
    );
}

fn with_header(t: &Target, key: &Key, f: impl FnOnce(&mut Value)) -> String {
    let mut h = key.header();
    f(&mut h);
    key.sign(&h, &key.claims(&t.url("/oauth/token")))
}

fn with_claims(t: &Target, key: &Key, f: impl FnOnce(&mut Value)) -> String {
    let mut c = key.claims(&t.url("/oauth/token"));
    f(&mut c);
    key.sign(&key.header(), &c)
}

/// D1: `typ` other than `dpop+jwt`.
pub async fn d1_wrong_typ_refused(t: &Target) {
    let k = Key::new();
    refused(t, &with_header(t, &k, |h| h["typ"] = "JWT".into()), "typ").await;
}

/// D1: `alg` other than ES256 (`none`, and ES384 over an ES256 signature).
pub async fn d1_alg_mismatch_refused(t: &Target) {
    let k = Key::new();
    refused(t, &with_header(t, &k, |h| h["alg"] = "ES384".into()), "alg").await;
    refused(t, &with_header(t, &k, |h| h["alg"] = "none".into()), "alg").await;
}

/// D1: a private key (`d`) in the header's `jwk`.
pub async fn d1_private_key_in_header_refused(t: &Target) {
    let k = Key::new();
    let mut private = k.jwk.clone();
    private["d"] = b64(k.scalar).into();
    refused(t, &with_header(t, &k, |h| h["jwk"] = private), "jwk").await;
}

/// D1: a symmetric key in the header's `jwk`.
pub async fn d1_symmetric_key_in_header_refused(t: &Target) {
    let k = Key::new();
    let oct = json!({ "kty": "oct", "k": random_b64(32) });
    refused(t, &with_header(t, &k, |h| h["jwk"] = oct), "jwk").await;
}

/// D1: the header's `jwk` is another key than the one that signed.
pub async fn d1_signature_by_another_key_refused(t: &Target) {
    let k = Key::new();
    let other = Key::new().jwk;
    refused(t, &with_header(t, &k, |h| h["jwk"] = other), "signature").await;
}

/// D1: no `jti`.
pub async fn d1_missing_jti_refused(t: &Target) {
    let k = Key::new();
    let proof = with_claims(t, &k, |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    refused(t, &proof, "jti").await;
}

/// D1: `htm` is not the request method.
pub async fn d1_htm_mismatch_refused(t: &Target) {
    let k = Key::new();
    refused(t, &with_claims(t, &k, |c| c["htm"] = "GET".into()), "htm").await;
}

/// D1: `htu` is another endpoint, or the token endpoint with the other scheme; the token
/// endpoint with a query and a fragment still matches (RFC 9449 §4.3 step 9).
pub async fn d1_htu_mismatch_refused(t: &Target) {
    let k = Key::new();
    let other = t.url("/oauth/introspect");
    refused(t, &with_claims(t, &k, |c| c["htu"] = other.into()), "htu").await;
    let mut scheme = url::Url::parse(&t.url("/oauth/token")).expect("a URL");
    let flipped = if scheme.scheme() == "https" {
        "http"
    } else {
        "https"
    };
    scheme.set_scheme(flipped).expect("http and https swap");
    let flipped = scheme.to_string();
    refused(t, &with_claims(t, &k, |c| c["htu"] = flipped.into()), "htu").await;
    let decorated = format!("{}?a=b#c", t.url("/oauth/token"));
    let m = Machine::new(t).await;
    let proof = with_claims(t, &k, |c| c["htu"] = decorated.into());
    assert_bound(&m.token(t, &[&proof]).await, &k);
}

/// D1: `iat` older than the allowed age (default 300 s).
pub async fn d1_iat_too_old_refused(t: &Target) {
    let k = Key::new();
    let old = t.now() - 3600;
    refused(
        t,
        &with_claims(t, &k, |c| c["iat"] = old.into()),
        "iat_too_old",
    )
    .await;
}

/// D1: `iat` in the future.
pub async fn d1_iat_in_future_refused(t: &Target) {
    let k = Key::new();
    let ahead = t.now() + 3600;
    refused(
        t,
        &with_claims(t, &k, |c| c["iat"] = ahead.into()),
        "iat_in_future",
    )
    .await;
}

/// D1: two `DPoP` headers. Audited as `multiple_proofs`; a runtime that joins repeated
/// headers into one comma-separated value before the core sees them (the Workers `Headers`
/// object does, as the Fetch standard says) hands over a single unparsable proof, audited as
/// `malformed`.
pub async fn d1_two_proofs_refused(t: &Target) {
    let k = Key::new();
    let m = Machine::new(t).await;
    m.token(t, &[&k.proof(t), &k.proof(t)])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let reasons = m.rejections(t).await;
    assert!(
        reasons == ["multiple_proofs"] || reasons == ["malformed"],
        "{reasons:?}"
    );
}

/// D1: a refused proof at a code redemption leaves the code usable: redeemed with a good
/// proof afterwards, it yields bound tokens.
pub async fn d1_refused_proof_keeps_the_code(t: &Target) {
    let f = Fixture::public(t).await;
    let k = Key::new();
    let p = pkce();
    let code = f.code(t, &Browser::new(), &p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", f.client.redirect_uri.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let wrong_method = with_claims(t, &k, |c| c["htm"] = "GET".into());
    dpop_token(t, &form, f.auth(), &[&wrong_method])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    assert_bound(&dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await, &k);
}

/// D2: the same proof sent twice is refused the second time, audited as a replay.
pub async fn d2_replayed_proof_refused(t: &Target) {
    let k = Key::new();
    let m = Machine::new(t).await;
    let proof = k.proof(t);
    assert_bound(&m.token(t, &[&proof]).await, &k);
    m.token(t, &[&proof])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    assert_eq!(m.rejections(t).await, ["replay"]);
}

/// D2: the replay cache is keyed by the key's thumbprint and the `jti`: another key may use
/// the same `jti`, the first key may not use it again.
pub async fn d2_replay_keyed_by_key_and_jti(t: &Target) {
    let (a, b) = (Key::new(), Key::new());
    let m = Machine::new(t).await;
    let mut claims = a.claims(&t.url("/oauth/token"));
    claims["jti"] = json!(random_b64(16));
    assert_bound(&m.token(t, &[&a.sign(&a.header(), &claims)]).await, &a);
    assert_bound(&m.token(t, &[&b.sign(&b.header(), &claims)]).await, &b);
    m.token(t, &[&a.sign(&a.header(), &claims)])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    assert_eq!(m.rejections(t).await, ["replay"]);
}

/// D2: a proof refused for another reason does not spend its `jti`: the corrected proof with
/// the same `jti` is accepted.
pub async fn d2_refused_proof_does_not_spend_its_jti(t: &Target) {
    let k = Key::new();
    let m = Machine::new(t).await;
    let mut claims = k.claims(&t.url("/oauth/token"));
    claims["htm"] = json!("GET");
    m.token(t, &[&k.sign(&k.header(), &claims)])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    claims["htm"] = json!("POST");
    assert_bound(&m.token(t, &[&k.sign(&k.header(), &claims)]).await, &k);
    assert_eq!(m.rejections(t).await, ["htm"]);
}

/// D2 (a host whose clock the test controls; default `dpop.proof_max_age_secs` = 300): a
/// used proof stays reserved for as long as its `iat` is acceptable, through the last second,
/// and is refused as too old after that.
pub async fn d2_replay_refused_until_the_proof_expires(t: &Target) {
    const MAX_AGE: i64 = 300;
    let k = Key::new();
    let m = Machine::new(t).await;
    let proof = k.sign(&k.header(), &k.claims_at(&t.url("/oauth/token"), t.now()));
    assert_bound(&m.token(t, &[&proof]).await, &k);
    t.advance_clock(MAX_AGE);
    m.token(t, &[&proof])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    t.advance_clock(1);
    m.token(t, &[&proof])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    assert_eq!(m.rejections(t).await, ["replay", "iat_too_old"]);
}
