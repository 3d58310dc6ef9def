//! DPoP (RFC 9449) over HTTP: bound tokens (`token_type: DPoP`, `cnf.jkt`, introspection),
//! every refused proof of SECURITY-CHECKLIST D1 (each its own scenario), replay (D2), key
//! binding of public clients' refresh tokens, `dpop_jkt` at authorize and clients registered
//! with `dpop_bound_access_tokens` (D3), and server nonces (D4). The D4 scenarios in
//! [`NONCE_REQUIRED`] need a server started with `dpop.require_nonce = true`
//! (`PORTCULLIS_DPOP__REQUIRE_NONCE=true`); the others run on a server without it.
//!
//! Proofs are built here from their parts (header, claims, ES256 signature) so that each
//! malformed variant can be sent.

use std::sync::Mutex;

use portcullis_core::crypto::rustcrypto::{generate_scalar, public_key_sec1};
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
use portcullis_core::runtime::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::support::*;
use super::Target;

/// Scenarios that need a server requiring DPoP nonces.
pub const NONCE_REQUIRED: &[&str] = &["d4_nonce_challenge_round_trips", "d4_forged_nonce_refused"];

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
        json!({ "jti": random_b64(16), "htm": "POST", "htu": url, "iat": unix_now() })
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
/// `token_type: DPoP` and `cnf`; the metadata advertises the proof algorithms.
pub async fn dpop_bound_token_carries_cnf_jkt(t: &Target) {
    let meta = send(http().get(t.url("/.well-known/oauth-authorization-server")))
        .await
        .ok_json();
    assert_eq!(meta["dpop_signing_alg_values_supported"], json!(["ES256"]));
    let m = Machine::new(t).await;
    let key = Key::new();
    let at = assert_bound(&m.token(t, &[&key.proof(t)]).await, &key);
    verify_access_token(t, &at, &m.resource).await;
    let i = introspect(t, &at, m.auth()).await.ok_json();
    assert_eq!(i["active"], json!(true));
    assert_eq!(i["token_type"], json!("DPoP"));
    assert_eq!(i["cnf"], json!({ "jkt": key.jkt() }));
    // Without a proof the same client gets a bearer token.
    let v = m.token(t, &[]).await.ok_json();
    assert_eq!(v["token_type"], json!("Bearer"));
}

async fn refused(t: &Target, proof: &str) {
    let m = Machine::new(t).await;
    let r = m.token(t, &[proof]).await;
    r.assert_oauth_error(400, "invalid_dpop_proof");
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
    refused(t, &with_header(t, &k, |h| h["typ"] = "JWT".into())).await;
}

/// D1: `alg` other than ES256 (`none`, and ES384 over an ES256 signature).
pub async fn d1_alg_mismatch_refused(t: &Target) {
    let k = Key::new();
    refused(t, &with_header(t, &k, |h| h["alg"] = "ES384".into())).await;
    refused(t, &with_header(t, &k, |h| h["alg"] = "none".into())).await;
}

/// D1: a private key (`d`) in the header's `jwk`.
pub async fn d1_private_key_in_header_refused(t: &Target) {
    let k = Key::new();
    let mut private = k.jwk.clone();
    private["d"] = b64(k.scalar).into();
    refused(t, &with_header(t, &k, |h| h["jwk"] = private)).await;
}

/// D1: a symmetric key in the header's `jwk`.
pub async fn d1_symmetric_key_in_header_refused(t: &Target) {
    let k = Key::new();
    let oct = json!({ "kty": "oct", "k": random_b64(32) });
    refused(t, &with_header(t, &k, |h| h["jwk"] = oct)).await;
}

/// D1: no `jti`.
pub async fn d1_missing_jti_refused(t: &Target) {
    let k = Key::new();
    let proof = with_claims(t, &k, |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    refused(t, &proof).await;
}

/// D1: `htm` is not the request method.
pub async fn d1_htm_mismatch_refused(t: &Target) {
    let k = Key::new();
    refused(t, &with_claims(t, &k, |c| c["htm"] = "GET".into())).await;
}

/// D1: `htu` is another endpoint.
pub async fn d1_htu_mismatch_refused(t: &Target) {
    let k = Key::new();
    let other = t.url("/oauth/introspect");
    refused(t, &with_claims(t, &k, |c| c["htu"] = other.into())).await;
}

/// D1: `iat` older than the allowed age (default 300 s).
pub async fn d1_iat_too_old_refused(t: &Target) {
    let k = Key::new();
    refused(
        t,
        &with_claims(t, &k, |c| c["iat"] = (unix_now() - 3600).into()),
    )
    .await;
}

/// D1: `iat` in the future.
pub async fn d1_iat_in_future_refused(t: &Target) {
    let k = Key::new();
    refused(
        t,
        &with_claims(t, &k, |c| c["iat"] = (unix_now() + 3600).into()),
    )
    .await;
}

/// D1: two `DPoP` headers.
pub async fn d1_two_proofs_refused(t: &Target) {
    let k = Key::new();
    let m = Machine::new(t).await;
    m.token(t, &[&k.proof(t), &k.proof(t)])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
}

/// D2: the same proof sent twice is refused the second time.
pub async fn d2_replayed_proof_refused(t: &Target) {
    let k = Key::new();
    let m = Machine::new(t).await;
    let proof = k.proof(t);
    assert_bound(&m.token(t, &[&proof]).await, &k);
    m.token(t, &[&proof])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
}

/// D3: a public client's refresh token is bound to its DPoP key: refused without a proof and
/// with another key's proof (without being consumed), rotated with the right one.
pub async fn d3_public_client_refresh_token_bound(t: &Target) {
    let f = Fixture::public(t).await;
    let k = Key::new();
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", f.client.redirect_uri.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let r = dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await;
    assert_bound(&r, &k);
    let rt = r.json()["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_grant");
    dpop_token(t, &form, f.auth(), &[&Key::new().proof(t)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    let r = dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await;
    assert_bound(&r, &k);
}

/// D3: `dpop_jkt` at authorize (RFC 9449 §10) binds the code to that key.
pub async fn d3_dpop_jkt_binds_the_code(t: &Target) {
    let f = Fixture::public(t).await;
    let k = Key::new();
    let b = Browser::new();
    let p = pkce();
    let state = random_b64(12);
    let mut params = f.params(&p, &state);
    set_param(&mut params, "dpop_jkt", Some(&k.jkt()));
    let resp = authorize(&b, t, &params, &f.user, "approve").await;
    resp.assert_to_client(t, &f.client.redirect_uri, &state);
    let code = resp.get("code").expect("code").to_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", f.client.redirect_uri.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_grant");
    dpop_token(t, &form, f.auth(), &[&Key::new().proof(t)])
        .await
        .assert_oauth_error(400, "invalid_grant");
    assert_bound(&dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await, &k);
}

/// D3: a client registered with `dpop_bound_access_tokens: true` gets no bearer tokens.
pub async fn d3_dpop_bound_client_requires_proof(t: &Target) {
    let reg = register(
        t,
        json!({
            "redirect_uris": [LOOPBACK_REDIRECT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "dpop_bound_access_tokens": true,
        }),
    )
    .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    assert_eq!(reg.json()["dpop_bound_access_tokens"], json!(true));
    let f = Fixture {
        resource: new_resource(t, &SCOPES).await,
        user: new_user(t).await,
        client: ClientCreds {
            id: reg.json()["client_id"].as_str().unwrap().to_owned(),
            secret: None,
            redirect_uri: LOOPBACK_REDIRECT.to_owned(),
        },
    };
    let b = Browser::new();
    let p = pkce();
    let code = f.code(t, &b, &p).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", LOOPBACK_REDIRECT),
        ("code_verifier", p.verifier.as_str()),
    ];
    dpop_token(t, &form, f.auth(), &[])
        .await
        .assert_oauth_error(400, "invalid_dpop_proof");
    let k = Key::new();
    assert_bound(&dpop_token(t, &form, f.auth(), &[&k.proof(t)]).await, &k);
}

/// D4 (nonce-requiring server): a proof without a nonce gets `use_dpop_nonce` and a
/// `DPoP-Nonce` header; the retry with that nonce gets a bound token and a fresh nonce.
pub async fn d4_nonce_challenge_round_trips(t: &Target) {
    let m = Machine::new(t).await;
    let k = Key::new();
    let r = m.token(t, &[&k.proof(t)]).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    let nonce = r
        .header("dpop-nonce")
        .expect("RFC 9449 §8: DPoP-Nonce header");
    let r = m.token(t, &[&k.proof_with_nonce(t, &nonce)]).await;
    assert_bound(&r, &k);
    assert!(
        r.header("dpop-nonce").is_some(),
        "a fresh nonce comes with the tokens"
    );
}

/// D4 (nonce-requiring server): a nonce the server did not issue is refused.
pub async fn d4_forged_nonce_refused(t: &Target) {
    let m = Machine::new(t).await;
    let k = Key::new();
    let r = m.token(t, &[&k.proof_with_nonce(t, &random_b64(24))]).await;
    r.assert_oauth_error(400, "use_dpop_nonce");
    assert!(r.header("dpop-nonce").is_some());
}
