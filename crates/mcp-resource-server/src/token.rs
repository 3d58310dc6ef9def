//! RFC 9068 access-token verification as plain functions: the JOSE header (§4: `typ`
//! `at+jwt`, `alg` on the allow-list and never `none`, RFC 8725 §3.1), the signature with the
//! issuer's key chosen by `kid` (never a key named in the header), then the claims (§4: `iss`
//! exactly the issuer, `aud` containing this resource, `exp`/`nbf`/`iat` with the configured
//! skew, and the §2.2 required claims present).

use jwt_compact::{AlgorithmExt as _, UntrustedToken};
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::config::{Alg, Config};
use crate::jwks::{Key, VerifyingKey};

/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a token was refused. The `Display` text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS, oversized, or bad base64/JSON.
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `at+jwt`.
    #[error("the access token typ must be at+jwt")]
    Type,
    /// `alg` is not on the allow-list.
    #[error("the access token algorithm is not accepted")]
    Algorithm,
    /// No issuer key with that `kid`.
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    /// Bad signature.
    #[error("the access token signature is invalid")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("the access token claims are malformed: {0}")]
    Claims(String),
    /// `iss` is not the issuer.
    #[error("the access token was issued by another issuer")]
    Issuer,
    /// `aud` does not include this resource.
    #[error("the access token is not meant for this resource")]
    Audience,
    /// Expired.
    #[error("the access token expired")]
    Expired,
    /// `nbf` or `iat` in the future.
    #[error("the access token is not valid yet")]
    NotYetValid,
}

/// A token whose header passed the checks, waiting for its key.
#[derive(Debug)]
pub struct Unverified<'a> {
    token: UntrustedToken<'a>,
    /// The algorithm, from the allow-list.
    pub alg: Alg,
    /// The `kid`.
    pub kid: Option<String>,
}

fn typ_is_at_jwt(typ: Option<&str>) -> bool {
    // RFC 9068 §4: "at+jwt" or "application/at+jwt", media types compare case-insensitively.
    typ.is_some_and(|t| {
        let t = t.strip_prefix("application/").unwrap_or(t);
        t.eq_ignore_ascii_case("at+jwt")
    })
}

/// Checks the header of `token` against the allow-list.
pub fn parse<'a>(token: &'a str, algorithms: &[Alg]) -> Result<Unverified<'a>, TokenError> {
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
    let alg = Alg::parse(untrusted.algorithm())
        .filter(|a| algorithms.contains(a))
        .ok_or(TokenError::Algorithm)?;
    if !typ_is_at_jwt(untrusted.header().token_type.as_deref()) {
        return Err(TokenError::Type);
    }
    let kid = untrusted.header().key_id.clone();
    Ok(Unverified {
        token: untrusted,
        alg,
        kid,
    })
}

/// Verifies the signature of an untrusted JWS with `key` and `alg`, returning the whole claim
/// set (with `exp`, `nbf`, `iat` put back as numbers).
pub(crate) fn verify_signature<H: Clone>(
    token: &UntrustedToken<'_, H>,
    alg: Alg,
    key: &VerifyingKey,
) -> Result<Map<String, Value>, TokenError> {
    let validated = match (alg, key) {
        (Alg::Es256, VerifyingKey::P256(k)) => jwt_compact::alg::Es256
            .validator::<Map<String, Value>>(k)
            .validate(token),
        #[cfg(feature = "rsa")]
        (Alg::Rs256, VerifyingKey::Rsa(k)) => {
            jwt_compact::alg::StrongAlg(jwt_compact::alg::Rsa::rs256())
                .validator::<Map<String, Value>>(k)
                .validate(token)
        }
        #[cfg(feature = "rsa")]
        (Alg::Ps256, VerifyingKey::Rsa(k)) => {
            jwt_compact::alg::StrongAlg(jwt_compact::alg::Rsa::ps256())
                .validator::<Map<String, Value>>(k)
                .validate(token)
        }
        #[cfg(feature = "eddsa")]
        (Alg::EdDsa, VerifyingKey::Ed25519(k)) => jwt_compact::alg::Ed25519
            .validator::<Map<String, Value>>(k)
            .validate(token),
        _ => return Err(TokenError::UnknownKey),
    };
    let token = validated.map_err(|e| match e {
        jwt_compact::ValidationError::InvalidSignature
        | jwt_compact::ValidationError::MalformedSignature(_) => TokenError::Signature,
        jwt_compact::ValidationError::AlgorithmMismatch { .. } => TokenError::Algorithm,
        other => TokenError::Claims(other.to_string()),
    })?;
    let claims = token.claims();
    let mut map = claims.custom.clone();
    for (name, time) in [
        ("exp", claims.expiration),
        ("nbf", claims.not_before),
        ("iat", claims.issued_at),
    ] {
        if let Some(t) = time {
            map.insert(name.into(), t.timestamp().into());
        }
    }
    Ok(map)
}

impl Unverified<'_> {
    /// Verifies the signature with the issuer's `key`, then the claims at time `now`.
    pub fn verify(&self, key: &Key, config: &Config, now: i64) -> Result<Claims, TokenError> {
        if key.alg.as_deref().is_some_and(|a| a != self.alg.as_str()) {
            return Err(TokenError::Algorithm);
        }
        let map = verify_signature(&self.token, self.alg, &key.key)?;
        let claims: Claims = serde_json::from_value(Value::Object(map))
            .map_err(|e| TokenError::Claims(e.to_string()))?;
        check_claims(&claims, config, now)?;
        Ok(claims)
    }
}

/// RFC 9068 §4 claim checks at time `now` (seconds since the epoch).
pub fn check_claims(claims: &Claims, config: &Config, now: i64) -> Result<(), TokenError> {
    let leeway = i64::try_from(config.leeway).unwrap_or(i64::MAX);
    if claims.iss != config.issuer {
        return Err(TokenError::Issuer);
    }
    if !claims.aud.contains(&config.resource_str) {
        return Err(TokenError::Audience);
    }
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
    if not_before > now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if claims.sub.is_empty() || claims.client_id.is_empty() || claims.jti.is_empty() {
        return Err(TokenError::Claims(
            "sub, client_id and jti must not be empty".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jwks::tests::{public_jwk, signing_key};
    use crate::jwks::{b64, KeySet};
    use p256::ecdsa::signature::Signer as _;

    pub const ISS: &str = "https://as.example";
    pub const RES: &str = "https://mcp.example/mcp";
    pub const NOW: i64 = 1_800_000_000;

    /// Signs `claims` with the fixed key `seed` under `header`.
    pub fn sign(seed: u8, header: Value, claims: Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig: p256::ecdsa::Signature = signing_key(seed).sign(input.as_bytes());
        format!("{input}.{}", b64(sig.to_bytes()))
    }

    pub fn claims() -> Value {
        serde_json::json!({
            "iss": ISS, "sub": "user-1", "aud": RES, "client_id": "client-1",
            "scope": "mcp:read", "jti": "t-1", "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 600,
        })
    }

    pub fn header() -> Value {
        serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"})
    }

    pub fn keys() -> KeySet {
        let doc = serde_json::json!({ "keys": [public_jwk(&signing_key(1), "k1")] });
        KeySet::from_json(doc.to_string().as_bytes()).unwrap()
    }

    fn config() -> Config {
        Config::new(ISS, RES).unwrap()
    }

    fn check(token: &str) -> Result<Claims, TokenError> {
        let c = config();
        let u = parse(token, &c.algorithms)?;
        let keys = keys();
        let key = keys
            .find(u.kid.as_deref(), u.alg)
            .ok_or(TokenError::UnknownKey)?;
        u.verify(key, &c, NOW)
    }

    fn with(f: impl FnOnce(&mut Value)) -> Value {
        let mut c = claims();
        f(&mut c);
        c
    }

    #[test]
    fn accepts_a_good_token() {
        let c = check(&sign(1, header(), claims())).unwrap();
        assert_eq!(c.sub, "user-1");
        assert_eq!(c.scopes(), ["mcp:read"]);
        assert_eq!(c.exp, NOW + 600);
    }

    #[test]
    fn header_checks() {
        let mut h = header();
        h["typ"] = "JWT".into();
        assert_eq!(check(&sign(1, h, claims())), Err(TokenError::Type));
        let mut h = header();
        h["typ"] = "application/AT+JWT".into();
        assert!(check(&sign(1, h, claims())).is_ok());
        let mut h = header();
        h.as_object_mut().unwrap().remove("typ");
        assert_eq!(check(&sign(1, h, claims())), Err(TokenError::Type));
        for alg in ["none", "HS256", "RS256", "es256"] {
            let mut h = header();
            h["alg"] = alg.into();
            assert_eq!(
                check(&sign(1, h, claims())),
                Err(TokenError::Algorithm),
                "{alg}"
            );
        }
        let mut h = header();
        h["kid"] = "other".into();
        assert_eq!(check(&sign(1, h, claims())), Err(TokenError::UnknownKey));
        assert_eq!(check("a.b"), Err(TokenError::Malformed));
        assert_eq!(check("!!.!!.!!"), Err(TokenError::Malformed));
        assert_eq!(
            check(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_key_from_the_header_is_never_used() {
        let mut h = header();
        h["jwk"] = public_jwk(&signing_key(9), "k1");
        h["jku"] = "https://evil.example/jwks".into();
        assert_eq!(check(&sign(9, h, claims())), Err(TokenError::Signature));
    }

    #[test]
    fn claim_checks() {
        let t = |c| check(&sign(1, header(), c));
        assert_eq!(
            t(with(|c| c["iss"] = "https://other.example".into())),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            t(with(|c| c["iss"] = "https://as.example/".into())),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            t(with(|c| c["aud"] = "https://mcp.example/other".into())),
            Err(TokenError::Audience)
        );
        assert!(t(with(|c| c["aud"] = serde_json::json!(["x", RES]))).is_ok());
        assert_eq!(
            t(with(|c| c["exp"] = (NOW - 61).into())),
            Err(TokenError::Expired)
        );
        assert!(
            t(with(|c| c["exp"] = (NOW - 59).into())).is_ok(),
            "within the skew"
        );
        assert_eq!(
            t(with(|c| c["nbf"] = (NOW + 61).into())),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            t(with(|c| c["iat"] = (NOW + 61).into())),
            Err(TokenError::NotYetValid)
        );
        for missing in ["sub", "client_id", "jti", "exp", "iat", "iss", "aud"] {
            let r = t(with(|c| {
                c.as_object_mut().unwrap().remove(missing);
            }));
            assert!(r.is_err(), "{missing} is required");
        }
        assert!(matches!(
            t(with(|c| c["exp"] = "soon".into())),
            Err(TokenError::Claims(_))
        ));
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let good = sign(1, header(), claims());
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(with(|c| c["scope"] = "mcp:write".into()).to_string()),
            parts[2]
        );
        assert_eq!(check(&forged), Err(TokenError::Signature));
    }
}
