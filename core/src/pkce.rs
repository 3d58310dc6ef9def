//! PKCE (RFC 7636), S256 only. PLACEHOLDER signatures: bodies are being written.

use crate::error::Result;

/// Validates `code_challenge` / `code_challenge_method` at authorize (P1, P2, P5).
pub fn validate_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<()> {
    let _ = (challenge, method);
    unimplemented!()
}

/// Checks `verifier` against the stored challenge at the token endpoint (P3–P7);
/// errors are `invalid_grant` (or `invalid_request` for a malformed verifier).
pub fn verify(challenge: Option<&str>, method: Option<&str>, verifier: Option<&str>) -> Result<()> {
    let _ = (challenge, method, verifier);
    unimplemented!()
}
