//! Key custody in HashiCorp Vault Transit (`kms.kind = "vault_transit"`, docs/kms.md), black
//! box: a host configured for Transit signs access tokens with the Transit key (they verify
//! against the JWKS and against the Transit server's own public key), publishes no key of its
//! own, seals the vault's secrets under a data key Transit wraps, shows a new `kid` after a
//! rotation in Transit while older tokens keep verifying, and answers 503
//! `temporarily_unavailable` (with nothing of Vault's in the answer) once Vault refuses its
//! token.
//!
//! Vault itself cannot be installed here: the Transit server is the test double of
//! [`crate::transit_server`], written from Vault's API documentation. Each scenario has a
//! Transit server of its own (revocation and rotation change its state), started once per
//! test process when the scenario's settings are first read, and a host of its own.

use std::sync::LazyLock;

use serde_json::{json, Value};

use super::support::*;
use super::Target;
use crate::transit_server::{portcullis_policy, TransitServer};

/// The signing key's name in every scenario's Transit server.
pub const SIGNING_KEY: &str = "portcullis-signing";
/// The sealing key's name.
pub const SEALING_KEY: &str = "portcullis-sealing";

/// A Transit server with both keys and a token holding the documented minimum policy, and
/// the host settings (core names) that point a Portcullis at it.
pub struct Transit {
    /// The server.
    pub server: TransitServer,
    /// Portcullis's Vault token.
    pub token: String,
    settings: Vec<(&'static str, &'static str)>,
}

impl std::ops::Deref for Transit {
    type Target = [(&'static str, &'static str)];
    fn deref(&self) -> &Self::Target {
        &self.settings
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl Transit {
    /// A fresh Transit server set up as docs/kms.md says.
    pub fn start() -> Self {
        let server = TransitServer::start();
        server.create_key(SIGNING_KEY, "ecdsa-p256");
        server.create_key(SEALING_KEY, "aes256-gcm96");
        let token = server.token(portcullis_policy(SIGNING_KEY, SEALING_KEY));
        let settings = vec![
            ("kms__kind", "vault_transit"),
            ("kms__vault_address", leak(server.address.clone())),
            ("kms__vault_token", leak(token.clone())),
            ("kms__signing_key", SIGNING_KEY),
            ("kms__sealing_key", SEALING_KEY),
            // The vault scenario's upstream runs on loopback (the one loopback switch).
            ("cimd__allow_loopback", "true"),
        ];
        Self {
            server,
            token,
            settings,
        }
    }

    /// The settings as `(name, value)` pairs (core names).
    pub fn settings(&self) -> Vec<(String, String)> {
        self.settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

static SIGNS: LazyLock<Transit> = LazyLock::new(Transit::start);
static ROTATES: LazyLock<Transit> = LazyLock::new(Transit::start);
static REFUSES: LazyLock<Transit> = LazyLock::new(Transit::start);

/// The host settings of [`kms_vault_transit_signs_and_seals`].
pub static SETTINGS: &LazyLock<Transit> = &SIGNS;
/// The host settings of [`kms_vault_transit_rotation_new_kid_old_tokens_verify`].
pub static ROTATION: &LazyLock<Transit> = &ROTATES;
/// The host settings of [`kms_vault_transit_refusal_is_503_without_detail`].
pub static REFUSAL: &LazyLock<Transit> = &REFUSES;

/// A client_credentials token for a fresh resource: `(token, resource, client)`.
pub async fn machine_token(t: &Target) -> (String, String, ClientCreds) {
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let r = token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
            ("scope", "mcp:read"),
        ],
        Auth::Basic(&c.id, c.secret.as_deref().unwrap()),
    )
    .await;
    (tokens(&r).access, resource, c)
}

/// The published JWK Set's `kid`s.
pub async fn jwks_kids(t: &Target) -> Vec<String> {
    let jwks = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("a JWK Set: {jwks}"))
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Verifies `jwt` with the Transit server's public key of `version` of the signing key (an
/// independent check of who signed: jsonwebtoken, the key read from the test server).
fn verify_with_transit_key(server: &TransitServer, version: u64, jwt: &str) -> bool {
    let sec1 = server
        .public_key(SIGNING_KEY, version)
        .expect("the signing key version exists");
    let key = jsonwebtoken::DecodingKey::from_ec_components(&b64(&sec1[1..33]), &b64(&sec1[33..]))
        .expect("an EC public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &v).is_ok()
}

/// Verifies `jwt`'s signature with the JWKS key its `kid` names (the time claims are other
/// scenarios' concern: this one may move a controlled clock ahead of the system's).
async fn verifies_against_jwks(t: &Target, jwt: &str) -> bool {
    let kid = kid_of(jwt);
    let jwks = send(http().get(t.url("/.well-known/jwks.json")))
        .await
        .ok_json();
    let Some(jwk) = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == json!(kid)))
    else {
        return false;
    };
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("a JWK");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("a public key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_aud = false;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &key, &v).is_ok()
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .expect("a JWS")
        .kid
        .expect("a kid")
}

/// Tokens are signed in Transit (they verify against the JWKS and the Transit key), the JWKS
/// holds only the Transit key, and the vault's upstream tokens and provider secret are sealed
/// under one Transit-wrapped data key and open again (the whole connect-and-vend flow).
pub async fn kms_vault_transit_signs_and_seals(t: &Target) {
    let transit = &SETTINGS.server;
    let (jwt, resource, _) = machine_token(t).await;
    let claims = verify_access_token(t, &jwt, &resource).await;
    assert_eq!(claims["aud"], json!(resource));
    assert!(
        verify_with_transit_key(transit, 1, &jwt),
        "the token is signed by the Transit key's version 1"
    );
    let kids = jwks_kids(t).await;
    assert_eq!(
        kids,
        vec![kid_of(&jwt)],
        "only the Transit key is published"
    );
    assert!(transit.calls("sign") >= 1, "Transit signed");

    // Sealing: the vault's full flow (provider client secret, upstream tokens sealed and
    // opened) on this host, then one data key made and only unwrapped since.
    super::vault::vault_connect_then_vend(t).await;
    assert_eq!(transit.calls("datakey"), 1, "one data key per deployment");
    assert!(transit.calls("decrypt") >= 1, "the data key is unwrapped");
    let listed = admin_ok(t, reqwest::Method::GET, "/admin/keys", None).await;
    assert_eq!(listed["keys"][0]["kid"], json!(kid_of(&jwt)), "{listed}");
    assert_eq!(listed["keys"][0]["status"], json!("active"), "{listed}");
    // Keys are rotated in Vault, not here.
    let r = admin(t, reqwest::Method::POST, "/admin/keys/rotate", None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], json!("invalid_request"), "{}", r.body);
    assert!(r.body.contains("Vault"), "{}", r.body);
}

/// A rotation in Transit is a new `kid` in the JWKS (within the key set's cache time) that
/// signs new tokens, while tokens signed by the previous version keep verifying (at the
/// server's introspection and against the JWKS).
pub async fn kms_vault_transit_rotation_new_kid_old_tokens_verify(t: &Target) {
    let transit = &ROTATION.server;
    let (old, _, client) = machine_token(t).await;
    let old_kid = kid_of(&old);
    assert_eq!(transit.rotate(SIGNING_KEY), 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut kids = jwks_kids(t).await;
    while kids.len() < 2 && std::time::Instant::now() < deadline {
        if t.clock.is_some() {
            // A host whose clock stands still: move it past the key set's cache time.
            t.advance_clock(11);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        kids = jwks_kids(t).await;
    }
    assert_eq!(kids.len(), 2, "both versions published: {kids:?}");
    assert_eq!(kids[1], old_kid, "the new version first: {kids:?}");
    let (new, _, _) = machine_token(t).await;
    assert_eq!(kid_of(&new), kids[0], "the new version signs");
    assert!(verify_with_transit_key(transit, 2, &new));
    assert!(!verify_with_transit_key(transit, 2, &old));
    assert!(
        verifies_against_jwks(t, &new).await,
        "the new token verifies"
    );
    assert!(
        verifies_against_jwks(t, &old).await,
        "the old token verifies"
    );
    let auth = Auth::Basic(&client.id, client.secret.as_deref().unwrap());
    assert!(
        is_active(t, &old, auth).await,
        "the old token still verifies"
    );
}

/// Once Vault refuses the server's token (403 `permission denied` after `revoke-self`), the
/// token endpoint answers 503 `temporarily_unavailable` with no-store and nothing of Vault's
/// (address, token, message) in the answer; nothing is signed by anyone else.
pub async fn kms_vault_transit_refusal_is_503_without_detail(t: &Target) {
    let transit = &REFUSAL.server;
    let (before, _, _) = machine_token(t).await;
    let resource = new_resource(t, &SCOPES).await;
    let c = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    // Revoke the token the way an operator would (Vault's auth/token/revoke-self).
    let revoked = send(
        http()
            .post(format!("{}/v1/auth/token/revoke-self", transit.address))
            .header("x-vault-token", &REFUSAL.token),
    )
    .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let r = token(
        t,
        &[
            ("grant_type", "client_credentials"),
            ("resource", &resource),
        ],
        Auth::Basic(&c.id, c.secret.as_deref().unwrap()),
    )
    .await;
    r.assert_oauth_error(503, "temporarily_unavailable");
    assert_no_store(&r);
    for leak in [
        REFUSAL.token.as_str(),
        transit.address.as_str(),
        "permission denied",
        "vault:",
        SIGNING_KEY,
    ] {
        assert!(!r.body.contains(leak), "{leak} leaked: {}", r.body);
    }
    // The public keys stay published from the last key set read while Vault refuses, and no
    // local key was made instead of Vault's.
    assert_eq!(jwks_kids(t).await, vec![kid_of(&before)]);
}
