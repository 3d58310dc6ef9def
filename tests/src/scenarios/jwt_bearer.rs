//! The JWT bearer grant with ID-JAG assertions (RFC 7523 §2.1,
//! draft-ietf-oauth-identity-assertion-authz-grant §4.3; MCP enterprise-managed
//! authorization) over HTTP: the test acts as an enterprise IdP with its own P-256 key,
//! registers itself through the admin API with an inline JWKS, adds a policy, signs ID-JAGs
//! with `jsonwebtoken` and exchanges them at the token endpoint. SECURITY-CHECKLIST X5.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::support::*;
use super::Target;
use crate::conformance::uid;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// A test enterprise IdP: an issuer and a P-256 key.
struct TestIdp {
    issuer: String,
    kid: String,
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl TestIdp {
    /// A fresh IdP with a new key (not yet registered).
    fn new() -> Self {
        let issuer = format!("https://idp.example.com/tenants/{}", uid("idp"));
        let (key, jwk) = p256_key(&uid("key"));
        let kid = uid("kid");
        let mut jwk = jwk;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        Self {
            issuer,
            kid,
            key,
            jwk,
        }
    }

    /// Signs `claims` with this IdP's key under `typ` and `kid`.
    fn sign_with(&self, typ: Option<&str>, kid: Option<&str>, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = typ.map(str::to_owned);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key).expect("the test IdP signs")
    }

    /// An ID-JAG with the right header.
    fn sign(&self, claims: &Value) -> String {
        self.sign_with(Some(ID_JAG_TYP), Some(&self.kid), claims)
    }
}

/// A P-256 key from `seed`: the scalar is SHA-256 of the seed (retried in the negligible
/// out-of-range case), wrapped in PKCS #8 for `jsonwebtoken`, and its public JWK.
fn p256_key(seed: &str) -> (jsonwebtoken::EncodingKey, Value) {
    let mut input = seed.to_owned();
    loop {
        let scalar: [u8; 32] = Sha256::digest(input.as_bytes()).into();
        if let Ok(public) = portcullis_core::crypto::rustcrypto::public_key_sec1(&scalar) {
            // RFC 5208 PrivateKeyInfo { ecPublicKey, prime256v1, RFC 5915 ECPrivateKey }.
            let mut der =
                hex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420");
            der.extend_from_slice(&scalar);
            der.extend_from_slice(&hex("a144034200"));
            der.extend_from_slice(&public);
            let jwk = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(&public[1..33]),
                "y": b64(&public[33..65]),
            });
            return (jsonwebtoken::EncodingKey::from_ec_der(&der), jwk);
        }
        input.push('+');
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The subject Portcullis derives for an IdP user without an explicit mapping.
fn automatic_subject(issuer: &str, sub: &str) -> String {
    let digest = Sha256::digest(format!("{issuer} {sub}").as_bytes());
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    format!("idp:{}", &b[..22])
}

/// A registered IdP, a resource, a jwt-bearer client and a policy tying them together.
struct Setup {
    idp: TestIdp,
    resource: String,
    client: ClientCreds,
}

impl Setup {
    async fn new(t: &Target, policy_scopes: &[&str]) -> Self {
        let idp = TestIdp::new();
        let resource = new_resource(t, &SCOPES).await;
        let client = new_client(t, "client_secret_basic", &[JWT_BEARER]).await;
        admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/idps",
            Some(json!({ "issuer": idp.issuer, "jwks": { "keys": [idp.jwk] } })),
        )
        .await;
        if !policy_scopes.is_empty() {
            admin_ok(
                t,
                reqwest::Method::POST,
                "/admin/idp-policies",
                Some(json!({
                    "issuer": idp.issuer,
                    "client_id": client.id,
                    "resource": resource,
                    "scopes": policy_scopes,
                })),
            )
            .await;
        }
        Self {
            idp,
            resource,
            client,
        }
    }

    /// Valid ID-JAG claims for this client and resource, issued now.
    fn claims(&self, t: &Target) -> Value {
        let now = t.now();
        json!({
            "iss": self.idp.issuer,
            "sub": "employee-7",
            "aud": t.base,
            "client_id": self.client.id,
            "jti": uid("jti"),
            "iat": now,
            "exp": now + 300,
            "resource": self.resource,
            "scope": "mcp:tools mcp:read",
        })
    }

    async fn grant(&self, t: &Target, assertion: &str) -> Resp {
        self.grant_as(t, &self.client, assertion).await
    }

    async fn grant_as(&self, t: &Target, client: &ClientCreds, assertion: &str) -> Resp {
        token(
            t,
            &[("grant_type", JWT_BEARER), ("assertion", assertion)],
            Auth::Basic(&client.id, client.secret.as_deref().unwrap()),
        )
        .await
    }
}

/// A test IdP gets an access token through the JWT bearer grant: an RFC 9068 token for the
/// resource, verified against the JWKS, whose subject is derived from the IdP's `iss` and
/// `sub`, with the scope the assertion and policy allow, and no refresh token. The metadata
/// advertises the grant and the ID-JAG profile.
pub async fn jwt_bearer_id_jag_grant(t: &Target) {
    let doc = send(http().get(t.url("/.well-known/oauth-authorization-server")))
        .await
        .ok_json();
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .is_some_and(|g| g.contains(&json!(JWT_BEARER))),
        "the jwt-bearer grant is advertised: {doc}"
    );
    assert_eq!(
        doc["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );

    let s = Setup::new(t, &["mcp:tools"]).await;
    let c = s.claims(t);
    let r = s.grant(t, &s.idp.sign(&c)).await;
    let tok = tokens(&r);
    assert!(
        tok.refresh.is_none(),
        "no refresh token for an ID-JAG grant"
    );
    assert_eq!(tok.raw["token_type"], json!("Bearer"));
    assert_eq!(
        tok.raw["scope"],
        json!("mcp:tools"),
        "narrowed to the policy"
    );
    let claims = verify_access_token(t, &tok.access, &s.resource).await;
    assert_eq!(claims["client_id"], json!(s.client.id));
    assert_eq!(
        claims["sub"],
        json!(automatic_subject(&s.idp.issuer, "employee-7"))
    );
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(
        life <= 300,
        "the token does not outlive the assertion: {life}"
    );
    let secret = s.client.secret.as_deref().unwrap();
    assert!(is_active(t, &tok.access, Auth::Basic(&s.client.id, secret)).await);

    // An explicit subject mapping to a local user wins over the automatic subject.
    let user = new_user(t).await;
    admin_ok(
        t,
        reqwest::Method::POST,
        "/admin/idp-subjects",
        Some(json!({
            "issuer": s.idp.issuer,
            "external_subject": "employee-7",
            "username": user.username,
        })),
    )
    .await;
    let tok = tokens(&s.grant(t, &s.idp.sign(&s.claims(t))).await);
    let claims = verify_access_token(t, &tok.access, &s.resource).await;
    assert_eq!(claims["sub"], json!(user.id), "mapped to the local user");
}

/// X5: every ID-JAG violation is refused on its own (untrusted issuer, wrong `typ`, `aud`
/// not our issuer, expired, too old, missing claims, another client's assertion, a bad
/// signature, a replayed `jti`); the refused assertions shared one `jti`, which was not
/// spent: the corrected assertion with it then succeeds once.
pub async fn x5_id_jag_violations_refused(t: &Target) {
    let s = Setup::new(t, &["mcp:tools", "mcp:read"]).await;
    let other = new_client(t, "client_secret_basic", &[JWT_BEARER]).await;
    let valid = s.claims(t);
    let now = t.now();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut c = valid.clone();
        f(&mut c);
        c
    };
    let stranger = TestIdp::new();
    let cases: Vec<(&str, String)> = vec![
        (
            "untrusted issuer",
            stranger.sign(&edit(&|c| c["iss"] = json!(stranger.issuer))),
        ),
        (
            "wrong typ",
            s.idp.sign_with(Some("JWT"), Some(&s.idp.kid), &valid),
        ),
        ("no typ", s.idp.sign_with(None, Some(&s.idp.kid), &valid)),
        (
            "aud not our issuer",
            s.idp
                .sign(&edit(&|c| c["aud"] = json!("https://other-as.example.com"))),
        ),
        (
            "aud is the resource",
            s.idp.sign(&edit(&|c| c["aud"] = json!(s.resource))),
        ),
        (
            "expired",
            s.idp.sign(&edit(&|c| c["exp"] = json!(now - 10))),
        ),
        (
            "no exp",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "too old",
            s.idp.sign(&edit(&|c| c["iat"] = json!(now - 3600))),
        ),
        (
            "no iat",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("iat");
            })),
        ),
        (
            "no sub",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
        ),
        (
            "no client_id",
            s.idp.sign(&edit(&|c| {
                c.as_object_mut().unwrap().remove("client_id");
            })),
        ),
        (
            "another client's assertion",
            s.idp.sign(&edit(&|c| c["client_id"] = json!(other.id))),
        ),
        ("signed by another key", {
            let impostor = TestIdp::new();
            impostor.sign_with(Some(ID_JAG_TYP), Some(&s.idp.kid), &valid)
        }),
        (
            "unknown kid",
            s.idp
                .sign_with(Some(ID_JAG_TYP), Some("no-such-kid"), &valid),
        ),
    ];
    for (why, assertion) in &cases {
        let r = s.grant(t, assertion).await;
        assert_eq!(
            r.status,
            400,
            "X5 {why}: refused, got {}: {}",
            r.status,
            short(&r.body)
        );
        r.assert_oauth_error(400, "invalid_grant");
    }
    // No jti at all.
    let no_jti = s.idp.sign(&edit(&|c| {
        c.as_object_mut().unwrap().remove("jti");
    }));
    s.grant(t, &no_jti)
        .await
        .assert_oauth_error(400, "invalid_grant");
    // The other client presenting this client's assertion.
    s.grant_as(t, &other, &s.idp.sign(&valid))
        .await
        .assert_oauth_error(400, "invalid_grant");

    // None of those spent the jti: the valid assertion works once, then is a replay.
    let good = s.idp.sign(&valid);
    tokens(&s.grant(t, &good).await);
    let r = s.grant(t, &good).await;
    r.assert_oauth_error(400, "invalid_grant");
    assert!(
        r.body.contains("already been used"),
        "X5 replay: {}",
        short(&r.body)
    );
}

/// A trusted IdP, a valid assertion, but no policy for this client and resource: 403
/// `access_denied`.
pub async fn jwt_bearer_no_policy_access_denied(t: &Target) {
    let s = Setup::new(t, &[]).await;
    let r = s.grant(t, &s.idp.sign(&s.claims(t))).await;
    r.assert_oauth_error(403, "access_denied");
}
