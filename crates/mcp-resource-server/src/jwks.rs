//! The issuer's signing keys: a JWK Set (RFC 7517 §5) parsed into verifying keys, and the
//! key cache as a state machine over the current time. A key is looked up by `kid`; an unknown
//! `kid` asks for a refetch, at most once per refetch floor, so a flood of tokens with made-up
//! `kid`s cannot turn into a flood of JWKS requests (the jwt-authorizer rule). Keys named in a
//! token header (`jku`, `x5u`, `jwk`) are never used (RFC 8725 §3.10).

use std::sync::Arc;

use base64::Engine as _;
use jwt_compact::jwk::JsonWebKey;
use serde_json::Value;

use crate::config::Alg;

/// A public key that can verify signatures.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    /// P-256 (ES256).
    P256(p256::ecdsa::VerifyingKey),
    /// RSA, at least 2048 bits (RS256, PS256).
    #[cfg(feature = "rsa")]
    Rsa(jwt_compact::alg::StrongKey<jwt_compact::alg::RsaPublicKey>),
    /// Ed25519 (EdDSA).
    #[cfg(feature = "eddsa")]
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl VerifyingKey {
    /// Whether this key can verify signatures made with `alg`.
    pub fn fits(&self, alg: Alg) -> bool {
        match self {
            Self::P256(_) => alg == Alg::Es256,
            #[cfg(feature = "rsa")]
            Self::Rsa(_) => matches!(alg, Alg::Rs256 | Alg::Ps256),
            #[cfg(feature = "eddsa")]
            Self::Ed25519(_) => alg == Alg::EdDsa,
        }
    }

    /// A public key from a parsed JWK; `None` for private, symmetric, weak or unsupported keys.
    pub fn from_jwk(jwk: &JsonWebKey<'_>) -> Option<Self> {
        if jwk.is_signing_key() {
            return None; // a JWK with private members is not a published public key
        }
        match jwk {
            JsonWebKey::EllipticCurve { .. } => p256::ecdsa::VerifyingKey::try_from(jwk)
                .ok()
                .map(Self::P256),
            #[cfg(feature = "rsa")]
            JsonWebKey::Rsa { .. } => {
                let key = jwt_compact::alg::RsaPublicKey::try_from(jwk).ok()?;
                jwt_compact::alg::StrongKey::try_from(key)
                    .ok()
                    .map(Self::Rsa)
            }
            #[cfg(feature = "eddsa")]
            JsonWebKey::KeyPair { .. } => ed25519_dalek::VerifyingKey::try_from(jwk)
                .ok()
                .map(Self::Ed25519),
            _ => None,
        }
    }
}

/// One usable key of a set.
#[derive(Debug, Clone)]
pub struct Key {
    /// `kid`.
    pub kid: Option<String>,
    /// `alg`, when the set pins the key to one algorithm.
    pub alg: Option<String>,
    /// The key.
    pub key: VerifyingKey,
}

/// A JWK Set, keeping only keys usable for signature verification.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<Key>>,
}

/// Why a JWK Set document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON, or no `keys` array.
    #[error("the JWK Set is not a JSON object with a keys array")]
    Malformed,
}

impl KeySet {
    /// Parses a JWK Set. Keys that cannot verify signatures (encryption keys, private or
    /// symmetric keys, other curves, RSA under 2048 bits, unsupported types) are skipped.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwksError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|_| JwksError::Malformed)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::Malformed)?;
        let keys = keys
            .iter()
            .filter_map(|k| {
                let obj = k.as_object()?;
                if obj
                    .get("use")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u != "sig")
                {
                    return None;
                }
                let jwk: JsonWebKey<'_> = serde_json::from_value(k.clone()).ok()?;
                Some(Arc::new(Key {
                    kid: obj.get("kid").and_then(Value::as_str).map(str::to_owned),
                    alg: obj.get("alg").and_then(Value::as_str).map(str::to_owned),
                    key: VerifyingKey::from_jwk(&jwk)?,
                }))
            })
            .collect();
        Ok(Self { keys })
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token signed with `alg` naming `kid`: the key with that `kid` (or, when
    /// the token names none, the only key that fits), whose type and `alg` fit.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&Arc<Key>> {
        let fits =
            |k: &&Arc<Key>| k.key.fits(alg) && k.alg.as_deref().is_none_or(|a| a == alg.as_str());
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut it = self.keys.iter().filter(fits);
                let first = it.next()?;
                it.next().is_none().then_some(first)
            }
        }
    }
}

/// What the cache says about a key.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Use this key.
    Found(Arc<Key>),
    /// Fetch the JWKS now (no keys yet, the keys are stale, or the `kid` is unknown and the
    /// refetch floor has passed), then look again.
    Fetch,
    /// No such key, and the last fetch was too recent to fetch again.
    Unknown,
}

/// The JWKS cache as plain state; the caller fetches when told to.
#[derive(Debug, Clone)]
pub struct KeyCache {
    set: Option<KeySet>,
    fetched_at: Option<u64>,
    last_attempt: Option<u64>,
    floor: u64,
    max_age: u64,
}

impl KeyCache {
    /// An empty cache: at most one fetch per `floor` seconds for unknown keys, and keys older
    /// than `max_age` seconds fetched again.
    pub fn new(floor: u64, max_age: u64) -> Self {
        Self {
            set: None,
            fetched_at: None,
            last_attempt: None,
            floor,
            max_age,
        }
    }

    fn may_fetch(&self, now: u64) -> bool {
        self.last_attempt
            .is_none_or(|t| now.saturating_sub(t) >= self.floor || now < t)
    }

    /// Looks up the key for `kid` and `alg` at time `now`.
    pub fn lookup(&self, kid: Option<&str>, alg: Alg, now: u64) -> Lookup {
        let stale = self
            .fetched_at
            .is_none_or(|t| now.saturating_sub(t) >= self.max_age);
        match self.set.as_ref().and_then(|s| s.find(kid, alg)) {
            Some(_) if stale && self.may_fetch(now) => Lookup::Fetch,
            Some(k) => Lookup::Found(k.clone()),
            None if self.may_fetch(now) => Lookup::Fetch,
            None => Lookup::Unknown,
        }
    }

    /// Whether a key set was ever fetched.
    pub fn has_keys(&self) -> bool {
        self.set.is_some()
    }

    /// Records that a fetch was started at `now` (successful or not).
    pub fn attempted(&mut self, now: u64) {
        self.last_attempt = Some(now);
    }

    /// Stores a freshly fetched set.
    pub fn store(&mut self, set: KeySet, now: u64) {
        self.set = Some(set);
        self.fetched_at = Some(now);
        self.last_attempt = Some(now);
    }
}

/// base64url without padding (RFC 7515 §2).
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    /// A fixed P-256 key (scalar 1..32 repeated).
    pub fn signing_key(seed: u8) -> SigningKey {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed.wrapping_add(i as u8) | 1;
        }
        SigningKey::from_slice(&bytes).expect("a valid fixed scalar")
    }

    /// The public JWK of `key` with `kid`.
    pub fn public_jwk(key: &SigningKey, kid: &str) -> Value {
        let point = key.verifying_key().to_encoded_point(false);
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        })
    }

    fn set(keys: Vec<Value>) -> KeySet {
        KeySet::from_json(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn parses_public_keys_and_skips_the_rest() {
        let k = signing_key(1);
        let mut private = public_jwk(&k, "p");
        private["d"] = b64(k.to_bytes()).into();
        let mut enc = public_jwk(&k, "e");
        enc["use"] = "enc".into();
        let s = set(vec![
            public_jwk(&k, "a"),
            private,
            enc,
            serde_json::json!({"kty": "oct", "k": "AAAA", "kid": "s"}),
            serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "c"}),
            serde_json::json!("not a key"),
        ]);
        assert_eq!(s.len(), 1);
        assert!(s.find(Some("a"), Alg::Es256).is_some());
        assert!(s.find(Some("p"), Alg::Es256).is_none());
        assert!(
            s.find(Some("a"), Alg::Rs256).is_none(),
            "the key type decides"
        );
        assert!(
            s.find(None, Alg::Es256).is_some(),
            "the only key, when no kid"
        );
        assert_eq!(KeySet::from_json(b"[]").unwrap_err(), JwksError::Malformed);
        assert_eq!(KeySet::from_json(b"{").unwrap_err(), JwksError::Malformed);
    }

    #[test]
    fn no_kid_with_two_keys_is_ambiguous() {
        let s = set(vec![
            public_jwk(&signing_key(1), "a"),
            public_jwk(&signing_key(2), "b"),
        ]);
        assert!(s.find(None, Alg::Es256).is_none());
    }

    #[test]
    fn unknown_kid_refetches_at_most_once_per_floor() {
        let mut c = KeyCache::new(10, 3600);
        assert!(matches!(
            c.lookup(Some("a"), Alg::Es256, 100),
            Lookup::Fetch
        ));
        c.store(set(vec![public_jwk(&signing_key(1), "a")]), 100);
        assert!(matches!(
            c.lookup(Some("a"), Alg::Es256, 101),
            Lookup::Found(_)
        ));
        assert!(matches!(
            c.lookup(Some("b"), Alg::Es256, 105),
            Lookup::Unknown
        ));
        assert!(matches!(
            c.lookup(Some("b"), Alg::Es256, 110),
            Lookup::Fetch
        ));
        c.attempted(110);
        assert!(matches!(
            c.lookup(Some("b"), Alg::Es256, 115),
            Lookup::Unknown
        ));
        // Stale keys are fetched again, but still used while the floor holds.
        assert!(matches!(
            c.lookup(Some("a"), Alg::Es256, 3700),
            Lookup::Fetch
        ));
        c.attempted(3700);
        assert!(matches!(
            c.lookup(Some("a"), Alg::Es256, 3701),
            Lookup::Found(_)
        ));
    }
}
