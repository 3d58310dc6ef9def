//! Verification of JWS signatures by other parties (RFC 7518 §3.3 RS256, §3.5 PS256, §3.4
//! ES256; RFC 8037 §3.1 EdDSA with Ed25519): ID tokens of OIDC connectors. The algorithm
//! comes from the key (J2): an RSA key verifies only RS256 or PS256 (and only the one its
//! JWK `alg` names, when it names one), an Ed25519 key only EdDSA, a P-256 key only ES256;
//! `none`, HMAC and any other combination are refused before any signature is looked at.
//! RSA keys shorter than 2048 bits are refused. Pure Rust (RustCrypto `rsa`, `ed25519-dalek`,
//! `p256`), so every runtime verifies the same way; ES256 still goes through the provider.

use serde_json::Value;

/// A signature algorithm we verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// RSASSA-PSS SHA-256, MGF1 SHA-256.
    Ps256,
    /// Ed25519.
    EdDsa,
}

impl JwsAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// The algorithm `jwk` verifies for a token whose header says `header_alg`, or `None` when
/// the two do not agree (J1, J2): the key's type decides the family, the header may only
/// pick RS256 or PS256 for an RSA key without an `alg` of its own. Keys with private members
/// or `use` other than `sig` are refused.
pub fn alg_for(jwk: &Value, header_alg: &str) -> Option<JwsAlg> {
    let obj = jwk.as_object()?;
    if ["d", "p", "q", "k"].iter().any(|m| obj.contains_key(*m)) {
        return None;
    }
    if obj.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let key_alg = obj.get("alg").and_then(Value::as_str);
    let alg = match (obj.get("kty")?.as_str()?, header_alg) {
        ("EC", "ES256") if obj.get("crv")?.as_str()? == "P-256" => JwsAlg::Es256,
        ("RSA", "RS256") => JwsAlg::Rs256,
        ("RSA", "PS256") => JwsAlg::Ps256,
        ("OKP", "EdDSA" | "Ed25519") if obj.get("crv")?.as_str()? == "Ed25519" => JwsAlg::EdDsa,
        _ => return None,
    };
    match key_alg {
        None => Some(alg),
        Some(a) if a == alg.as_str() || (alg == JwsAlg::EdDsa && a == "Ed25519") => Some(alg),
        Some(_) => None,
    }
}

/// Whether `jwk` is a public signing key of a type we verify (P-256, RSA of 2048 bits or more,
/// Ed25519), without private members.
pub fn usable_public_key(jwk: &Value) -> bool {
    let Some(obj) = jwk.as_object() else {
        return false;
    };
    if ["d", "p", "q", "k"].iter().any(|m| obj.contains_key(*m))
        || obj.get("use").is_some_and(|u| u != "sig")
    {
        return false;
    }
    match obj.get("kty").and_then(Value::as_str) {
        Some("EC") => p256_public_key(jwk).is_some(),
        Some("RSA") => rsa_key(jwk).is_some(),
        Some("OKP") => {
            obj.get("crv").and_then(Value::as_str) == Some("Ed25519")
                && member(jwk, "x").is_some_and(|x| x.len() == 32)
        }
        _ => false,
    }
}

/// The uncompressed SEC1 point of a public P-256 JWK; `None` for anything else, including
/// a JWK carrying private members (`d`) or a symmetric key (J3).
pub fn p256_public_key(jwk: &Value) -> Option<Vec<u8>> {
    let obj = jwk.as_object()?;
    if obj.get("kty")?.as_str()? != "EC" || obj.get("crv")?.as_str()? != "P-256" {
        return None;
    }
    if obj.contains_key("d") {
        return None;
    }
    let x = crate::crypto::b64_decode(obj.get("x")?.as_str()?)?;
    let y = crate::crypto::b64_decode(obj.get("y")?.as_str()?)?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    // Reject points that are not on the curve.
    p256::PublicKey::from_sec1_bytes(&sec1).ok()?;
    Some(sec1)
}

fn member(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    crate::crypto::b64_decode(jwk.get(name)?.as_str()?)
}

fn rsa_key(jwk: &Value) -> Option<rsa::RsaPublicKey> {
    use rsa::traits::PublicKeyParts;
    let n = rsa::BigUint::from_bytes_be(&member(jwk, "n")?);
    let e = rsa::BigUint::from_bytes_be(&member(jwk, "e")?);
    let key = rsa::RsaPublicKey::new(n, e).ok()?;
    (key.size() * 8 >= 2048).then_some(key)
}

/// Verifies `signature` over `message` with `jwk` under `alg` (which [`alg_for`] chose).
/// ES256 keys are verified by the caller's crypto provider; here they verify with `p256`.
pub fn verify(alg: JwsAlg, jwk: &Value, message: &[u8], signature: &[u8]) -> bool {
    use rsa::signature::Verifier;
    match alg {
        JwsAlg::Rs256 => {
            let Some(key) = rsa_key(jwk) else {
                return false;
            };
            let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                return false;
            };
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(message, &sig)
                .is_ok()
        }
        JwsAlg::Ps256 => {
            let Some(key) = rsa_key(jwk) else {
                return false;
            };
            let Ok(sig) = rsa::pss::Signature::try_from(signature) else {
                return false;
            };
            rsa::pss::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(message, &sig)
                .is_ok()
        }
        JwsAlg::EdDsa => {
            let Some(x) = member(jwk, "x").and_then(|x| <[u8; 32]>::try_from(x).ok()) else {
                return false;
            };
            let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&x) else {
                return false;
            };
            let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                return false;
            };
            key.verify_strict(message, &sig).is_ok()
        }
        JwsAlg::Es256 => {
            use p256::ecdsa::signature::Verifier as _;
            let Some(sec1) = p256_public_key(jwk) else {
                return false;
            };
            let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) else {
                return false;
            };
            // `Signature::from_slice` refuses r = 0 or s = 0 (J4).
            let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
                return false;
            };
            key.verify(message, &sig).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_decides_the_algorithm() {
        let rsa = json!({"kty":"RSA","n":"AQAB","e":"AQAB"});
        assert_eq!(alg_for(&rsa, "RS256"), Some(JwsAlg::Rs256));
        assert_eq!(alg_for(&rsa, "PS256"), Some(JwsAlg::Ps256));
        for bad in ["HS256", "none", "NONE", "ES256", "EdDSA", "RS384", ""] {
            assert_eq!(alg_for(&rsa, bad), None, "{bad}");
        }
        let pinned = json!({"kty":"RSA","n":"AQAB","e":"AQAB","alg":"PS256"});
        assert_eq!(alg_for(&pinned, "RS256"), None);
        assert_eq!(alg_for(&pinned, "PS256"), Some(JwsAlg::Ps256));
        let ed = json!({"kty":"OKP","crv":"Ed25519","x":"AAAA"});
        assert_eq!(alg_for(&ed, "EdDSA"), Some(JwsAlg::EdDsa));
        assert_eq!(alg_for(&ed, "RS256"), None);
        assert_eq!(alg_for(&json!({"kty":"oct","k":"AAAA"}), "HS256"), None);
        let enc = json!({"kty":"RSA","n":"AQAB","e":"AQAB","use":"enc"});
        assert_eq!(alg_for(&enc, "RS256"), None);
    }

    #[test]
    fn short_rsa_keys_and_garbage_do_not_verify() {
        let rsa = json!({"kty":"RSA","n":"AQAB","e":"AQAB"});
        assert!(!verify(JwsAlg::Rs256, &rsa, b"m", &[0; 256]));
        let ed = json!({"kty":"OKP","crv":"Ed25519","x":"AAAA"});
        assert!(!verify(JwsAlg::EdDsa, &ed, b"m", &[0; 64]));
    }
}
