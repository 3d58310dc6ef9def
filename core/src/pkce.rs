//! PKCE (RFC 7636 §4), `S256` only (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1): the challenge is
//! checked at the authorization endpoint and the verifier at the token endpoint.
//!
//! Error choice at the token endpoint: every verifier failure, including a verifier that
//! breaks the RFC 7636 §4.1 ABNF, is `invalid_grant`. The grant cannot succeed with such a
//! verifier, and one error code keeps the token endpoint's rule simple: a PKCE failure
//! burns the code (SECURITY-CHECKLIST P4).

use crate::crypto::{b64, b64_decode, ct_eq, sha256};
use crate::error::{Error, Result};

/// The only supported method.
pub const S256: &str = "S256";
/// Shortest challenge or verifier (RFC 7636 §4.1).
pub const MIN_LEN: usize = 43;
/// Longest challenge or verifier (RFC 7636 §4.1).
pub const MAX_LEN: usize = 128;

/// Whether `s` is 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1 ABNF).
pub fn is_valid_verifier(s: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&s.len()) && s.bytes().all(is_unreserved)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    b64(sha256(verifier.as_bytes()))
}

/// Validates `code_challenge` / `code_challenge_method` at authorize (P1, P2, P5).
/// Errors are `invalid_request`.
pub fn validate_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<()> {
    let challenge = challenge.ok_or_else(|| {
        Error::invalid_request("code_challenge is required (PKCE with S256, RFC 7636)")
    })?;
    match method {
        None => {
            return Err(Error::invalid_request(
                "code_challenge_method is required and must be S256",
            ))
        }
        Some(S256) => {}
        Some(_) => {
            return Err(Error::invalid_request(
                "code_challenge_method must be S256 (plain and other methods are not supported)",
            ))
        }
    }
    if !(MIN_LEN..=MAX_LEN).contains(&challenge.len()) {
        return Err(Error::invalid_request(
            "code_challenge must be 43 to 128 characters",
        ));
    }
    if !challenge.bytes().all(is_unreserved) {
        return Err(Error::invalid_request(
            "code_challenge contains characters outside [A-Za-z0-9-._~]",
        ));
    }
    // An S256 challenge is the unpadded base64url of a 32-byte digest: exactly 43 characters
    // that decode (canonically) to 32 bytes.
    if challenge.len() != MIN_LEN || b64_decode(challenge).is_none_or(|d| d.len() != 32) {
        return Err(Error::invalid_request(
            "code_challenge must be the base64url-encoded SHA-256 of the verifier (43 characters)",
        ));
    }
    Ok(())
}

/// Checks `verifier` against the stored challenge at the token endpoint (P3–P7); every
/// failure is `invalid_grant` (see the module documentation).
///
/// A code stored without a challenge never verifies: PKCE is mandatory, so such a code
/// can only come from corrupt state or a downgrade attempt (P3), and fails closed.
pub fn verify(challenge: Option<&str>, method: Option<&str>, verifier: Option<&str>) -> Result<()> {
    let Some(challenge) = challenge else {
        return Err(Error::invalid_grant(if verifier.is_some() {
            "code_verifier sent for an authorization code issued without a code_challenge"
        } else {
            "the authorization code was issued without PKCE"
        }));
    };
    // P6: anything but exactly S256 in storage fails closed.
    if method != Some(S256) {
        return Err(Error::invalid_grant(
            "the authorization code has an unsupported PKCE method",
        ));
    }
    let verifier =
        verifier.ok_or_else(|| Error::invalid_grant("code_verifier is required (PKCE)"))?;
    if !is_valid_verifier(verifier) {
        return Err(Error::invalid_grant(
            "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
        ));
    }
    // P7: constant-time comparison.
    if !ct_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes()) {
        return Err(Error::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code(r: Result<()>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        validate_challenge(Some(CHALLENGE), Some("S256")).unwrap();
        verify(Some(CHALLENGE), Some("S256"), Some(VERIFIER)).unwrap();
    }

    #[test]
    fn p1_missing_challenge_is_invalid_request() {
        assert_eq!(
            code(validate_challenge(None, Some("S256"))),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(validate_challenge(None, None)),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn p2_plain_missing_or_unknown_method_refused() {
        for m in [
            None,
            Some("plain"),
            Some("S512"),
            Some("s256"),
            Some(""),
            Some("S256 "),
        ] {
            assert_eq!(
                code(validate_challenge(Some(CHALLENGE), m)),
                ErrorCode::InvalidRequest,
                "{m:?}"
            );
        }
    }

    #[test]
    fn p2_plain_challenge_equal_to_verifier_refused() {
        // A `plain` style challenge of verifier length is not an S256 output.
        let plain = "a".repeat(64);
        assert_eq!(
            code(validate_challenge(Some(&plain), Some("S256"))),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn p3_downgrade_refused() {
        assert_eq!(
            code(verify(None, None, Some(VERIFIER))),
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            code(verify(None, Some("S256"), Some(VERIFIER))),
            ErrorCode::InvalidGrant
        );
        // And a code without PKCE is never redeemable at all.
        assert_eq!(code(verify(None, None, None)), ErrorCode::InvalidGrant);
    }

    #[test]
    fn p4_missing_verifier_is_invalid_grant() {
        assert_eq!(
            code(verify(Some(CHALLENGE), Some("S256"), None)),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn p4_wrong_verifier_is_invalid_grant() {
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXa";
        assert_eq!(
            code(verify(Some(CHALLENGE), Some("S256"), Some(wrong))),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn p4_case_changed_verifier_is_invalid_grant() {
        let upper = VERIFIER.to_ascii_uppercase();
        let lower = VERIFIER.to_ascii_lowercase();
        for v in [upper.as_str(), lower.as_str()] {
            assert_eq!(
                code(verify(Some(CHALLENGE), Some("S256"), Some(v))),
                ErrorCode::InvalidGrant
            );
        }
    }

    #[test]
    fn p4_verifier_equal_to_challenge_is_invalid_grant() {
        // A client replaying the challenge as if it were `plain`.
        assert_eq!(
            code(verify(Some(CHALLENGE), Some("S256"), Some(CHALLENGE))),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn p5_verifier_abnf() {
        let ok43 = "a".repeat(43);
        let ok128 = "A1-._~".repeat(21) + "ab";
        assert!(is_valid_verifier(&ok43));
        assert_eq!(ok128.len(), 128);
        assert!(is_valid_verifier(&ok128));
        for bad in [
            "a".repeat(42),
            "a".repeat(129),
            String::new(),
            format!("{}+", "a".repeat(42)),
            format!("{}/", "a".repeat(42)),
            format!("{}=", "a".repeat(42)),
            format!("{} ", "a".repeat(42)),
            format!("{}%41", "a".repeat(40)),
            format!("{}\u{e9}", "a".repeat(42)),
        ] {
            assert!(!is_valid_verifier(&bad), "{bad:?}");
            let challenge = s256_challenge(&bad);
            assert_eq!(
                code(verify(Some(&challenge), Some("S256"), Some(&bad))),
                ErrorCode::InvalidGrant,
                "{bad:?}"
            );
        }
        // A valid 128-character verifier round-trips.
        verify(Some(&s256_challenge(&ok128)), Some("S256"), Some(&ok128)).unwrap();
    }

    #[test]
    fn p5_challenge_abnf() {
        for bad in [
            "a".repeat(42),
            "a".repeat(129),
            "a".repeat(44),
            format!("{}+", &CHALLENGE[..42]),
            format!("{}/", &CHALLENGE[..42]),
            format!("{}=", &CHALLENGE[..42]),
            format!("{}.", &CHALLENGE[..42]),
            // Non-canonical trailing bits: not the encoding of any 32-byte digest.
            format!("{}N", &CHALLENGE[..42]),
        ] {
            assert_eq!(
                code(validate_challenge(Some(&bad), Some("S256"))),
                ErrorCode::InvalidRequest,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn p6_corrupt_stored_method_fails_closed() {
        for m in [
            None,
            Some("plain"),
            Some("s256"),
            Some(""),
            Some("S512"),
            Some("S256\0"),
        ] {
            assert_eq!(
                code(verify(Some(CHALLENGE), m, Some(VERIFIER))),
                ErrorCode::InvalidGrant,
                "{m:?}"
            );
        }
        // A corrupt stored challenge never matches.
        assert_eq!(
            code(verify(Some(""), Some("S256"), Some(VERIFIER))),
            ErrorCode::InvalidGrant
        );
    }

    #[test]
    fn p7_comparison_uses_ct_eq() {
        // The comparison is `crypto::ct_eq` over the encoded digest; a challenge differing
        // only in length (a prefix) must fail rather than compare equal on a short read.
        assert_eq!(
            code(verify(Some(&CHALLENGE[..42]), Some("S256"), Some(VERIFIER))),
            ErrorCode::InvalidGrant
        );
        assert!(ct_eq(
            s256_challenge(VERIFIER).as_bytes(),
            CHALLENGE.as_bytes()
        ));
    }
}
