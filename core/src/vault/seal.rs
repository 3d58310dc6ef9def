//! Upstream tokens at rest: AES-256-GCM under a key derived per connection with HKDF-SHA256
//! (RFC 5869) from the master key, `info` naming the owner, the provider and the connection,
//! and additional authenticated data naming the connection and the field, so a ciphertext
//! opens only in the row and column it was written for.
//!
//! Sealed form: the master key ring's ([`crate::crypto::master`]) `k{key id}.{nonce}.{ciphertext}`,
//! so after a master key rotation the re-encryption (`portcullis rekey`) can tell which key
//! sealed a value and re-seal it under the new one.

use crate::crypto::kek::{aes256gcm_open, aes256gcm_seal, derive_key};
use crate::crypto::master::{self, key_label, KeyRef, MasterKeyRing};
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

impl<'a> Binding<'a> {
    /// The binding of provider `name`'s client secret.
    pub fn provider_secret(name: &'a str) -> Self {
        Self {
            owner: "",
            provider: name,
            connection: "provider",
            field: "client_secret",
        }
    }

    /// The binding of OIDC connector `id`'s client secret.
    pub fn connector_secret(id: &'a str) -> Self {
        Self {
            owner: "",
            provider: id,
            connection: "connector",
            field: "client_secret",
        }
    }

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
    /// Sealed under a master key this server does not hold.
    #[error("the stored value was sealed under master key {0}, which is not configured")]
    UnknownKey(String),
    /// The key or the binding does not match (tampered, moved between rows, wrong key).
    #[error("the stored value does not authenticate")]
    Tampered,
}

/// Seals `plaintext` for `binding` under the current master key.
pub fn seal(ring: &MasterKeyRing, rng: &dyn Rng, binding: Binding<'_>, plaintext: &str) -> String {
    let (id, key) = ring.current();
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce);
    // AES-GCM encryption with a 32-byte key and a 12-byte nonce fails only past its 64 GiB
    // message limit, far beyond any token.
    let ct = aes256gcm_seal(
        &binding.key(key),
        &nonce,
        plaintext.as_bytes(),
        &binding.aad(),
    )
    .unwrap_or_default();
    master::format(id, &nonce, &ct)
}

/// Opens a value sealed by [`seal`] for the same binding, under whichever held master key
/// sealed it.
pub fn open(ring: &MasterKeyRing, binding: Binding<'_>, sealed: &str) -> Result<String, SealError> {
    let parsed = master::parse(sealed).ok_or(SealError::Malformed)?;
    let keys = master::candidates(ring, parsed.key);
    if keys.is_empty() {
        let label = match parsed.key {
            KeyRef::Id(id) => key_label(id),
            KeyRef::Unnamed => "v1".to_owned(),
        };
        return Err(SealError::UnknownKey(label));
    }
    for (_, key) in keys {
        let opened = aes256gcm_open(
            &binding.key(key),
            &parsed.nonce,
            &parsed.ciphertext,
            &binding.aad(),
        );
        if let Ok(plain) = opened {
            return String::from_utf8(plain).map_err(|_| SealError::Tampered);
        }
    }
    Err(SealError::Tampered)
}

/// What a declared upstream client (a vault provider, an OIDC connector) stores: its
/// declaration as JSON with the client secret left out, and the secret sealed apart under the
/// current sealing key, bound to the row by `binding` (an empty secret when it has none).
pub struct SealedDeclaration {
    /// The declaration without its secret.
    pub config: String,
    /// The sealed client secret.
    pub client_secret: String,
}

/// Seals `secret` and serialises `input` after `without_secret` cleared its secret field.
pub async fn seal_declaration<T: Clone + serde::Serialize>(
    ctx: &crate::context::Context,
    input: &T,
    without_secret: impl FnOnce(&mut T),
    secret: Option<&crate::secret::Secret>,
    binding: Binding<'_>,
) -> crate::error::Result<SealedDeclaration> {
    let keys = ctx.sealing_keys().await?;
    let plaintext = secret
        .map(crate::secret::Secret::expose)
        .unwrap_or_default();
    let client_secret = seal(&keys, ctx.env().rng.as_ref(), binding, plaintext);
    let mut public = input.clone();
    without_secret(&mut public);
    let config =
        serde_json::to_string(&public).map_err(|e| crate::error::Error::server(e.to_string()))?;
    Ok(SealedDeclaration {
        config,
        client_secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::master::key_id;
    use crate::runtime::SeededRng;

    const B: Binding<'static> = Binding {
        owner: "alice",
        provider: "github",
        connection: "conn-1",
        field: "access_token",
    };

    fn ring(current: &[u8], previous: &[&[u8]]) -> MasterKeyRing {
        MasterKeyRing::new(current, previous.iter().copied())
    }

    #[test]
    fn round_trip_and_no_clear_text() {
        let keys = ring(&[7; 32], &[]);
        let rng = SeededRng::new(1);
        let sealed = seal(&keys, &rng, B, "ghu_secret_token");
        assert!(!sealed.contains("ghu_secret_token"));
        assert!(sealed.starts_with(&key_label(key_id(&[7; 32]))), "{sealed}");
        assert_eq!(open(&keys, B, &sealed).unwrap(), "ghu_secret_token");
        assert_ne!(
            sealed,
            seal(&keys, &rng, B, "ghu_secret_token"),
            "fresh nonce"
        );
    }

    #[test]
    fn a_value_opens_only_in_its_own_row_and_field() {
        let keys = ring(&[7; 32], &[]);
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
            Binding::provider_secret("github"),
        ] {
            assert_eq!(open(&keys, other, &sealed), Err(SealError::Tampered));
        }
        assert_eq!(open(&keys, B, "v1.AAAA"), Err(SealError::Malformed));
        assert_eq!(open(&keys, B, "plain"), Err(SealError::Malformed));
    }

    #[test]
    fn rotation_opens_old_keys_and_seals_under_the_new_one() {
        let old = ring(&[7; 32], &[]);
        let sealed = seal(&old, &SeededRng::new(3), B, "t");
        let rotated = ring(&[9; 32], &[&[7; 32]]);
        assert_eq!(open(&rotated, B, &sealed).unwrap(), "t");
        assert!(!rotated.is_current(&sealed));
        let resealed = seal(&rotated, &SeededRng::new(4), B, "t");
        assert!(rotated.is_current(&resealed));
        let only_new = ring(&[9; 32], &[]);
        assert_eq!(
            open(&only_new, B, &sealed),
            Err(SealError::UnknownKey(key_label(key_id(&[7; 32]))))
        );
        assert_eq!(open(&only_new, B, &resealed).unwrap(), "t");
    }
}
