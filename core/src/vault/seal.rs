//! Upstream tokens at rest: AES-256-GCM under a key derived per connection with HKDF-SHA256
//! (RFC 5869) from a versioned master key, `info` naming the owner, the provider and the
//! connection, and additional authenticated data naming the connection and the field, so a
//! ciphertext opens only in the row and column it was written for.
//!
//! Sealed form: `v{version}.{nonce}.{ciphertext}` (base64url), so a master key rotation can
//! tell which key sealed a value and re-seal it under the new one.

use crate::crypto::kek::{aes256gcm_open, aes256gcm_seal, derive_key};
use crate::crypto::{b64, b64_decode};
use crate::runtime::Rng;

/// Which connection (and which of its fields) a value belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The user the connection belongs to.
    pub owner: &'a str,
    /// The provider's name.
    pub provider: &'a str,
    /// The connection id.
    pub connection: &'a str,
    /// `access_token` or `refresh_token`.
    pub field: &'a str,
}

impl Binding<'_> {
    fn key(&self, master: &[u8]) -> [u8; 32] {
        // NUL cannot occur in the parts (ids and names are URL-safe, owners are usernames
        // without control characters), so the info string is unambiguous.
        derive_key(
            master,
            &format!(
                "vault-connection v1\0{}\0{}\0{}",
                self.owner, self.provider, self.connection
            ),
        )
    }

    fn aad(&self) -> Vec<u8> {
        format!("{}\0{}", self.connection, self.field).into_bytes()
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not in the sealed form.
    #[error("the stored value is not a sealed token")]
    Malformed,
    /// Sealed under a master key version this server does not hold.
    #[error("the stored value was sealed under master key version {0}, which is not configured")]
    UnknownVersion(u32),
    /// The key or the binding does not match (tampered, moved between rows, wrong key).
    #[error("the stored value does not authenticate")]
    Tampered,
}

/// The master keys by version: the current one seals, every listed one opens.
pub trait MasterKeys {
    /// The version new values are sealed under and its key.
    fn current(&self) -> (u32, &[u8]);
    /// The key of `version`, if held.
    fn get(&self, version: u32) -> Option<&[u8]>;
}

/// Seals `plaintext` for `binding` under the current master key.
pub fn seal(keys: &dyn MasterKeys, rng: &dyn Rng, binding: Binding<'_>, plaintext: &str) -> String {
    let (version, master) = keys.current();
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce);
    // AES-GCM encryption with a 32-byte key and a 12-byte nonce fails only past its 64 GiB
    // message limit, far beyond any token.
    let ct = aes256gcm_seal(
        &binding.key(master),
        &nonce,
        plaintext.as_bytes(),
        &binding.aad(),
    )
    .unwrap_or_default();
    format!("v{version}.{}.{}", b64(nonce), b64(&ct))
}

/// The master key version a sealed value names.
pub fn version_of(sealed: &str) -> Option<u32> {
    sealed.strip_prefix('v')?.split('.').next()?.parse().ok()
}

/// Opens a value sealed by [`seal`] for the same binding.
pub fn open(
    keys: &dyn MasterKeys,
    binding: Binding<'_>,
    sealed: &str,
) -> Result<String, SealError> {
    let mut parts = sealed.split('.');
    let (Some(v), Some(nonce), Some(ct), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SealError::Malformed);
    };
    let version: u32 = v
        .strip_prefix('v')
        .and_then(|n| n.parse().ok())
        .ok_or(SealError::Malformed)?;
    let master = keys
        .get(version)
        .ok_or(SealError::UnknownVersion(version))?;
    let nonce: [u8; 12] = b64_decode(nonce)
        .and_then(|n| n.try_into().ok())
        .ok_or(SealError::Malformed)?;
    let ct = b64_decode(ct).ok_or(SealError::Malformed)?;
    let plain = aes256gcm_open(&binding.key(master), &nonce, &ct, &binding.aad())
        .map_err(|_| SealError::Tampered)?;
    String::from_utf8(plain).map_err(|_| SealError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SeededRng;

    struct Keys(Vec<(u32, Vec<u8>)>);

    impl MasterKeys for Keys {
        fn current(&self) -> (u32, &[u8]) {
            let (v, k) = self.0.last().unwrap();
            (*v, k)
        }
        fn get(&self, version: u32) -> Option<&[u8]> {
            self.0
                .iter()
                .find(|(v, _)| *v == version)
                .map(|(_, k)| k.as_slice())
        }
    }

    const B: Binding<'static> = Binding {
        owner: "alice",
        provider: "github",
        connection: "conn-1",
        field: "access_token",
    };

    #[test]
    fn round_trip_and_no_clear_text() {
        let keys = Keys(vec![(1, vec![7; 32])]);
        let rng = SeededRng::new(1);
        let sealed = seal(&keys, &rng, B, "ghu_secret_token");
        assert!(!sealed.contains("ghu_secret_token"));
        assert_eq!(version_of(&sealed), Some(1));
        assert_eq!(open(&keys, B, &sealed).unwrap(), "ghu_secret_token");
        assert_ne!(
            sealed,
            seal(&keys, &rng, B, "ghu_secret_token"),
            "fresh nonce"
        );
    }

    #[test]
    fn a_value_opens_only_in_its_own_row_and_field() {
        let keys = Keys(vec![(1, vec![7; 32])]);
        let sealed = seal(&keys, &SeededRng::new(2), B, "t");
        for other in [
            Binding {
                field: "refresh_token",
                ..B
            },
            Binding {
                connection: "conn-2",
                ..B
            },
            Binding {
                owner: "mallory",
                ..B
            },
            Binding {
                provider: "slack",
                ..B
            },
        ] {
            assert_eq!(open(&keys, other, &sealed), Err(SealError::Tampered));
        }
        assert_eq!(open(&keys, B, "v1.AAAA"), Err(SealError::Malformed));
        assert_eq!(open(&keys, B, "plain"), Err(SealError::Malformed));
    }

    #[test]
    fn rotation_opens_old_versions_and_seals_under_the_new_one() {
        let old = Keys(vec![(1, vec![7; 32])]);
        let sealed = seal(&old, &SeededRng::new(3), B, "t");
        let rotated = Keys(vec![(1, vec![7; 32]), (2, vec![9; 32])]);
        assert_eq!(open(&rotated, B, &sealed).unwrap(), "t");
        let resealed = seal(&rotated, &SeededRng::new(4), B, "t");
        assert_eq!(version_of(&resealed), Some(2));
        let only_new = Keys(vec![(2, vec![9; 32])]);
        assert_eq!(
            open(&only_new, B, &sealed),
            Err(SealError::UnknownVersion(1))
        );
    }
}
