//! RS256, PS256 and EdDSA (Ed25519) next to ES256, black box, for ID-JAG assertions (RFC 7523
//! §3 with draft-ietf-oauth-identity-assertion-authz-grant) and `private_key_jwt` client
//! assertions (RFC 7523 §2.2), with keys generated and tokens signed by node `jose`
//! (`tests/node/idp/sign.mjs`), an implementation independent of the server's RustCrypto
//! verification; and algorithm confusion (J2): an RS256 key presented with an HS256 token
//! whose HMAC secret is that public key, and an RS256 token under a JWK pinned to PS256.

use serde_json::{json, Value};

use super::support::*;
use super::Target;
use crate::conformance::uid;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What `sign.mjs` returns.
pub struct Signed {
    /// The public JWK, with its `kid`.
    pub jwk: Value,
    /// The private JWK (to sign more tokens with the same key later).
    pub private_jwk: Value,
    /// The signed tokens, in the order asked for.
    pub tokens: Vec<String>,
}

/// Asks this test process's `jose` signer ([`crate::jose_signer`]) for `input` (see
/// `tests/node/idp/sign.mjs`).
pub async fn node_sign(input: Value) -> Signed {
    let v = crate::jose_signer::sign(input).await;
    Signed {
        jwk: v["jwk"].clone(),
        private_jwk: v["private_jwk"].clone(),
        tokens: v["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .map(|t| t.as_str().expect("a token").to_owned())
            .collect(),
    }
}

pub fn token_spec(header: Value, claims: Value) -> Value {
    json!({ "header": header, "claims": claims })
}

pub(crate) fn hmac_forgery(claims: Value) -> Value {
    json!({ "header": {}, "claims": claims, "hmac_with_public_key": true })
}

async fn id_jag_grant(t: &Target, client: &ClientCreds, assertion: &str) -> Resp {
    let form = [("grant_type", JWT_BEARER), ("assertion", assertion)];
    let auth = Auth::Basic(&client.id, client.secret.as_deref().unwrap());
    token(t, &form, auth).await
}

async fn machine_token(t: &Target, resource: &str, assertion: &str) -> Resp {
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", resource),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    send(http().post(t.url("/oauth/token")).form(&form)).await
}

/// An ID-JAG (typ `oauth-id-jag+jwt`) from each algorithm's key is accepted by a trusted
/// IdP registered with that public key; the HS256 forgery made with the RSA public key, and an
/// RS256 assertion under a JWK pinned to PS256, are refused (`invalid_grant`).
pub async fn j2_id_jag_rs256_ps256_eddsa_from_an_independent_library(t: &Target) {
    let resource = new_resource(t, &SCOPES).await;
    let client = new_client(t, "client_secret_basic", &[JWT_BEARER]).await;
    for alg in ["RS256", "PS256", "EdDSA"] {
        let issuer = format!("https://idp.example.com/tenants/{}", uid("alg"));
        let pinned_issuer = format!("{issuer}-pinned");
        let kid = uid("kid");
        let claims = |iss: &str| {
            let now = t.now();
            json!({
                "iss": iss, "sub": "employee-9", "aud": t.base, "client_id": client.id,
                "jti": uid("jti"), "iat": now, "exp": now + 300,
                "resource": resource, "scope": "mcp:tools",
            })
        };
        let typ = json!({ "typ": "oauth-id-jag+jwt" });
        let signed = node_sign(json!({
            "alg": alg, "kid": kid,
            "tokens": [
                token_spec(typ.clone(), claims(&issuer)),
                json!({ "header": typ, "claims": claims(&issuer), "hmac_with_public_key": true }),
                token_spec(json!({ "typ": "oauth-id-jag+jwt" }), claims(&pinned_issuer)),
            ],
        }))
        .await;
        let mut pinned = signed.jwk.clone();
        pinned["alg"] = json!(if alg == "PS256" { "RS256" } else { "PS256" });
        for (iss, jwk) in [(&issuer, &signed.jwk), (&pinned_issuer, &pinned)] {
            admin_ok(
                t,
                reqwest::Method::POST,
                "/admin/idps",
                Some(json!({ "issuer": iss, "jwks": { "keys": [jwk] } })),
            )
            .await;
            admin_ok(
                t,
                reqwest::Method::POST,
                "/admin/idp-policies",
                Some(json!({ "issuer": iss, "client_id": client.id,
                             "resource": resource, "scopes": ["mcp:tools"] })),
            )
            .await;
        }
        let r = id_jag_grant(t, &client, &signed.tokens[0]).await;
        let tok = tokens(&r);
        let access = verify_access_token(t, &tok.access, &resource).await;
        assert_eq!(access["client_id"], json!(client.id), "{alg}");
        assert_eq!(
            jsonwebtoken::decode_header(&tok.access).unwrap().alg,
            jsonwebtoken::Algorithm::ES256,
            "issued tokens stay ES256"
        );
        let forged = id_jag_grant(t, &client, &signed.tokens[1]).await;
        forged.assert_oauth_error(400, "invalid_grant");
        let mismatched = id_jag_grant(t, &client, &signed.tokens[2]).await;
        mismatched.assert_oauth_error(400, "invalid_grant");
    }
}

/// `private_key_jwt` with each algorithm's key (registered as the client's `jwks`) gets a
/// `client_credentials` token; the HS256 forgery with the RSA public key as its secret, and an
/// RS256 assertion under a JWK pinned to PS256, are `invalid_client`.
pub async fn a5_private_key_jwt_rs256_ps256_eddsa_from_an_independent_library(t: &Target) {
    for alg in ["RS256", "PS256", "EdDSA"] {
        let resource = new_resource(t, &SCOPES).await;
        let kid = uid("kid");
        let key = node_sign(json!({ "alg": alg, "kid": kid, "tokens": [] })).await;
        let mut pinned = key.jwk.clone();
        pinned["alg"] = json!(if alg == "PS256" { "RS256" } else { "PS256" });
        let mut clients = Vec::new();
        for jwk in [&key.jwk, &pinned] {
            let v = admin_ok(
                t,
                reqwest::Method::POST,
                "/admin/clients",
                Some(json!({
                    "client_name": format!("{alg} client {}", uid("n")),
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": { "keys": [jwk] },
                    "scope": "mcp:tools",
                })),
            )
            .await;
            clients.push(v["client_id"].as_str().unwrap().to_owned());
        }
        let claims = |client: &str| {
            let now = t.now();
            json!({ "iss": client, "sub": client, "aud": t.url("/oauth/token"),
                    "iat": now, "exp": now + 120, "jti": uid("jti") })
        };
        let signed = node_sign(json!({
            "alg": alg, "kid": kid, "private_jwk": key.private_jwk,
            "tokens": [
                token_spec(json!({}), claims(&clients[0])),
                hmac_forgery(claims(&clients[0])),
                token_spec(json!({}), claims(&clients[1])),
            ],
        }))
        .await;
        let r = machine_token(t, &resource, &signed.tokens[0]).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        let forged = machine_token(t, &resource, &signed.tokens[1]).await;
        forged.assert_oauth_error(401, "invalid_client");
        let mismatched = machine_token(t, &resource, &signed.tokens[2]).await;
        mismatched.assert_oauth_error(401, "invalid_client");
    }
}
