//! User password hashing with argon2id (RFC 9106), PHC string format. Protocol code hashes
//! and verifies through the [`super::CryptoProvider`] methods `password_hash` and
//! `password_verify` (default: these functions, inline), so that a host with threads runs
//! this CPU- and memory-heavy work off its async workers (natively: a fixed pool of threads
//! that each reuse one working memory through [`hash_with_salt_in`] and [`verify_in`]).

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// One argon2 memory block (1 KiB); a hash with the default parameters needs 19,456 of them.
pub use argon2::Block;

use super::CryptoError;
use crate::runtime::Rng;

/// The argon2id cost of new password hashes (settings `login.password_memory_kib` and
/// `login.password_iterations`; one lane). A stored hash keeps the cost it was made with:
/// verification reads it from the PHC string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory, KiB (argon2's `m`).
    pub memory_kib: u32,
    /// Passes over that memory (argon2's `t`).
    pub iterations: u32,
}

impl Default for PasswordCost {
    /// OWASP's first argon2id recommendation: 19 MiB, two passes, one lane.
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
        }
    }
}

impl PasswordCost {
    fn params(self) -> Result<Params, CryptoError> {
        Params::new(self.memory_kib, self.iterations, 1, None)
            .map_err(|e| CryptoError(e.to_string()))
    }

    /// Whether argon2 accepts this cost (at least 8 KiB and one pass).
    pub fn is_valid(self) -> bool {
        self.params().is_ok()
    }

    /// A hash no password matches that takes as long to check as one made with this cost,
    /// for a username that does not exist (H4). Verification computes argon2 with the
    /// parameters the string names, so the salt and output need not come from a real hash.
    pub fn dummy_hash(self) -> String {
        format!(
            "$argon2id$v=19$m={},t={},p=1$c29tZXNhbHRzb21lc2FsdA$Vu7D2cP5YkEMHdnL4w6oCRoJ3DOGUyMWfn2SIPsygv8",
            self.memory_kib, self.iterations
        )
    }
}

/// Hashes `password` with argon2id at the default cost and a random salt.
pub fn hash(rng: &dyn Rng, password: &str) -> Result<String, CryptoError> {
    hash_with_salt(password, &new_salt(rng), PasswordCost::default())
}

/// A random 16-byte salt for [`hash_with_salt`].
pub fn new_salt(rng: &dyn Rng) -> [u8; 16] {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    salt
}

/// Hashes `password` with argon2id at `cost` and the given salt (from [`new_salt`]).
pub fn hash_with_salt(
    password: &str,
    salt: &[u8; 16],
    cost: PasswordCost,
) -> Result<String, CryptoError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| CryptoError(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params()?)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError(e.to_string()))
}

/// [`hash_with_salt`] computed in `memory` (grown to the size the parameters need and kept
/// by the caller for the next hash), so that a host can bound how much memory hashing holds.
/// Produces exactly the same PHC string.
pub fn hash_with_salt_in(
    password: &str,
    salt: &[u8; 16],
    cost: PasswordCost,
    memory: &mut Vec<Block>,
) -> Result<String, CryptoError> {
    let err = |e: &dyn std::fmt::Display| CryptoError(e.to_string());
    let salt_string = SaltString::encode_b64(salt).map_err(|e| err(&e))?;
    let params = cost.params()?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = compute_in(
        &argon2,
        &params,
        password,
        salt,
        Params::DEFAULT_OUTPUT_LEN,
        memory,
    )?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| err(&e))?,
        salt: Some(salt_string.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// [`verify`] computed in `memory` (see [`hash_with_salt_in`]).
pub fn verify_in(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let mut check = || -> Option<bool> {
        let stored = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(stored.algorithm).ok()?;
        let version = stored
            .version
            .map_or(Ok(Version::default()), Version::try_from)
            .ok()?;
        let params = Params::try_from(&stored).ok()?;
        let (salt, expected) = (stored.salt?, stored.hash?);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).ok()?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output = compute_in(
            &argon2,
            &params,
            password,
            salt_bytes,
            expected.len(),
            memory,
        )
        .ok()?;
        // `Output` compares in constant time.
        Some(output == expected)
    };
    check().unwrap_or(false)
}

/// The raw argon2 output of `len` bytes, computed in `memory`.
fn compute_in(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: &[u8],
    len: usize,
    memory: &mut Vec<Block>,
) -> Result<Output, CryptoError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Output::init_with(len, |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Password)
    })
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

/// [`PasswordCost::dummy_hash`] at the default cost.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vu7D2cP5YkEMHdnL4w6oCRoJ3DOGUyMWfn2SIPsygv8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SeededRng;

    /// The memory-reusing variants give the same PHC string and the same verdicts, with one
    /// buffer across calls.
    #[test]
    fn in_memory_variants_match() {
        let salt = new_salt(&SeededRng::new(5));
        let mut memory = Vec::new();
        let cost = PasswordCost::default();
        let h = hash_with_salt_in("correct horse", &salt, cost, &mut memory).unwrap();
        assert_eq!(h, hash_with_salt("correct horse", &salt, cost).unwrap());
        assert!(verify_in("correct horse", &h, &mut memory));
        assert!(!verify_in("wrong", &h, &mut memory));
        assert!(!verify_in("x", "not a hash", &mut memory));
        assert!(verify_in(
            "correct horse",
            &hash_with_salt("correct horse", &salt, cost).unwrap(),
            &mut memory
        ));
        assert!(!verify_in("nobody", DUMMY_HASH, &mut memory));
        assert_eq!(memory.len(), Params::default().block_count());
    }

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

    /// A configured cost is what new hashes carry and what verification spends; the dummy
    /// hash of a cost names the same parameters and matches no password.
    #[test]
    fn a_configured_cost_is_carried_by_the_hash_and_its_dummy() {
        let salt = new_salt(&SeededRng::new(9));
        let cheap = PasswordCost {
            memory_kib: 64,
            iterations: 3,
        };
        let mut memory = Vec::new();
        let h = hash_with_salt_in("correct horse", &salt, cheap, &mut memory).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=3,p=1$"), "{h}");
        assert_eq!(h, hash_with_salt("correct horse", &salt, cheap).unwrap());
        assert!(verify("correct horse", &h) && verify_in("correct horse", &h, &mut memory));
        let dummy = cheap.dummy_hash();
        assert!(dummy.starts_with("$argon2id$v=19$m=64,t=3,p=1$"), "{dummy}");
        assert!(!verify("correct horse", &dummy) && !verify_in("", &dummy, &mut memory));
        assert_eq!(PasswordCost::default().dummy_hash(), DUMMY_HASH);
        // argon2's own floor: 8 KiB, one pass.
        let too_small = PasswordCost {
            memory_kib: 7,
            iterations: 1,
        };
        assert!(!too_small.is_valid() && hash_with_salt("x", &salt, too_small).is_err());
        assert!(!PasswordCost {
            memory_kib: 8,
            iterations: 0
        }
        .is_valid());
        assert!(PasswordCost {
            memory_kib: 8,
            iterations: 1
        }
        .is_valid());
    }
}
