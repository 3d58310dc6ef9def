//! User password hashing with argon2id (RFC 9106), PHC string format. Protocol code hashes
//! and verifies through the [`super::CryptoProvider`] methods `password_hash` and
//! `password_verify` (default: these functions, inline), so that a host with threads runs
//! this CPU- and memory-heavy work off its async workers (natively: `spawn_blocking`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::CryptoError;
use crate::runtime::Rng;

/// Hashes `password` with argon2id and a random salt.
pub fn hash(rng: &dyn Rng, password: &str) -> Result<String, CryptoError> {
    hash_with_salt(password, &new_salt(rng))
}

/// A random 16-byte salt for [`hash_with_salt`].
pub fn new_salt(rng: &dyn Rng) -> [u8; 16] {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    salt
}

/// Hashes `password` with argon2id and the given salt (from [`new_salt`]).
pub fn hash_with_salt(password: &str, salt: &[u8; 16]) -> Result<String, CryptoError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| CryptoError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError(e.to_string()))
}

/// Checks `password` against a stored PHC hash (constant time inside argon2).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A fixed hash used to spend the same time when the user does not exist (H4).
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vu7D2cP5YkEMHdnL4w6oCRoJ3DOGUyMWfn2SIPsygv8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SeededRng;

    #[test]
    fn hash_and_verify() {
        let rng = SeededRng::new(3);
        let h = hash(&rng, "correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
