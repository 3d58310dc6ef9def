//! The master key ring: the configured `master_key`, which seals, and the retired
//! `previous_master_keys`, which still open, each named by a key id (the first 32 bits of
//! SHA-256 over the key). A sealed value names the key that sealed it, so after a rotation the
//! re-encryption command (`portcullis rekey`, `POST /admin/rekey`) finds what to re-seal and
//! the retired key can then be removed.
//!
//! Sealed form (every value sealed under the master key): `k{id:08x}.{nonce}.{ciphertext}`
//! (base64url). Values from before the ring (`v1.{nonce}.{ciphertext}`, signing keys only)
//! name no key: each key of the ring is tried.

use sha2::{Digest, Sha256};

use super::{b64, b64_decode};

/// A key of the ring: its id and its bytes.
#[derive(Clone)]
struct MasterKey {
    id: u32,
    bytes: Vec<u8>,
}

/// The master keys this server holds: the current one first.
#[derive(Clone)]
pub struct MasterKeyRing {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| key_label(k.id)).collect();
        write!(f, "MasterKeyRing({})", ids.join(", "))
    }
}

/// The id of a master key.
pub fn key_id(key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(b"portcullis master key id\0")
        .chain_update(key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// How a key id is written (`k1a2b3c4d`).
pub fn key_label(id: u32) -> String {
    format!("k{id:08x}")
}

impl MasterKeyRing {
    /// The ring of `current` and the retired `previous` keys (duplicates of the current one
    /// are dropped).
    pub fn new<'a>(current: &[u8], previous: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut keys = vec![MasterKey {
            id: key_id(current),
            bytes: current.to_vec(),
        }];
        for bytes in previous {
            let id = key_id(bytes);
            if keys.iter().all(|k| k.id != id) {
                keys.push(MasterKey {
                    id,
                    bytes: bytes.to_vec(),
                });
            }
        }
        Self { keys }
    }

    /// The key new values are sealed under, with its id.
    pub fn current(&self) -> (u32, &[u8]) {
        let k = &self.keys[0];
        (k.id, &k.bytes)
    }

    /// The key with `id`, if held.
    pub fn get(&self, id: u32) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.bytes.as_slice())
    }

    /// Every key, the current one first.
    pub fn all(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.keys.iter().map(|k| (k.id, k.bytes.as_slice()))
    }

    /// Whether `sealed` was sealed under the current key (nothing to re-seal).
    pub fn is_current(&self, sealed: &str) -> bool {
        matches!(parse(sealed), Some(Sealed { key: KeyRef::Id(id), .. }) if id == self.current().0)
    }
}

/// Which key a sealed value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// The key with this id.
    Id(u32),
    /// A value from before the ring (`v1.`): any key of the ring may have sealed it.
    Unnamed,
}

/// A sealed value taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The key it names.
    pub key: KeyRef,
    /// The AES-GCM nonce.
    pub nonce: [u8; 12],
    /// The ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

/// Writes a sealed value.
pub fn format(id: u32, nonce: &[u8; 12], ciphertext: &[u8]) -> String {
    format!("{}.{}.{}", key_label(id), b64(nonce), b64(ciphertext))
}

/// Takes a sealed value apart; `None` when it is not in either sealed form.
pub fn parse(sealed: &str) -> Option<Sealed> {
    let mut parts = sealed.split('.');
    let key = match parts.next()? {
        "v1" => KeyRef::Unnamed,
        label => {
            let hex = label.strip_prefix('k').filter(|h| h.len() == 8)?;
            KeyRef::Id(u32::from_str_radix(hex, 16).ok()?)
        }
    };
    let nonce = parts.next().and_then(b64_decode)?.try_into().ok()?;
    let ciphertext = parts.next().and_then(b64_decode)?;
    if parts.next().is_some() {
        return None;
    }
    Some(Sealed {
        key,
        nonce,
        ciphertext,
    })
}

/// The keys that may open a value naming `key`: the one named, or every key for an unnamed
/// value.
pub fn candidates(ring: &MasterKeyRing, key: KeyRef) -> Vec<(u32, &[u8])> {
    match key {
        KeyRef::Id(id) => ring.get(id).map(|k| (id, k)).into_iter().collect(),
        KeyRef::Unnamed => ring.all().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_key_seals_and_previous_ones_are_held() {
        let ring = MasterKeyRing::new(b"new-master-key-0123", [&b"old-master-key-0123"[..]]);
        assert_eq!(ring.current().1, b"new-master-key-0123");
        let old = key_id(b"old-master-key-0123");
        assert_eq!(ring.get(old), Some(&b"old-master-key-0123"[..]));
        assert_ne!(old, ring.current().0);
        assert_eq!(ring.all().count(), 2);
        // The current key listed again as previous is not held twice.
        let same = MasterKeyRing::new(b"k-0123456789abcdef", [&b"k-0123456789abcdef"[..]]);
        assert_eq!(same.all().count(), 1);
        assert!(!format!("{ring:?}").contains("master-key"), "ids only");
    }

    #[test]
    fn sealed_values_round_trip_and_name_their_key() {
        let s = format(0x0102_0a0b, &[7; 12], b"ciphertext");
        assert!(s.starts_with("k01020a0b."), "{s}");
        let p = parse(&s).unwrap();
        assert_eq!(p.key, KeyRef::Id(0x0102_0a0b));
        assert_eq!(p.nonce, [7; 12]);
        assert_eq!(p.ciphertext, b"ciphertext");
        assert_eq!(parse(&s.replacen('k', "v1", 1)), None);
        let legacy = format!("v1.{}.{}", b64([1u8; 12]), b64(b"ct"));
        assert_eq!(parse(&legacy).unwrap().key, KeyRef::Unnamed);
        for bad in [
            "",
            "k1.AA.AA",
            "kzzzzzzzz.AA.AA",
            "v2.AAAAAAAAAAAAAAAA.AA",
            &format!("{s}.x"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn candidates_are_the_named_key_or_all_for_a_legacy_value() {
        let ring = MasterKeyRing::new(b"new-master-key-0123", [&b"old-master-key-0123"[..]]);
        let old = key_id(b"old-master-key-0123");
        assert_eq!(candidates(&ring, KeyRef::Id(old)).len(), 1);
        assert!(candidates(&ring, KeyRef::Id(old ^ 1)).is_empty());
        assert_eq!(candidates(&ring, KeyRef::Unnamed).len(), 2);
        let current = format(ring.current().0, &[0; 12], b"x");
        assert!(ring.is_current(&current));
        assert!(!ring.is_current(&format(old, &[0; 12], b"x")));
    }
}
