//! The JWT bearer grant with ID-JAG assertions (RFC 7523 §2.1,
//! draft-ietf-oauth-identity-assertion-authz-grant §4.3; MCP enterprise-managed
//! authorization) over HTTP: the test acts as an enterprise IdP with its own P-256 key,
//! registers itself through the admin API with an inline JWKS, adds a policy, signs ID-JAGs
//! with `jsonwebtoken` and exchanges them at the token endpoint: the grant, its lifetime,
//! policies, scopes, resources, subject mapping and DPoP binding. SECURITY-CHECKLIST X5 is in
//! [`x5`], the admin API for IdPs and policies in [`admin`].

mod admin;
mod policy;
mod skew;
mod x5;

pub use admin::*;
pub use policy::*;
pub use skew::*;
pub use x5::*;

use base64::Engine;
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
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
    scalar: [u8; 32],
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl TestIdp {
    /// A fresh IdP with a new key (not yet registered).
    fn new() -> Self {
        let issuer = format!("https://idp.example.com/tenants/{}", uid("idp"));
        let (scalar, key, jwk) = p256_key(&uid("key"));
        let kid = uid("kid");
        let mut jwk = jwk;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        Self {
            issuer,
            kid,
            scalar,
            key,
            jwk,
        }
    }

    /// This IdP's JWK Set.
    fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// Signs `claims` with this IdP's key (ES256) under exactly `header`, whatever it says.
    fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let signer = RustCrypto.es256_signer(&self.scalar).expect("a signer");
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = futures::executor::block_on(signer.sign(input.as_bytes())).expect("signs");
        format!("{input}.{}", b64(sig))
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
/// out-of-range case), the scalar wrapped in PKCS #8 for `jsonwebtoken`, and its public JWK.
fn p256_key(seed: &str) -> ([u8; 32], jsonwebtoken::EncodingKey, Value) {
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
            return (scalar, jsonwebtoken::EncodingKey::from_ec_der(&der), jwk);
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
            Some(json!({ "issuer": idp.issuer, "jwks": idp.jwks() })),
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
        self.grant_with(t, client, assertion, &[]).await
    }

    /// The grant as `client` with extra parameters.
    async fn grant_with(
        &self,
        t: &Target,
        client: &ClientCreds,
        assertion: &str,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
        form.extend_from_slice(extra);
        token(t, &form, self.auth_of(client)).await
    }

    fn auth_of<'a>(&self, client: &'a ClientCreds) -> Auth<'a> {
        Auth::Basic(&client.id, client.secret.as_deref().unwrap())
    }

    /// Sets (or replaces: same issuer, client and resource) this client's policy.
    async fn set_policy(&self, t: &Target, scopes: &[&str]) -> Resp {
        let body = json!({
            "issuer": self.idp.issuer,
            "client_id": self.client.id,
            "resource": self.resource,
            "scopes": scopes,
        });
        admin(t, reqwest::Method::POST, "/admin/idp-policies", Some(body)).await
    }

    /// This client's `token.jwt_bearer` audit events, newest first.
    async fn events(&self, t: &Target) -> Vec<Value> {
        audit_events(t, "token.jwt_bearer", &self.client.id).await
    }
}

/// The access token of a successful grant, with its claims verified against the JWKS.
async fn granted(t: &Target, s: &Setup, r: &Resp) -> (Tokens, Value) {
    let tok = tokens(r);
    let claims = verify_access_token(t, &tok.access, &s.resource).await;
    (tok, claims)
}

/// A test IdP gets an access token through the JWT bearer grant: an RFC 9068 token for the
/// resource, verified against the JWKS, whose subject is derived from the IdP's `iss` and
/// `sub`, with the scope the assertion and policy allow, no refresh token, and a lifetime
/// that ends with the assertion's; the grant is audited with the subject, the issuer and the
/// assertion's `jti`. The metadata advertises the grant and the ID-JAG profile.
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
    let (tok, claims) = granted(t, &s, &s.grant(t, &s.idp.sign(&c)).await).await;
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
    assert_eq!(claims["client_id"], json!(s.client.id));
    let sub = automatic_subject(&s.idp.issuer, "employee-7");
    assert_eq!(claims["sub"], json!(sub));
    assert_eq!(claims["exp"], c["exp"], "capped by the assertion's exp");
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(tok.raw["expires_in"], json!(life));
    let secret = s.client.secret.as_deref().unwrap();
    assert!(is_active(t, &tok.access, Auth::Basic(&s.client.id, secret)).await);
    let events = s.events(t).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], json!("success"));
    assert_eq!(events[0]["subject"], json!(sub));
    assert_eq!(events[0]["detail"]["issuer"], json!(s.idp.issuer));
    assert_eq!(events[0]["detail"]["assertion_jti"], c["jti"]);
}

/// The token lives for the shorter of the server's access token lifetime (default 900 s)
/// and what remains of the assertion.
pub async fn jwt_bearer_lifetime_is_the_shorter_of_ttl_and_assertion(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let mut c = s.claims(t);
    c["exp"] = json!(t.now() + 3600);
    let (tok, claims) = granted(t, &s, &s.grant(t, &s.idp.sign(&c)).await).await;
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(life, 900, "the default access token lifetime");
    assert_eq!(tok.raw["expires_in"], json!(900));
    let mut c = s.claims(t);
    c["exp"] = json!(t.now() + 20);
    let (tok, claims) = granted(t, &s, &s.grant(t, &s.idp.sign(&c)).await).await;
    assert_eq!(claims["exp"], c["exp"]);
    assert!(
        tok.raw["expires_in"].as_i64().is_some_and(|n| n <= 20),
        "{}",
        tok.raw
    );
}

/// A trusted IdP, a valid assertion, but no policy for this client and resource: 403
/// `access_denied`, audited as `no_policy`; once its policy is deleted, a client that had
/// one is denied the same way.
pub async fn jwt_bearer_no_policy_access_denied(t: &Target) {
    let s = Setup::new(t, &[]).await;
    let r = s.grant(t, &s.idp.sign(&s.claims(t))).await;
    r.assert_oauth_error(403, "access_denied");
    assert_eq!(failure_reasons(&s.events(t).await), ["no_policy"]);

    let s = Setup::new(t, &["mcp:tools"]).await;
    tokens(&s.grant(t, &s.idp.sign(&s.claims(t))).await);
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let path = format!("/admin/idp-policies?issuer={}", enc(&s.idp.issuer));
    let list = admin_ok(t, reqwest::Method::GET, &path, None).await;
    let id = list["policies"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the policy is listed: {list}"))
        .to_owned();
    let path = format!("/admin/idp-policies/{}", enc(&id));
    let r = admin(t, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    s.grant(t, &s.idp.sign(&s.claims(t)))
        .await
        .assert_oauth_error(403, "access_denied");
}

/// The granted scope is the intersection of the assertion's and the policy's (a policy for
/// the same issuer, client and resource replaces the old one); nothing in common is
/// `invalid_scope`, and so is a requested scope outside the catalog; a requested scope
/// narrows; without a scope claim the requested scope, or the whole allowed set, is granted.
pub async fn jwt_bearer_scope_is_the_intersection(t: &Target) {
    let s = Setup::new(t, &["mcp:tools", "mcp:read"]).await;
    let r = s.set_policy(t, &["mcp:tools"]).await;
    assert_eq!(r.status, 200, "the same triple is replaced: {}", r.body);
    let tok = tokens(&s.grant(t, &s.idp.sign(&s.claims(t))).await);
    assert_eq!(tok.raw["scope"], json!("mcp:tools"));
    let mut c = s.claims(t);
    c["scope"] = json!("mcp:read");
    s.grant(t, &s.idp.sign(&c))
        .await
        .assert_oauth_error(400, "invalid_scope");
    let extra = [("scope", "admin")];
    s.grant_with(t, &s.client, &s.idp.sign(&s.claims(t)), &extra)
        .await
        .assert_oauth_error(400, "invalid_scope");
    let r = s.set_policy(t, &["mcp:tools", "mcp:read"]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let extra = [("scope", "mcp:read")];
    let r = s
        .grant_with(t, &s.client, &s.idp.sign(&s.claims(t)), &extra)
        .await;
    assert_eq!(tokens(&r).raw["scope"], json!("mcp:read"));
    let mut c = s.claims(t);
    c.as_object_mut().unwrap().remove("scope");
    let tok = tokens(&s.grant(t, &s.idp.sign(&c)).await);
    assert_eq!(tok.raw["scope"], json!("mcp:tools mcp:read"));
}

/// The `resource` parameter and the assertion's `resource` claim must agree; either alone
/// names the resource; a resource with a fragment is `invalid_target`.
pub async fn jwt_bearer_resource_claim_and_parameter_must_agree(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let same = [("resource", s.resource.as_str())];
    let r = s
        .grant_with(t, &s.client, &s.idp.sign(&s.claims(t)), &same)
        .await;
    granted(t, &s, &r).await;
    let slash = format!("{}/", s.resource);
    let r = s
        .grant_with(
            t,
            &s.client,
            &s.idp.sign(&s.claims(t)),
            &[("resource", &slash)],
        )
        .await;
    r.assert_oauth_error(400, "invalid_target");
    let mut c = s.claims(t);
    c.as_object_mut().unwrap().remove("resource");
    let r = s.grant_with(t, &s.client, &s.idp.sign(&c), &same).await;
    granted(t, &s, &r).await;
    let mut c = s.claims(t);
    c["resource"] = json!(format!("{}#frag", s.resource));
    s.grant(t, &s.idp.sign(&c))
        .await
        .assert_oauth_error(400, "invalid_target");
}

/// An explicit subject mapping (`POST /admin/idp-subjects`) to a local user wins over the
/// automatic subject, for that external subject only; deleting it restores the automatic
/// subject.
pub async fn jwt_bearer_explicit_subject_mapping(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let user = new_user(t).await;
    let mapping = admin_ok(
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
    assert_eq!(mapping["subject"], json!(user.id), "{mapping}");
    let r = s.grant(t, &s.idp.sign(&s.claims(t))).await;
    let (_, claims) = granted(t, &s, &r).await;
    assert_eq!(claims["sub"], json!(user.id), "mapped to the local user");
    let mut c = s.claims(t);
    c["sub"] = json!("employee-8");
    let (_, claims) = granted(t, &s, &s.grant(t, &s.idp.sign(&c)).await).await;
    assert_eq!(
        claims["sub"],
        json!(automatic_subject(&s.idp.issuer, "employee-8"))
    );
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let path = format!(
        "/admin/idp-subjects?issuer={}&external_subject=employee-7",
        enc(&s.idp.issuer)
    );
    let r = admin(t, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (_, claims) = granted(t, &s, &s.grant(t, &s.idp.sign(&s.claims(t))).await).await;
    assert_eq!(
        claims["sub"],
        json!(automatic_subject(&s.idp.issuer, "employee-7"))
    );
}

/// The request: a client not registered for the grant gets `unauthorized_client`, a missing
/// assertion is `invalid_request`, and a public client cannot register for the grant.
pub async fn jwt_bearer_request_checked(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let other = new_client(t, "client_secret_basic", &["client_credentials"]).await;
    s.grant_as(t, &other, &s.idp.sign(&s.claims(t)))
        .await
        .assert_oauth_error(400, "unauthorized_client");
    token(t, &[("grant_type", JWT_BEARER)], s.auth_of(&s.client))
        .await
        .assert_oauth_error(400, "invalid_request");
    let r = register(
        t,
        json!({
            "client_name": "Public agent",
            "grant_types": [JWT_BEARER],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    r.assert_oauth_error(400, "invalid_client_metadata");
    assert!(r.body.contains("confidential"), "{}", r.body);
}

/// With a DPoP proof the granted token is DPoP-bound to the proof's key.
pub async fn jwt_bearer_token_is_dpop_bound_with_a_proof(t: &Target) {
    let s = Setup::new(t, &["mcp:tools"]).await;
    let key = super::dpop::Key::new();
    let form = [
        ("grant_type", JWT_BEARER),
        ("assertion", &s.idp.sign(&s.claims(t))),
    ];
    let r = super::dpop::dpop_token(t, &form, s.auth_of(&s.client), &[&key.proof(t)]).await;
    let v = r.ok_json();
    assert_eq!(v["token_type"], json!("DPoP"), "{v}");
    let at = v["access_token"].as_str().expect("access_token");
    assert_eq!(jwt_claims(at)["cnf"], json!({ "jkt": key.jkt() }));
}
