//! JWS compact serialization for our own JWTs (RFC 7515 §7.1, RFC 9068 access tokens) and
//! their verification. Signing goes through the [`CryptoProvider`] seam; parsing and claim
//! validation use `jwt-compact`, with the algorithm fixed by the key, never by the header
//! (J1, J2), and every header-supplied key reference (`jku`, `x5u`, `x5c`, `jwk`) ignored (J3).

use jwt_compact::UntrustedToken;
use serde::de::DeserializeOwned;

use crate::crypto::{b64, jws, CryptoError, CryptoProvider, Es256Signer};

/// Creates a compact JWS: `{"alg":"ES256","typ":typ,"kid":kid}` over `claims`.
pub async fn sign_es256(
    signer: &dyn Es256Signer,
    kid: &str,
    typ: &str,
    claims: &serde_json::Value,
) -> Result<String, CryptoError> {
    let header = serde_json::json!({ "alg": "ES256", "typ": typ, "kid": kid });
    let mut out = String::with_capacity(512);
    out.push_str(&b64(header.to_string()));
    out.push('.');
    out.push_str(&b64(claims.to_string()));
    let sig = signer.sign(out.as_bytes()).await?;
    out.push('.');
    out.push_str(&b64(sig));
    Ok(out)
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWS, or bad base64/JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not the one the key requires (includes `none`, HS256, J1/J2).
    #[error("algorithm not accepted")]
    Algorithm,
    /// `typ` is wrong.
    #[error("wrong token type")]
    Type,
    /// No key with that `kid`.
    #[error("unknown key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Claims are missing or of the wrong shape.
    #[error("bad claims: {0}")]
    Claims(String),
}

/// A parsed but unverified token: the header fields we look at.
pub struct Parsed<'a> {
    raw: &'a str,
    token: UntrustedToken<'a>,
}

impl<'a> Parsed<'a> {
    /// Parses a compact JWS. Only `ES256` is ever accepted (J1, J2).
    pub fn parse(s: &'a str) -> Result<Self, JwtError> {
        let parsed = Self::parse_any(s)?;
        if parsed.token.algorithm() != "ES256" {
            return Err(JwtError::Algorithm);
        }
        Ok(parsed)
    }

    /// Parses a compact JWS whatever its `alg`: for [`Self::verify_jwk`], where the key
    /// decides which algorithm is accepted.
    fn parse_any(s: &'a str) -> Result<Self, JwtError> {
        if s.len() > 16 * 1024 {
            return Err(JwtError::Malformed);
        }
        let token = UntrustedToken::new(s).map_err(|_| JwtError::Malformed)?;
        Ok(Self { raw: s, token })
    }

    /// Verifies the signature with the public `jwk` under `alg` (which the key chose,
    /// [`jws::alg_for`]) through the crypto provider, and returns the claims.
    async fn verify_jwk<T: DeserializeOwned>(
        &self,
        crypto: &dyn CryptoProvider,
        alg: jws::JwsAlg,
        jwk: &serde_json::Value,
    ) -> Result<T, JwtError> {
        if alg == jws::JwsAlg::Es256 {
            let public = p256_public_key(jwk).ok_or(JwtError::UnknownKey)?;
            return self.verify(crypto, &public).await;
        }
        let input = self
            .raw
            .rsplit_once('.')
            .map(|(input, _)| input)
            .ok_or(JwtError::Malformed)?;
        if !crypto
            .jws_verify(alg, jwk, input.as_bytes(), self.token.signature_bytes())
            .await
        {
            return Err(JwtError::Signature);
        }
        self.claims()
    }

    /// The `kid` header.
    pub fn kid(&self) -> Option<&str> {
        self.token.header().key_id.as_deref()
    }

    /// The `typ` header.
    pub fn typ(&self) -> Option<&str> {
        self.token.header().token_type.as_deref()
    }

    /// Verifies the signature with `public_sec1` through the crypto provider and returns the
    /// claims (time checks are the caller's, against the injected clock). The signature is
    /// checked over the JWS signing input (RFC 7515 §5.2) before any claim is looked at.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        crypto: &dyn CryptoProvider,
        public_sec1: &[u8],
    ) -> Result<T, JwtError> {
        let signature = self.token.signature_bytes();
        if signature.len() != 64 {
            return Err(JwtError::Signature);
        }
        // `UntrustedToken::new` accepted exactly three segments; the signing input is the
        // first two as they appear on the wire.
        let input = self
            .raw
            .rsplit_once('.')
            .map(|(input, _)| input)
            .ok_or(JwtError::Malformed)?;
        if !crypto
            .es256_verify(public_sec1, input.as_bytes(), signature)
            .await
        {
            return Err(JwtError::Signature);
        }
        self.claims()
    }

    /// The claims, once the signature has been checked.
    fn claims<T: DeserializeOwned>(&self) -> Result<T, JwtError> {
        let claims = self
            .token
            .deserialize_claims_unchecked::<serde_json::Map<String, serde_json::Value>>()
            .map_err(|e| JwtError::Claims(e.to_string()))?;
        // jwt-compact lifts `exp`, `nbf` and `iat` out of the claim set; put them back so the
        // caller's claim type sees the whole set.
        let mut map = claims.custom;
        for (name, time) in [
            ("exp", claims.expiration),
            ("nbf", claims.not_before),
            ("iat", claims.issued_at),
        ] {
            if let Some(t) = time {
                map.insert(name.into(), t.timestamp().into());
            }
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| JwtError::Claims(e.to_string()))
    }
}

/// The decoded JOSE header of a compact JWS, without verifying anything.
pub fn header(token: &str) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    let first = token.split('.').next().ok_or(JwtError::Malformed)?;
    if first.len() > 8 * 1024 {
        return Err(JwtError::Malformed);
    }
    let bytes = crate::crypto::b64_decode(first).ok_or(JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// The uncompressed SEC1 point of a public P-256 JWK; `None` for anything else, including
/// a JWK carrying private members (`d`) or a symmetric key (J3).
pub fn p256_public_key(jwk: &serde_json::Value) -> Option<Vec<u8>> {
    jws::p256_public_key(jwk)
}

/// Verifies a JWT signed by someone else (a client assertion, an ID-JAG) with the given
/// public JWK. The key decides the algorithm (J2, [`jws::alg_for`]): ES256 for a P-256 key,
/// RS256 or PS256 for an RSA key of 2048 bits or more (only the one its JWK `alg` names, when
/// it names one), EdDSA for an Ed25519 key; `alg: none` in any case and HMAC are refused
/// (J1), keys referenced from the header are never used (J3, the caller picks `jwk`), and
/// `r = 0` / `s = 0` ECDSA signatures fail (J4). Returns the claims; time, audience, issuer and
/// type checks are the caller's (J5).
pub async fn verify_with_jwk(
    crypto: &dyn CryptoProvider,
    token: &str,
    jwk: &serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    if !jws::usable_public_key(jwk) {
        return Err(JwtError::UnknownKey);
    }
    let parsed = Parsed::parse_any(token)?;
    let alg = jws::alg_for(jwk, parsed.token.algorithm()).ok_or(JwtError::Algorithm)?;
    parsed.verify_jwk(crypto, alg, jwk).await
}

/// Picks the key for `kid` (or the only key when the token names none) from a JWK Set.
pub fn select_key<'a>(
    jwks: &'a serde_json::Value,
    kid: Option<&str>,
) -> Option<&'a serde_json::Value> {
    let keys = jwks.get("keys")?.as_array()?;
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.get("kid").and_then(|v| v.as_str()) == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rustcrypto::{generate_scalar, public_key_sec1};
    use crate::crypto::RustCrypto;
    use crate::runtime::SeededRng;

    /// The verification under test, driven to completion.
    fn verify_with_jwk(
        crypto: &dyn CryptoProvider,
        token: &str,
        jwk: &serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
        futures::executor::block_on(super::verify_with_jwk(crypto, token, jwk))
    }

    fn key() -> ([u8; 32], serde_json::Value) {
        let scalar = generate_scalar(&SeededRng::new(11));
        let jwk = crate::keys::public_jwk(&public_key_sec1(&scalar).unwrap());
        (scalar, jwk)
    }

    fn signed(scalar: &[u8; 32], header: serde_json::Value, claims: serde_json::Value) -> String {
        let signer = RustCrypto.es256_signer(scalar).unwrap();
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = futures::executor::block_on(signer.sign(input.as_bytes())).unwrap();
        format!("{input}.{}", b64(sig))
    }

    #[test]
    fn verifies_es256_with_the_given_jwk() {
        let (scalar, jwk) = key();
        let t = signed(
            &scalar,
            serde_json::json!({"alg":"ES256","typ":"JWT"}),
            serde_json::json!({"sub":"a","exp":5}),
        );
        let claims = verify_with_jwk(&RustCrypto, &t, &jwk).unwrap();
        assert_eq!(claims["sub"], "a");
        assert_eq!(claims["exp"], 5);
        assert_eq!(header(&t).unwrap()["typ"], "JWT");
    }

    #[test]
    fn j1_alg_none_in_any_case_is_refused() {
        let (_, jwk) = key();
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = format!(
                "{}.{}.",
                b64(format!(r#"{{"alg":"{alg}"}}"#)),
                b64(r#"{"sub":"a"}"#)
            );
            assert!(verify_with_jwk(&RustCrypto, &t, &jwk).is_err(), "{alg}");
        }
    }

    #[test]
    fn j2_hs256_signed_with_our_public_key_is_refused() {
        use hkdf::hmac::{Hmac, Mac};
        let (_, jwk) = key();
        let input = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64(r#"{"sub":"a"}"#));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(jwk.to_string().as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let t = format!("{input}.{}", b64(mac.finalize().into_bytes()));
        assert_eq!(
            verify_with_jwk(&RustCrypto, &t, &jwk).unwrap_err(),
            JwtError::Algorithm
        );
    }

    #[test]
    fn j3_private_or_symmetric_jwks_are_not_keys() {
        let (_, mut jwk) = key();
        jwk["d"] = "AAAA".into();
        assert!(p256_public_key(&jwk).is_none());
        assert!(p256_public_key(&serde_json::json!({"kty":"oct","k":"AAAA"})).is_none());
    }

    #[test]
    fn j4_zero_signature_is_refused() {
        let (_, jwk) = key();
        let input = format!("{}.{}", b64(r#"{"alg":"ES256"}"#), b64(r#"{"sub":"a"}"#));
        let t = format!("{input}.{}", b64([0u8; 64]));
        assert_eq!(
            verify_with_jwk(&RustCrypto, &t, &jwk).unwrap_err(),
            JwtError::Signature
        );
    }

    #[test]
    fn select_key_by_kid() {
        let jwks = serde_json::json!({"keys":[{"kid":"a"},{"kid":"b"}]});
        assert_eq!(select_key(&jwks, Some("b")).unwrap()["kid"], "b");
        assert!(select_key(&jwks, None).is_none());
        assert!(select_key(&jwks, Some("c")).is_none());
    }
}
