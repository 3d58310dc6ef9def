//! JWS compact serialization for our own JWTs (RFC 7515 §7.1, RFC 9068 access tokens) and
//! their verification. Signing goes through the [`CryptoProvider`] seam; parsing and claim
//! validation use `jwt-compact`, with the algorithm fixed by the key, never by the header
//! (J1, J2), and every header-supplied key reference (`jku`, `x5u`, `x5c`, `jwk`) ignored (J3).

use std::borrow::Cow;
use std::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmExt, AlgorithmSignature, UntrustedToken};
use serde::de::DeserializeOwned;

use crate::crypto::{b64, CryptoError, CryptoProvider, Es256Signer};

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

/// A 64-byte `r || s` ECDSA signature.
#[derive(Debug, Clone)]
pub struct Sig64(Vec<u8>);

impl AlgorithmSignature for Sig64 {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(64);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// ES256 verified through the crypto provider.
pub struct ProviderEs256<'a>(pub &'a dyn CryptoProvider);

impl Algorithm for ProviderEs256<'_> {
    type SigningKey = p256::ecdsa::SigningKey;
    type VerifyingKey = Vec<u8>;
    type Signature = Sig64;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = signing_key.sign(message);
        Sig64(sig.to_bytes().to_vec())
    }

    fn verify_signature(&self, signature: &Sig64, key: &Vec<u8>, message: &[u8]) -> bool {
        self.0.es256_verify(key, message, &signature.0)
    }
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
    token: UntrustedToken<'a>,
}

impl<'a> Parsed<'a> {
    /// Parses a compact JWS. Only `ES256` is ever accepted (J1, J2).
    pub fn parse(s: &'a str) -> Result<Self, JwtError> {
        if s.len() > 16 * 1024 {
            return Err(JwtError::Malformed);
        }
        let token = UntrustedToken::new(s).map_err(|_| JwtError::Malformed)?;
        if token.algorithm() != "ES256" {
            return Err(JwtError::Algorithm);
        }
        Ok(Self { token })
    }

    /// The `kid` header.
    pub fn kid(&self) -> Option<&str> {
        self.token.header().key_id.as_deref()
    }

    /// The `typ` header.
    pub fn typ(&self) -> Option<&str> {
        self.token.header().token_type.as_deref()
    }

    /// Verifies the signature with `public_sec1` and returns the claims (time checks are the
    /// caller's, against the injected clock).
    pub fn verify<T: DeserializeOwned>(
        &self,
        crypto: &dyn CryptoProvider,
        public_sec1: &Vec<u8>,
    ) -> Result<T, JwtError> {
        let alg = ProviderEs256(crypto);
        let token = alg
            .validator::<serde_json::Map<String, serde_json::Value>>(public_sec1)
            .validate(&self.token)
            .map_err(|e| match e {
                jwt_compact::ValidationError::AlgorithmMismatch { .. } => JwtError::Algorithm,
                jwt_compact::ValidationError::InvalidSignature
                | jwt_compact::ValidationError::InvalidSignatureLen { .. }
                | jwt_compact::ValidationError::MalformedSignature(_) => JwtError::Signature,
                other => JwtError::Claims(other.to_string()),
            })?;
        // jwt-compact lifts `exp`, `nbf` and `iat` out of the claim set; put them back so the
        // caller's claim type sees the whole set.
        let claims = token.into_parts().1;
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
