//! DPoP on the resource side (RFC 9449 §7, with the proof checks of §4.3): one `DPoP` header,
//! `typ` `dpop+jwt`, `alg` on the allow-list, a public `jwk` in the header that verifies the
//! signature, `jti`, `htm` equal to the request method, `htu` equal to the request URL
//! (without query and fragment, after RFC 3986 §6.2.2 normalization), `iat` within the allowed
//! age and skew, `ath` the hash of the access token (§4.2), and the key's RFC 7638 thumbprint
//! equal to the token's `cnf.jkt` (§6.1). Replays are caught by a [`ReplayCache`] keyed by
//! thumbprint and `jti` (§11.1), reserved only after every other check passed.

use std::collections::HashMap;
use std::sync::Mutex;

use jwt_compact::jwk::JsonWebKey;
use jwt_compact::UntrustedToken;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::config::Alg;
use crate::jwks::{b64, VerifyingKey};
use crate::token::verify_signature;

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// Longest `DPoP` header accepted.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Why a proof was refused. The `Display` text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More than one `DPoP` header.
    #[error("exactly one DPoP header is allowed")]
    Multiple,
    /// No `DPoP` header with a DPoP token.
    #[error("a DPoP proof is required with a DPoP-bound token")]
    Missing,
    /// Not a compact JWS, or bad base64/JSON.
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof typ must be dpop+jwt")]
    Type,
    /// `alg` not on the allow-list.
    #[error("the DPoP proof algorithm is not accepted")]
    Algorithm,
    /// No usable public `jwk` in the header.
    #[error("the DPoP proof needs a public jwk in its header")]
    Key,
    /// The signature does not verify with the header's key.
    #[error("the DPoP proof signature is invalid")]
    Signature,
    /// `jti` missing, empty or too long.
    #[error("the DPoP proof needs a jti")]
    Jti,
    /// `htm` is not the request method.
    #[error("the DPoP proof htm does not match the request method")]
    Method,
    /// `htu` is not the request URL.
    #[error("the DPoP proof htu does not match the request URL")]
    Url,
    /// `iat` missing or too old.
    #[error("the DPoP proof is too old")]
    TooOld,
    /// `iat` in the future.
    #[error("the DPoP proof iat is in the future")]
    InFuture,
    /// `ath` missing or not the access token's hash.
    #[error("the DPoP proof ath does not match the access token")]
    AccessTokenHash,
    /// The proof key is not the key the token is bound to.
    #[error("the DPoP proof key does not match the token's cnf.jkt")]
    KeyMismatch,
    /// The `jti` was seen before with this key.
    #[error("the DPoP proof was already used")]
    Replay,
    /// No `nonce`, or not a current one from this server (RFC 9449 §9).
    #[error("the DPoP proof needs the nonce from the DPoP-Nonce header")]
    Nonce,
}

/// What a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request method (`htm`).
    pub method: &'a str,
    /// The absolute URL the request was sent to (`htu`).
    pub url: &'a str,
    /// The access token sent with the proof (`ath`).
    pub access_token: &'a str,
    /// The token's `cnf.jkt`.
    pub jkt: &'a str,
    /// Current time, seconds since the epoch.
    pub now: i64,
    /// Largest accepted age of `iat`, seconds.
    pub max_age: i64,
    /// Allowed clock skew for an `iat` in the future, seconds.
    pub leeway: i64,
}

/// A proof that passed every check except the replay reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// RFC 7638 thumbprint of the proof key.
    pub jkt: String,
    /// `jti`.
    pub jti: String,
    /// `iat`.
    pub iat: i64,
    /// `nonce`, when the proof has one.
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ProofHeader {
    jwk: JsonWebKey<'static>,
}

/// `htu` comparison form: an absolute http(s) URL, normalized, without query and fragment
/// (RFC 9449 §4.3 check 9).
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
    b64(Sha256::digest(access_token.as_bytes()))
}

/// RFC 7638 SHA-256 thumbprint of a public JWK, base64url.
pub fn thumbprint(jwk: &JsonWebKey<'_>) -> String {
    b64(jwk.to_verifying_key().thumbprint::<Sha256>())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `proof` against `expected` with the proof algorithms `algs`.
pub fn check(proof: &str, expected: &Expected<'_>, algs: &[Alg]) -> Result<Checked, ProofError> {
    if proof.len() > MAX_PROOF_LEN || proof.split('.').count() != 3 {
        return Err(ProofError::Malformed);
    }
    let untrusted = UntrustedToken::<ProofHeader>::try_from(proof).map_err(|e| match e {
        jwt_compact::ParseError::MalformedHeader(_) => ProofError::Key,
        _ => ProofError::Malformed,
    })?;
    if untrusted.header().token_type.as_deref() != Some(PROOF_TYP) {
        return Err(ProofError::Type);
    }
    let alg = Alg::parse(untrusted.algorithm())
        .filter(|a| algs.contains(a))
        .ok_or(ProofError::Algorithm)?;
    let jwk = &untrusted.header().other_fields.jwk;
    let key = VerifyingKey::from_jwk(jwk).ok_or(ProofError::Key)?;
    if !key.fits(alg) {
        return Err(ProofError::Algorithm);
    }
    let claims = verify_signature(&untrusted, alg, &key).map_err(|e| match e {
        crate::token::TokenError::Signature => ProofError::Signature,
        crate::token::TokenError::Algorithm => ProofError::Algorithm,
        _ => ProofError::Malformed,
    })?;

    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(ProofError::Jti);
    }
    if claims.get("htm").and_then(Value::as_str) != Some(expected.method) {
        return Err(ProofError::Method);
    }
    let htu = claims.get("htu").and_then(Value::as_str).unwrap_or("");
    match (normalize_htu(htu), normalize_htu(expected.url)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(ProofError::Url),
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(ProofError::TooOld)?;
    if expected.now.saturating_sub(iat) > expected.max_age {
        return Err(ProofError::TooOld);
    }
    if iat.saturating_sub(expected.now) > expected.leeway {
        return Err(ProofError::InFuture);
    }
    let ath = claims.get("ath").and_then(Value::as_str).unwrap_or("");
    if !constant_time_eq(
        ath.as_bytes(),
        access_token_hash(expected.access_token).as_bytes(),
    ) {
        return Err(ProofError::AccessTokenHash);
    }
    let jkt = thumbprint(jwk);
    if !constant_time_eq(jkt.as_bytes(), expected.jkt.as_bytes()) {
        return Err(ProofError::KeyMismatch);
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Checked {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

/// Remembers proof `jti`s until their proofs could no longer be accepted (RFC 9449 §11.1).
/// With several instances of the resource server, use a store shared by all of them.
pub trait ReplayCache: Send + Sync {
    /// Reserves `key` until `expires_at`; `false` when it is already reserved.
    fn reserve(&self, key: &str, expires_at: i64, now: i64) -> bool;
}

/// An in-process replay cache, bounded: when full it refuses new proofs (fails closed) after
/// dropping expired entries.
#[derive(Debug)]
pub struct MemoryReplayCache {
    seen: Mutex<HashMap<String, i64>>,
    capacity: usize,
}

impl MemoryReplayCache {
    /// A cache holding at most `capacity` live `jti`s.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn reserve(&self, key: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(key).is_some_and(|&exp| exp > now) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, &mut exp| exp > now);
            if seen.len() >= self.capacity {
                return false;
            }
        }
        seen.insert(key.to_owned(), expires_at);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jwks::tests::{public_jwk, signing_key};
    use crate::token::tests::{sign, NOW};

    pub const URL: &str = "https://mcp.example/mcp";

    pub fn proof_jwk(seed: u8) -> Value {
        let mut jwk = public_jwk(&signing_key(seed), "");
        let obj = jwk.as_object_mut().unwrap();
        for k in ["kid", "alg", "use"] {
            obj.remove(k);
        }
        jwk
    }

    pub fn jkt(seed: u8) -> String {
        let jwk: JsonWebKey<'_> = serde_json::from_value(proof_jwk(seed)).unwrap();
        thumbprint(&jwk)
    }

    /// A proof by key `seed` for `POST URL` with `token`.
    pub fn proof(seed: u8, token: &str, f: impl FnOnce(&mut Value, &mut Value)) -> String {
        let mut h = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": proof_jwk(seed)});
        let mut c = serde_json::json!({
            "jti": "p-1", "htm": "POST", "htu": URL, "iat": NOW, "ath": access_token_hash(token),
        });
        f(&mut h, &mut c);
        sign(seed, h, c)
    }

    fn expected<'a>(token: &'a str, jkt: &'a str) -> Expected<'a> {
        Expected {
            method: "POST",
            url: URL,
            access_token: token,
            jkt,
            now: NOW,
            max_age: 300,
            leeway: 60,
        }
    }

    fn run(p: &str) -> Result<Checked, ProofError> {
        let j = jkt(3);
        check(p, &expected("tok", &j), &[Alg::Es256])
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1 example key (RSA); our keys are EC, so check an EC thumbprint's shape
        // and stability instead: 43 base64url characters, same for the same key.
        assert_eq!(jkt(3).len(), 43);
        assert_eq!(jkt(3), jkt(3));
        assert_ne!(jkt(3), jkt(4));
    }

    #[test]
    fn accepts_a_good_proof() {
        let c = run(&proof(3, "tok", |_, _| {})).unwrap();
        assert_eq!(c.jti, "p-1");
        assert_eq!(c.jkt, jkt(3));
        // htu ignores query and fragment and normalizes case and default port.
        assert!(run(&proof(3, "tok", |_, c| c["htu"] =
            "HTTPS://MCP.example:443/mcp?x=1".into()))
        .is_ok());
    }

    #[test]
    fn each_check_refuses() {
        let cases: Vec<(ProofError, String)> = vec![
            (
                ProofError::Type,
                proof(3, "tok", |h, _| h["typ"] = "JWT".into()),
            ),
            (
                ProofError::Algorithm,
                proof(3, "tok", |h, _| h["alg"] = "RS256".into()),
            ),
            (
                ProofError::Algorithm,
                proof(3, "tok", |h, _| h["alg"] = "none".into()),
            ),
            (
                ProofError::Key,
                proof(3, "tok", |h, _| {
                    h.as_object_mut().unwrap().remove("jwk");
                }),
            ),
            (
                ProofError::Key,
                proof(3, "tok", |h, _| h["jwk"]["d"] = "AAAA".into()),
            ),
            (
                ProofError::Signature,
                proof(3, "tok", |h, _| h["jwk"] = proof_jwk(4)),
            ),
            (
                ProofError::Jti,
                proof(3, "tok", |_, c| c["jti"] = "".into()),
            ),
            (
                ProofError::Method,
                proof(3, "tok", |_, c| c["htm"] = "GET".into()),
            ),
            (
                ProofError::Url,
                proof(3, "tok", |_, c| {
                    c["htu"] = "https://mcp.example/other".into()
                }),
            ),
            (
                ProofError::Url,
                proof(3, "tok", |_, c| c["htu"] = "not a url".into()),
            ),
            (
                ProofError::TooOld,
                proof(3, "tok", |_, c| c["iat"] = (NOW - 301).into()),
            ),
            (
                ProofError::InFuture,
                proof(3, "tok", |_, c| c["iat"] = (NOW + 61).into()),
            ),
            (ProofError::AccessTokenHash, proof(3, "other", |_, _| {})),
            (
                ProofError::AccessTokenHash,
                proof(3, "tok", |_, c| {
                    c.as_object_mut().unwrap().remove("ath");
                }),
            ),
            (ProofError::KeyMismatch, proof(4, "tok", |_, _| {})),
            (ProofError::Malformed, "a.b".into()),
        ];
        for (want, p) in cases {
            assert_eq!(run(&p), Err(want.clone()), "{want:?}");
        }
    }

    #[test]
    fn replay_cache_refuses_a_second_use_until_expiry() {
        let c = MemoryReplayCache::new(2);
        assert!(c.reserve("k:1", 100, 0));
        assert!(!c.reserve("k:1", 100, 50));
        assert!(c.reserve("k:2", 100, 50));
        assert!(!c.reserve("k:3", 100, 50), "full: fail closed");
        assert!(c.reserve("k:3", 300, 150), "expired entries are dropped");
        assert!(c.reserve("k:1", 300, 150));
    }
}
