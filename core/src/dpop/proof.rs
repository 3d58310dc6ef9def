//! Checking one DPoP proof JWT (RFC 9449 §4.2, §4.3) as a plain function over values:
//! exactly one `DPoP` header, `typ` `dpop+jwt`, `alg` ES256 (the key decides, J1/J2), a
//! public P-256 `jwk` in the header and nothing else used as a key (J3), the signature,
//! `jti`, `htm`, `htu` (ignoring query and fragment, after RFC 3986 normalization), `iat`
//! within the allowed age and skew, `ath` for resource requests (§7), and the server nonce
//! when one is required (§8) (SECURITY-CHECKLIST D1, D4). The replay reservation (D2) is
//! separate ([`super::reserve`]) so that callers spend the `jti` only after every other
//! check has passed.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::nonce::NonceKey;
use crate::crypto::{b64, ct_eq, sha256, CryptoProvider};
use crate::jose;

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// Signature algorithms accepted for proofs (advertised as `dpop_signing_alg_values_supported`).
pub const ALGS: &[&str] = &["ES256"];
/// Longest `DPoP` header accepted.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` accepted (it becomes part of a storage key).
const MAX_JTI_LEN: usize = 256;

/// Why a proof was refused. [`Reason::as_str`] is the audit reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// More than one `DPoP` header.
    MultipleProofs,
    /// Not a compact JWS, oversized, bad base64 or JSON.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    Type,
    /// `alg` is not ES256.
    Algorithm,
    /// No `jwk`, or not a public P-256 key (private members, symmetric keys, other curves).
    Key,
    /// The signature does not verify with the header's `jwk`.
    Signature,
    /// `jti` missing, empty or too long.
    Jti,
    /// `htm` is not the request method.
    Method,
    /// `htu` is not the request URL.
    Url,
    /// `iat` missing, or older than the allowed age.
    TooOld,
    /// `iat` too far in the future.
    InFuture,
    /// `ath` missing or not the hash of the presented access token.
    AccessTokenHash,
    /// No valid, unexpired server nonce (answered with `use_dpop_nonce`).
    Nonce,
    /// The proof's key is not the one the token or grant is bound to.
    KeyMismatch,
    /// The `jti` was already used with this key (D2).
    Replay,
    /// The client must send a proof and sent none.
    Missing,
}

impl Reason {
    /// A short, stable name for audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MultipleProofs => "multiple_proofs",
            Self::Malformed => "malformed",
            Self::Type => "typ",
            Self::Algorithm => "alg",
            Self::Key => "jwk",
            Self::Signature => "signature",
            Self::Jti => "jti",
            Self::Method => "htm",
            Self::Url => "htu",
            Self::TooOld => "iat_too_old",
            Self::InFuture => "iat_in_future",
            Self::AccessTokenHash => "ath",
            Self::Nonce => "nonce",
            Self::KeyMismatch => "key_mismatch",
            Self::Replay => "replay",
            Self::Missing => "missing",
        }
    }
}

/// A refused proof: the reason and a precise, client-safe description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub reason: Reason,
    /// What to tell the client.
    pub description: String,
}

impl Rejection {
    /// A rejection.
    pub fn new(reason: Reason, description: impl Into<String>) -> Self {
        Self {
            reason,
            description: description.into(),
        }
    }
}

/// What the proof must match.
pub struct Expected<'a> {
    /// The request method (`htm`).
    pub method: &'a str,
    /// The URL of the endpoint the request was sent to (`htu`).
    pub url: &'a str,
    /// The access token sent with a resource request (`ath`); `None` at the token endpoint.
    pub access_token: Option<&'a str>,
    /// Current time.
    pub now: i64,
    /// Largest accepted age of `iat`, seconds.
    pub max_age: i64,
    /// How far in the future `iat` may be (the `jwt_clock_skew_seconds` setting), seconds.
    pub skew: i64,
    /// When nonces are required: the key that checks them and their lifetime.
    pub nonce: Option<(&'a NonceKey, i64)>,
}

/// A proof that passed every check but the replay reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// RFC 7638 thumbprint of the proof's public key.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
}

/// The single `DPoP` header of a request: `Ok(None)` when there is none, a rejection when
/// there are several (RFC 9449 §4.3 check 1) or it is not visible ASCII.
pub fn single_header(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::new(
            Reason::MultipleProofs,
            "exactly one DPoP header is allowed",
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| Rejection::new(Reason::Malformed, "the DPoP header is not a JWT"))
}

/// `htu` comparison form: an absolute http(s) URL, normalized (RFC 3986 §6.2.2, §6.2.3:
/// case of scheme and host, default port, dot segments, percent-encoding case), without
/// query and fragment (RFC 9449 §4.3 check 9).
pub fn normalize_htu(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() {
        return None;
    }
    u.set_query(None);
    u.set_fragment(None);
    Some(u.into())
}

/// RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token.
pub fn access_token_hash(access_token: &str) -> String {
    b64(sha256(access_token.as_bytes()))
}

/// Checks `proof` against `expected`: D1 (and D4 when `expected.nonce` is set).
pub async fn check(
    crypto: &dyn CryptoProvider,
    proof: &str,
    expected: &Expected<'_>,
) -> Result<Checked, Rejection> {
    use Reason::*;
    if proof.len() > MAX_PROOF_LEN || proof.split('.').count() != 3 {
        return Err(Rejection::new(
            Malformed,
            "the DPoP proof is not a compact JWS",
        ));
    }
    let header = jose::header(proof)
        .map_err(|_| Rejection::new(Malformed, "the DPoP proof header is not valid JSON"))?;
    if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
        return Err(Rejection::new(Type, "the DPoP proof typ must be dpop+jwt"));
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !ALGS.contains(&alg) {
        return Err(Rejection::new(
            Algorithm,
            format!("DPoP proof alg must be one of: {}", ALGS.join(", ")),
        ));
    }
    let jwk = header
        .get("jwk")
        .ok_or_else(|| Rejection::new(Key, "the DPoP proof header has no jwk"))?;
    let Some(public) = jose::p256_public_key(jwk) else {
        return Err(Rejection::new(
            Key,
            "the DPoP proof jwk must be a public P-256 key (no private or symmetric keys)",
        ));
    };
    let claims = verify_signature(crypto, proof, &public).await?;

    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(Rejection::new(
            Jti,
            format!("the DPoP proof needs a jti of 1 to {MAX_JTI_LEN} characters"),
        ));
    }
    if claims.get("htm").and_then(Value::as_str) != Some(expected.method) {
        return Err(Rejection::new(
            Method,
            format!("the DPoP proof htm must be {}", expected.method),
        ));
    }
    let htu = claims.get("htu").and_then(Value::as_str).unwrap_or("");
    if normalize_htu(htu).is_none() || normalize_htu(htu) != normalize_htu(expected.url) {
        return Err(Rejection::new(
            Url,
            format!("the DPoP proof htu must be {}", expected.url),
        ));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return Err(Rejection::new(TooOld, "the DPoP proof needs an iat"));
    };
    if expected.now.saturating_sub(iat) > expected.max_age {
        return Err(Rejection::new(
            TooOld,
            format!(
                "the DPoP proof is too old (at most {} seconds)",
                expected.max_age
            ),
        ));
    }
    if iat.saturating_sub(expected.now) > expected.skew {
        return Err(Rejection::new(
            InFuture,
            "the DPoP proof iat is in the future",
        ));
    }
    if let Some(token) = expected.access_token {
        let ath = claims.get("ath").and_then(Value::as_str).unwrap_or("");
        if !ct_eq(ath.as_bytes(), access_token_hash(token).as_bytes()) {
            return Err(Rejection::new(
                AccessTokenHash,
                "the DPoP proof ath must be the hash of the access token",
            ));
        }
    }
    if let Some((key, lifetime)) = expected.nonce {
        let nonce = claims.get("nonce").and_then(Value::as_str);
        if !nonce.is_some_and(|n| key.check(n, expected.now, lifetime)) {
            return Err(Rejection::new(
                Nonce,
                if nonce.is_some() {
                    "the DPoP nonce is invalid or expired; use the one in the DPoP-Nonce header"
                } else {
                    "a DPoP nonce is required; use the one in the DPoP-Nonce header"
                },
            ));
        }
    }
    Ok(Checked {
        jkt: crate::keys::thumbprint(&crate::keys::public_jwk(&public)),
        jti: jti.to_owned(),
        iat,
    })
}

async fn verify_signature(
    crypto: &dyn CryptoProvider,
    proof: &str,
    public: &[u8],
) -> Result<Map<String, Value>, Rejection> {
    let parsed = jose::Parsed::parse(proof).map_err(|e| match e {
        jose::JwtError::Algorithm => {
            Rejection::new(Reason::Algorithm, "DPoP proof alg must be one of: ES256")
        }
        _ => Rejection::new(Reason::Malformed, "the DPoP proof is not a compact JWS"),
    })?;
    parsed.verify(crypto, public).await.map_err(|e| match e {
        jose::JwtError::Signature => Rejection::new(
            Reason::Signature,
            "the DPoP proof signature does not verify with its jwk",
        ),
        jose::JwtError::Algorithm => {
            Rejection::new(Reason::Algorithm, "DPoP proof alg must be one of: ES256")
        }
        _ => Rejection::new(Reason::Malformed, "the DPoP proof claims are malformed"),
    })
}
