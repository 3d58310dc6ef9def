//! Workload identity federation (MCP ext-auth draft "Workload Identity Federation", SEP-1933;
//! RFC 7523 §3): which issuers are trusted to vouch for workloads (a GitHub Actions OIDC
//! issuer, a Kubernetes service-account issuer, a SPIFFE trust domain), where their keys come
//! from, which `aud` values their JWTs must carry, and how a rule's subject pattern matches a
//! workload's `sub`.
//!
//! Issuers are `https` URLs (plain `http` only on a loopback host, for tests), validated as
//! the enterprise IdPs' are ([`crate::idp::validate_issuer`]), or SPIFFE trust domains
//! (`spiffe://example.org`, SPIFFE JWT-SVID §3), which have no discovery document and so need
//! an inline JWK Set or a `jwks_uri`. Keys come from [`crate::idp::source_key`]: the inline
//! set, the `jwks_uri`, or OpenID Connect Discovery 1.0 §4 from the issuer, all through the
//! SSRF-checked, cached [`crate::remote`] fetcher under the workload cache kinds.

use serde_json::Value;

use crate::context::Context;
use crate::idp::{self, IdpConfigError, KeyError, KeySource};
use crate::remote::Kind;
use crate::store::repo::workloads::IssuerRow;

/// Longest subject pattern, bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Most `*` in one subject pattern.
pub const MAX_WILDCARDS: usize = 8;

/// Why a workload issuer or rule is refused. `Display` is told to the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadConfigError {
    #[error(transparent)]
    Issuer(#[from] IdpConfigError),
    #[error("a SPIFFE issuer must be spiffe://<trust domain> (lower-case letters, digits, '.', '-', '_'), without a path")]
    SpiffeTrustDomain,
    #[error("a SPIFFE issuer has no discovery document: give jwks or jwks_uri")]
    SpiffeNeedsKeys,
    #[error(
        "subject must be 1 to {MAX_PATTERN_LEN} bytes without whitespace or control characters"
    )]
    SubjectShape,
    #[error("subject may hold at most {MAX_WILDCARDS} '*'")]
    SubjectWildcards,
    #[error("subject '*' alone would admit every workload of the issuer: name at least a prefix")]
    SubjectAnything,
}

/// Checks a workload issuer identifier: an IdP-style `https` issuer, or `spiffe://` and a
/// trust domain. `has_keys` says whether the registration gives `jwks` or `jwks_uri`.
pub fn validate_issuer(issuer: &str, has_keys: bool) -> Result<(), WorkloadConfigError> {
    let Some(domain) = issuer.strip_prefix("spiffe://") else {
        return Ok(idp::validate_issuer(issuer)?);
    };
    let valid = !domain.is_empty()
        && domain.len() <= 255
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !valid {
        return Err(WorkloadConfigError::SpiffeTrustDomain);
    }
    if !has_keys {
        return Err(WorkloadConfigError::SpiffeNeedsKeys);
    }
    Ok(())
}

/// Checks a rule's subject pattern: bounded, no whitespace or control characters, at most
/// [`MAX_WILDCARDS`] `*`, and not only `*`s (a rule must name which workloads it admits).
pub fn validate_pattern(pattern: &str) -> Result<(), WorkloadConfigError> {
    if pattern.is_empty()
        || pattern.len() > MAX_PATTERN_LEN
        || pattern.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(WorkloadConfigError::SubjectShape);
    }
    if pattern.matches('*').count() > MAX_WILDCARDS {
        return Err(WorkloadConfigError::SubjectWildcards);
    }
    if pattern.chars().all(|c| c == '*') {
        return Err(WorkloadConfigError::SubjectAnything);
    }
    Ok(())
}

/// Whether `subject` matches `pattern`, where `*` stands for any run of characters
/// (possibly empty) and everything else matches itself exactly (case-sensitive). Greedy
/// matching with one backtrack point: linear in practice, at most O(n·m) (G4).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), subject.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// How specific a pattern is: the literal characters it pins (an exact subject beats any
/// pattern, a longer prefix beats a shorter one).
pub fn specificity(pattern: &str) -> (bool, usize) {
    (
        !pattern.contains('*'),
        pattern.len() - pattern.matches('*').count(),
    )
}

/// The `aud` values a workload JWT of `issuer` may carry: the issuer's configured audiences,
/// or (none configured) our token endpoint URL, as the extension requires.
pub fn accepted_audiences(ctx: &Context, issuer: &IssuerRow) -> Vec<String> {
    if issuer.audiences.is_empty() {
        vec![crate::paths::endpoint_url(ctx, crate::paths::TOKEN)]
    } else {
        issuer.audiences.clone()
    }
}

/// The public JWK of `issuer` for `kid`.
pub async fn key_for(
    ctx: &Context,
    issuer: &IssuerRow,
    kid: Option<&str>,
) -> Result<Value, KeyError> {
    let source = KeySource {
        issuer: &issuer.issuer,
        jwks: issuer.jwks.as_deref(),
        jwks_uri: issuer.jwks_uri.as_deref(),
        configuration: Kind::WorkloadConfiguration,
        set: Kind::WorkloadJwks,
    };
    idp::source_key(ctx, &source, kid).await
}

/// Forgets the cached documents of `issuer` (after its registration changed).
pub async fn forget(ctx: &Context, issuer: &str) {
    idp::forget_kinds(
        ctx,
        issuer,
        [Kind::WorkloadJwks, Kind::WorkloadConfiguration],
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_or_with_stars() {
        let cases = [
            (
                "repo:acme/app:ref:refs/heads/main",
                "repo:acme/app:ref:refs/heads/main",
                true,
            ),
            (
                "repo:acme/app:ref:refs/heads/main",
                "repo:acme/app:ref:refs/heads/mainx",
                false,
            ),
            ("repo:acme/app:*", "repo:acme/app:ref:refs/heads/main", true),
            (
                "repo:acme/app:*",
                "repo:acme/apps:ref:refs/heads/main",
                false,
            ),
            (
                "repo:acme/*:environment:prod",
                "repo:acme/api:environment:prod",
                true,
            ),
            (
                "repo:acme/*:environment:prod",
                "repo:acme/api:environment:staging",
                false,
            ),
            (
                "system:serviceaccount:agents:*",
                "system:serviceaccount:agents:router",
                true,
            ),
            (
                "system:serviceaccount:agents:*",
                "system:serviceaccount:default:router",
                false,
            ),
            (
                "spiffe://example.org/ns/*/sa/agent",
                "spiffe://example.org/ns/a/b/sa/agent",
                true,
            ),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("A*", "a", false),
        ];
        for (pattern, subject, want) in cases {
            assert_eq!(matches(pattern, subject), want, "{pattern} vs {subject}");
        }
    }

    #[test]
    fn g4_pathological_patterns_stay_fast() {
        let subject = "a".repeat(4096);
        let pattern = format!("{}b", "a*".repeat(MAX_WILDCARDS));
        assert!(!matches(&pattern, &subject));
    }

    #[test]
    fn exact_subjects_are_more_specific_than_patterns() {
        assert!(specificity("repo:acme/app:ref:x") > specificity("repo:acme/app:*"));
        assert!(specificity("repo:acme/app:*") > specificity("repo:acme/*"));
    }

    #[test]
    fn patterns_are_validated() {
        assert!(validate_pattern("repo:acme/*").is_ok());
        for bad in ["", "*", "**", "a b", "a\tb"] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate_pattern(&"*a".repeat(MAX_WILDCARDS + 1)),
            Err(WorkloadConfigError::SubjectWildcards)
        );
    }

    #[test]
    fn issuers_are_https_or_spiffe_trust_domains() {
        assert!(validate_issuer("https://token.actions.githubusercontent.com", false).is_ok());
        assert!(validate_issuer("spiffe://example.org", true).is_ok());
        assert_eq!(
            validate_issuer("spiffe://example.org", false),
            Err(WorkloadConfigError::SpiffeNeedsKeys)
        );
        for bad in [
            "spiffe://",
            "spiffe://Example.org",
            "spiffe://example.org/ns",
        ] {
            assert_eq!(
                validate_issuer(bad, true),
                Err(WorkloadConfigError::SpiffeTrustDomain),
                "{bad}"
            );
        }
        assert!(validate_issuer("http://issuer.example.com", true).is_err());
    }
}
