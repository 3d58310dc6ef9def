//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core 1.0 §9) over
//! HTTP: SECURITY-CHECKLIST A2, A3, A5 and J1–J5 for client assertions, at the token,
//! introspection and revocation endpoints. Assertions are signed with `jsonwebtoken`, an
//! implementation independent of the server's.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::support::*;
use super::Target;
use crate::conformance::uid;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client key pair: the `jsonwebtoken` signing key and the public JWK (with `kid`).
struct ClientKey {
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
    kid: String,
}

impl ClientKey {
    /// A fresh P-256 key: the scalar is SHA-256 of a unique seed (retried in the negligible
    /// out-of-range case), wrapped in PKCS #8 for `jsonwebtoken`.
    fn new() -> Self {
        let mut seed = uid("client-key");
        let kid = uid("kid");
        loop {
            let scalar: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
            if let Ok(public) = portcullis_core::crypto::rustcrypto::public_key_sec1(&scalar) {
                // RFC 5208 PrivateKeyInfo { ecPublicKey, prime256v1, RFC 5915 ECPrivateKey }.
                let mut der =
                    hex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420");
                der.extend_from_slice(&scalar);
                der.extend_from_slice(&hex("a144034200"));
                der.extend_from_slice(&public);
                let jwk = json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": b64(&public[1..33]), "y": b64(&public[33..65]),
                });
                return Self {
                    key: jsonwebtoken::EncodingKey::from_ec_der(&der),
                    jwk,
                    kid,
                };
            }
            seed.push('+');
        }
    }

    /// Signs `claims` with a header `{"alg":"ES256","typ":"JWT","kid":…}` changed by `f`.
    fn sign_with(&self, claims: &Value, f: impl FnOnce(&mut jsonwebtoken::Header)) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        f(&mut header);
        jsonwebtoken::encode(&header, claims, &self.key).expect("jsonwebtoken signs ES256")
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(claims, |_| {})
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Assertion claims for `client` (RFC 7523 §3): `aud` the token endpoint, a fresh `jti`.
fn claims(t: &Target, client: &str) -> Value {
    json!({
        "iss": client,
        "sub": client,
        "aud": t.url("/oauth/token"),
        "iat": now(),
        "exp": now() + 120,
        "jti": uid("jti"),
    })
}

/// A resource and a `private_key_jwt` machine client registered through the admin API.
struct Setup {
    resource: String,
    client: String,
    key: ClientKey,
}

impl Setup {
    async fn new(t: &Target) -> Self {
        let resource = new_resource(t, &SCOPES).await;
        let key = ClientKey::new();
        let v = admin_ok(
            t,
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({
                "client_name": format!("Signed client {}", uid("n")),
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [key.jwk] },
                "scope": "mcp:tools mcp:read",
            })),
        )
        .await;
        assert!(
            v.get("client_secret").is_none(),
            "a private_key_jwt client gets no secret: {v}"
        );
        assert_eq!(v["token_endpoint_auth_method"], json!("private_key_jwt"));
        Self {
            resource,
            client: v["client_id"].as_str().expect("client_id").to_owned(),
            key,
        }
    }

    fn assertion(&self, t: &Target) -> String {
        self.key.sign(&claims(t, &self.client))
    }

    /// `client_credentials` authenticated by `assertion`, plus `extra` parameters.
    /// This client's `client.assertion` audit events, newest first.
    async fn events(&self, t: &Target) -> Vec<Value> {
        audit_events(t, "client.assertion", &self.client).await
    }

    /// The outcomes of this client's `client.assertion` audit events, oldest first.
    async fn outcomes(&self, t: &Target) -> Vec<String> {
        let mut out: Vec<String> = self
            .events(t)
            .await
            .iter()
            .map(|e| e["outcome"].as_str().unwrap_or_default().to_owned())
            .collect();
        out.reverse();
        out
    }

    async fn token(&self, t: &Target, assertion: &str, extra: &[(&str, &str)]) -> Resp {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("resource", self.resource.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(extra);
        send(http().post(t.url("/oauth/token")).form(&form)).await
    }
}

/// A refused client authentication: 401 `invalid_client` with `WWW-Authenticate`.
fn assert_invalid_client(r: &Resp, why: &str) {
    assert_eq!(
        r.status,
        401,
        "{why}: expected 401, got {}: {}",
        r.status,
        short(&r.body)
    );
    r.assert_oauth_error(401, "invalid_client");
    assert!(
        r.header("www-authenticate").is_some(),
        "{why}: invalid_client carries WWW-Authenticate"
    );
}

/// A5: a client registered with `jwks` authenticates with signed assertions at the token,
/// introspection and revocation endpoints (a replayed or otherwise bad assertion is refused
/// there too), each assertion audited; another client may not introspect its token; the
/// metadata advertises the method.
pub async fn a5_private_key_jwt_client_authenticates(t: &Target) {
    let meta = send(http().get(t.url("/.well-known/oauth-authorization-server")))
        .await
        .ok_json();
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert!(
            meta[field]
                .as_array()
                .is_some_and(|m| m.contains(&json!("private_key_jwt"))),
            "{field} lists private_key_jwt: {meta}"
        );
    }
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "RS256", "PS256", "EdDSA"])
    );
    let s = Setup::new(t).await;
    let tok = tokens(&s.token(t, &s.assertion(t), &[]).await);
    let claims = verify_access_token(t, &tok.access, &s.resource).await;
    assert_eq!(claims["client_id"], json!(s.client));
    // aud may also be the issuer, alone or in an array, and client_id may be sent.
    let mut c = self::claims(t, &s.client);
    c["aud"] = json!([t.base]);
    tokens(
        &s.token(t, &s.key.sign(&c), &[("client_id", &s.client)])
            .await,
    );

    let other = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let other_auth = Auth::Basic(&other.id, other.secret.as_deref().unwrap());
    assert!(
        !is_active(t, &tok.access, other_auth).await,
        "another client may not introspect it"
    );

    let with_assertion = |token: &str, jwt: &str| {
        vec![
            ("token".to_owned(), token.to_owned()),
            (
                "client_assertion_type".to_owned(),
                ASSERTION_TYPE.to_owned(),
            ),
            ("client_assertion".to_owned(), jwt.to_owned()),
        ]
    };
    let post = |path: &str, form: Vec<(String, String)>| send(http().post(t.url(path)).form(&form));
    let jwt = s.assertion(t);
    let r = post("/oauth/introspect", with_assertion(&tok.access, &jwt))
        .await
        .ok_json();
    assert_eq!(r["active"], json!(true), "{r}");
    assert_eq!(r["client_id"], json!(s.client), "{r}");
    let replayed = post("/oauth/introspect", with_assertion(&tok.access, &jwt)).await;
    assert_invalid_client(&replayed, "replayed assertion at introspection");
    let jwt = s.assertion(t);
    post("/oauth/revoke", with_assertion(&tok.access, &jwt))
        .await
        .ok_json();
    let replayed = post("/oauth/revoke", with_assertion(&tok.access, &jwt)).await;
    assert_invalid_client(&replayed, "replayed assertion at revocation");
    let r = post(
        "/oauth/introspect",
        with_assertion(&tok.access, &s.assertion(t)),
    )
    .await
    .ok_json();
    assert_eq!(r["active"], json!(false), "revoked: {r}");
    // Two tokens, two introspections and a revocation accepted; a replay refused at each
    // endpoint.
    let outcomes = s.outcomes(t).await;
    let expected = [
        "success", "success", "success", "failure", "success", "failure", "success",
    ];
    assert_eq!(outcomes, expected, "each assertion is audited");
}

/// A5: the accepted forms: `aud` the issuer alone (with `client_id` in the body), `typ`
/// absent or `client-authentication+jwt` (draft-ietf-oauth-rfc7523bis), no `kid` when the
/// client has one key.
pub async fn a5_client_assertion_accepted_forms(t: &Target) {
    let s = Setup::new(t).await;
    let mut c = claims(t, &s.client);
    c["aud"] = json!(t.base);
    tokens(
        &s.token(t, &s.key.sign(&c), &[("client_id", &s.client)])
            .await,
    );
    let jwt = s.key.sign_with(&claims(t, &s.client), |h| {
        h.typ = Some("client-authentication+jwt".into());
        h.kid = None;
    });
    tokens(&s.token(t, &jwt, &[]).await);
    let jwt = s.key.sign_with(&claims(t, &s.client), |h| h.typ = None);
    tokens(&s.token(t, &jwt, &[]).await);
    assert_eq!(s.outcomes(t).await, ["success", "success", "success"]);
}

/// A5: a replayed assertion `jti` is refused, while a refused assertion does not spend its
/// `jti`.
pub async fn a5_client_assertion_replay_refused(t: &Target) {
    let s = Setup::new(t).await;
    let jwt = s.assertion(t);
    tokens(&s.token(t, &jwt, &[]).await);
    assert_invalid_client(&s.token(t, &jwt, &[]).await, "replayed assertion");
    // Same jti, re-signed: still a replay.
    let jti = uid("jti");
    let mut c = claims(t, &s.client);
    c["jti"] = json!(jti);
    tokens(&s.token(t, &s.key.sign(&c), &[]).await);
    c["iat"] = json!(now() + 1);
    assert_invalid_client(&s.token(t, &s.key.sign(&c), &[]).await, "re-signed jti");
    // Another client may use the same jti value: the reservation is per client.
    let other = Setup::new(t).await;
    let mut c = claims(t, &other.client);
    c["jti"] = json!(jti);
    tokens(&other.token(t, &other.key.sign(&c), &[]).await);
    // A refused assertion (bad aud, or signed by another key) leaves its jti usable.
    let mut c = claims(t, &s.client);
    c["aud"] = json!("https://evil.example/oauth/token");
    assert_invalid_client(&s.token(t, &s.key.sign(&c), &[]).await, "bad aud");
    c["aud"] = json!(t.url("/oauth/token"));
    let forged = ClientKey::new().sign_with(&c, |h| h.kid = Some(s.key.kid.clone()));
    assert_invalid_client(&s.token(t, &forged, &[]).await, "another key");
    tokens(&s.token(t, &s.key.sign(&c), &[]).await);
    let failures = s
        .outcomes(t)
        .await
        .iter()
        .filter(|o| *o == "failure")
        .count();
    assert_eq!(
        failures, 4,
        "two replays and two bad assertions are audited"
    );
}

/// A5: `aud` must be the issuer or the token endpoint; `exp` is required and enforced.
pub async fn a5_client_assertion_aud_and_exp(t: &Target) {
    let s = Setup::new(t).await;
    let token_endpoint = t.url("/oauth/token");
    let cases = [
        (
            "introspection endpoint as aud",
            "aud",
            Some(json!(t.url("/oauth/introspect"))),
        ),
        (
            "issuer with a trailing slash",
            "aud",
            Some(json!(format!("{}/", t.base))),
        ),
        (
            "another server",
            "aud",
            Some(json!("https://evil.example/oauth/token")),
        ),
        (
            "another server in an array",
            "aud",
            Some(json!(["https://evil.example"])),
        ),
        ("no aud", "aud", None),
        ("no exp", "exp", None),
        ("exp two hours ahead", "exp", Some(json!(now() + 7200))),
        ("expired", "exp", Some(json!(now() - 300))),
        ("no jti", "jti", None),
        ("iss not the client", "iss", Some(json!("someone-else"))),
    ];
    for (why, claim, value) in cases {
        let mut c = claims(t, &s.client);
        match value {
            Some(v) => c[claim] = v,
            None => {
                c.as_object_mut().expect("claims").remove(claim);
            }
        }
        let r = s.token(t, &s.key.sign(&c), &[]).await;
        assert_invalid_client(&r, why);
        if claim == "aud" {
            assert!(r.body.contains("aud"), "{why}: {}", r.body);
        }
    }
    let mut c = claims(t, &s.client);
    c["aud"] = json!(["https://other.example", token_endpoint]);
    tokens(&s.token(t, &s.key.sign(&c), &[]).await);
}

/// A2: an assertion together with a secret (Basic or `client_secret`) is `invalid_request`.
pub async fn a2_client_assertion_with_secret_invalid_request(t: &Target) {
    let s = Setup::new(t).await;
    let jwt = s.assertion(t);
    let r = send(
        http()
            .post(t.url("/oauth/token"))
            .header("authorization", basic(&s.client, "some-secret"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", s.resource.as_str()),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", jwt.as_str()),
            ]),
    )
    .await;
    r.assert_oauth_error(400, "invalid_request");
    s.token(t, &jwt, &[("client_secret", "some-secret")])
        .await
        .assert_oauth_error(400, "invalid_request");
    tokens(&s.token(t, &jwt, &[]).await);
}

/// A5: the assertion's `iss` and `sub` name the client that authenticates, and agree with a
/// `client_id` sent in the body; without `sub` (whatever the body says) or for an unknown
/// client nobody is authenticated.
pub async fn a5_client_assertion_identity_must_agree(t: &Target) {
    let s = Setup::new(t).await;
    let other = Setup::new(t).await;
    let mut c = claims(t, &s.client);
    c["iss"] = json!(other.client);
    assert_invalid_client(
        &s.token(t, &s.key.sign(&c), &[]).await,
        "iss another client",
    );
    let jwt = s.assertion(t);
    let r = s.token(t, &jwt, &[("client_id", &other.client)]).await;
    assert_invalid_client(&r, "client_id another client");
    let mut c = claims(t, &s.client);
    c.as_object_mut().expect("claims").remove("sub");
    assert_invalid_client(&s.token(t, &s.key.sign(&c), &[]).await, "no sub");
    let r = s
        .token(t, &s.key.sign(&c), &[("client_id", &s.client)])
        .await;
    assert_invalid_client(&r, "no sub, client_id in the body");
    let unknown = s.key.sign(&claims(t, &uid("no-such-client")));
    assert_invalid_client(&s.token(t, &unknown, &[]).await, "unknown client");
    tokens(&s.token(t, &jwt, &[]).await);
}

/// A3: a `private_key_jwt` client cannot use a secret or nothing; a secret or public client
/// cannot use an assertion; an unknown assertion type is refused.
pub async fn a3_private_key_jwt_method_enforced(t: &Target) {
    let s = Setup::new(t).await;
    for auth in [
        Auth::Basic(&s.client, "guess"),
        Auth::Post(&s.client, "guess"),
        Auth::Public(&s.client),
    ] {
        let r = token(
            t,
            &[
                ("grant_type", "client_credentials"),
                ("resource", &s.resource),
            ],
            auth,
        )
        .await;
        assert_invalid_client(&r, &format!("{auth:?}"));
    }
    let secret_client = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    let jwt = s.key.sign(&claims(t, &secret_client.id));
    assert_invalid_client(&s.token(t, &jwt, &[]).await, "assertion by a secret client");
    let public_client = new_client(t, "none", &["authorization_code"]).await;
    let jwt = s.key.sign(&claims(t, &public_client.id));
    assert_invalid_client(&s.token(t, &jwt, &[]).await, "assertion by a public client");
    let jwt = s.assertion(t);
    let saml = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer";
    let r = send(http().post(t.url("/oauth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("resource", s.resource.as_str()),
        ("client_assertion_type", saml),
        ("client_assertion", jwt.as_str()),
    ]))
    .await;
    assert_invalid_client(&r, "unknown assertion type");
}

/// J1: `alg: none` client assertions are refused.
pub async fn j1_client_assertion_alg_none_refused(t: &Target) {
    let s = Setup::new(t).await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "kid": s.key.kid });
        let jwt = format!(
            "{}.{}.",
            b64(header.to_string()),
            b64(claims(t, &s.client).to_string())
        );
        assert_invalid_client(&s.token(t, &jwt, &[]).await, alg);
    }
}

/// J2: an HS256 assertion whose HMAC key is the client's public key is refused.
pub async fn j2_client_assertion_hs256_with_public_key_refused(t: &Target) {
    let s = Setup::new(t).await;
    for secret in [
        s.key.jwk.to_string(),
        s.key.jwk["x"].as_str().unwrap().to_owned(),
    ] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(s.key.kid.clone());
        let jwt = jsonwebtoken::encode(
            &header,
            &claims(t, &s.client),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("HS256 signs");
        assert_invalid_client(&s.token(t, &jwt, &[]).await, "HS256");
    }
    tokens(&s.token(t, &s.assertion(t), &[]).await);
}

/// J3: keys named by the header (`jwk`, `jku`, `x5u`) are never used: an assertion signed
/// by an attacker's key carried in its own `jwk` header is refused.
pub async fn j3_client_assertion_header_keys_ignored(t: &Target) {
    let s = Setup::new(t).await;
    let attacker = ClientKey::new();
    let attacker_jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(attacker.jwk.clone()).expect("a JWK");
    for why in [
        "jwk with the client's kid",
        "jwk without kid",
        "jwk with another kid",
        "jku",
        "x5u",
        "x5c",
    ] {
        let jwt = attacker.sign_with(&claims(t, &s.client), |h| {
            h.kid = Some(s.key.kid.clone());
            match why {
                "jwk with the client's kid" => h.jwk = Some(attacker_jwk.clone()),
                "jwk without kid" => {
                    h.jwk = Some(attacker_jwk.clone());
                    h.kid = None;
                }
                "jwk with another kid" => {
                    h.jwk = Some(attacker_jwk.clone());
                    h.kid = Some("evil".into());
                }
                "jku" => h.jku = Some("https://evil.example/jwks.json".into()),
                "x5c" => h.x5c = Some(vec!["MIIB".into()]),
                _ => h.x5u = Some("https://evil.example/cert.pem".into()),
            }
        });
        assert_invalid_client(&s.token(t, &jwt, &[]).await, why);
    }
    // The genuine key with an ignored jku still works.
    let jwt = s.key.sign_with(&claims(t, &s.client), |h| {
        h.jku = Some("https://evil.example/jwks.json".into());
    });
    tokens(&s.token(t, &jwt, &[]).await);
}

/// J4: ECDSA signatures with r = 0 or s = 0 are refused.
pub async fn j4_client_assertion_zero_signature_refused(t: &Target) {
    let s = Setup::new(t).await;
    let genuine = s.assertion(t);
    let input = genuine.rsplit_once('.').expect("a JWS").0.to_owned();
    for sig in [
        vec![0u8; 64],
        [vec![0u8; 32], vec![7u8; 32]].concat(),
        [vec![7u8; 32], vec![0u8; 32]].concat(),
        vec![],
    ] {
        let jwt = format!("{input}.{}", b64(&sig));
        assert_invalid_client(&s.token(t, &jwt, &[]).await, "zero signature");
    }
    // The untouched assertion was never spent.
    tokens(&s.token(t, &genuine, &[]).await);
}

/// J5: `iat`, `nbf`, `exp` and `typ` are enforced with a bounded clock skew.
pub async fn j5_client_assertion_time_and_type_enforced(t: &Target) {
    let s = Setup::new(t).await;
    for (why, claim, value) in [
        ("iat an hour ahead", "iat", json!(now() + 3600)),
        ("nbf an hour ahead", "nbf", json!(now() + 3600)),
        ("iat two hours old", "iat", json!(now() - 7200)),
        ("exp a day ahead", "exp", json!(now() + 86400)),
        ("exp not a number", "exp", json!("tomorrow")),
    ] {
        let mut c = claims(t, &s.client);
        c[claim] = value;
        assert_invalid_client(&s.token(t, &s.key.sign(&c), &[]).await, why);
    }
    for typ in ["at+jwt", "dpop+jwt"] {
        let jwt = s
            .key
            .sign_with(&claims(t, &s.client), |h| h.typ = Some(typ.into()));
        assert_invalid_client(&s.token(t, &jwt, &[]).await, typ);
    }
    // Within the skew (the default jwt_clock_skew_seconds, 60) is fine.
    let mut c = claims(t, &s.client);
    c["iat"] = json!(now() + 45);
    c["nbf"] = json!(now() + 45);
    tokens(&s.token(t, &s.key.sign(&c), &[]).await);
}

/// J5 with `jwt_clock_skew_seconds = 10` (run with [`super::jwt_bearer::SKEW_10`]): a client
/// assertion issued 45 seconds ahead, accepted with the default skew (60 s, see
/// [`j5_client_assertion_time_and_type_enforced`]), is `invalid_client`; 5 seconds ahead is
/// accepted.
pub async fn j5_client_assertion_skew_is_the_setting(t: &Target) {
    let s = Setup::new(t).await;
    for (ahead, accepted) in [(45, false), (5, true)] {
        let mut c = claims(t, &s.client);
        c["iat"] = json!(now() + ahead);
        let r = s.token(t, &s.key.sign(&c), &[]).await;
        if accepted {
            tokens(&r);
        } else {
            assert_invalid_client(&r, "iat 45 s ahead with a 10 s skew");
            assert!(r.body.contains("'iat' is in the future"), "{}", r.body);
        }
    }
}

/// RFC 7591 registration of a `private_key_jwt` client with inline `jwks`: no secret is
/// issued, the client authenticates with assertions (here at the introspection endpoint, which
/// needs an authenticated client); private key material is refused (S6).
pub async fn registration_private_key_jwt_client(t: &Target) {
    let key = ClientKey::new();
    let base = json!({
        "client_name": "Signed web client",
        "redirect_uris": ["https://app.example.com/cb"],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "private_key_jwt",
    });
    let with = |extra: serde_json::Value| {
        let mut m = base.clone();
        if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        m
    };
    let r = register(t, with(json!({ "jwks": { "keys": [key.jwk] } }))).await;
    assert_eq!(r.status, 201, "{}", short(&r.body));
    let v = r.json();
    assert!(v.get("client_secret").is_none(), "{v}");
    let id = v["client_id"].as_str().expect("client_id").to_owned();
    let jwt = key.sign(&claims(t, &id));
    let answer = send(http().post(t.url("/oauth/introspect")).form(&[
        ("token", "not-a-token"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt.as_str()),
    ]))
    .await
    .ok_json();
    assert_eq!(answer["active"], json!(false), "{answer}");
    let mut private = key.jwk.clone();
    private["d"] = json!(b64([1u8; 32]));
    for bad in [
        with(json!({})),
        with(json!({ "jwks": {"keys": [private]} })),
        with(json!({ "jwks_uri": "http://keys.example.com/jwks.json" })),
    ] {
        register(t, bad.clone())
            .await
            .assert_oauth_error(400, "invalid_client_metadata");
    }
}

/// The settings of [`k1_private_key_jwt_machine_client_needs_approval`]'s host: clients may
/// register for `client_credentials`, to be approved by the operator.
pub const MACHINE_APPROVAL: &[(&str, &str)] =
    &[("machine_clients__dynamic_registration", "approval")];

/// K1 (a host with `machine_clients.dynamic_registration = approval`, [`MACHINE_APPROVAL`]):
/// a `private_key_jwt` machine client registers itself and gets no secret, but no token until
/// the operator allows it (`PUT /admin/clients/{id}/policy`); then its assertions get tokens.
pub async fn k1_private_key_jwt_machine_client_needs_approval(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let key = ClientKey::new();
    let r = register(
        t,
        json!({
            "client_name": "Self-registered agent",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": { "keys": [key.jwk] },
            "scope": "mcp:tools",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", short(&r.body));
    let v = r.json();
    assert!(v.get("client_secret").is_none(), "{v}");
    assert_eq!(v["token_endpoint_auth_method"], json!("private_key_jwt"));
    let s = Setup {
        resource,
        client: v["client_id"].as_str().expect("client_id").to_owned(),
        key,
    };
    s.token(t, &s.assertion(t), &[])
        .await
        .assert_oauth_error(400, "unauthorized_client");
    let id: String = form_urlencoded::byte_serialize(s.client.as_bytes()).collect();
    admin_ok(
        t,
        reqwest::Method::PUT,
        &format!("/admin/clients/{id}/policy"),
        Some(json!({ "client_credentials": true })),
    )
    .await;
    tokens(&s.token(t, &s.assertion(t), &[]).await);
}
