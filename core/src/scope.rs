//! Scope strings (RFC 6749 §3.3): space-delimited tokens of `%x21 / %x23-5B / %x5D-7E`.
//! Parsing is linear in the input and checks the length before anything else, so huge
//! scope strings are refused quickly (SECURITY-CHECKLIST G4).

use crate::error::{Error, Result};

/// Longest scope string accepted, bytes (G4).
pub const MAX_SCOPE_BYTES: usize = 2048;
/// Most scope tokens accepted in one string (G4).
pub const MAX_SCOPES: usize = 64;

/// Whether `b` may appear in a scope token (RFC 6749 §3.3 `scope-token`).
fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Parses a space-delimited scope string into distinct scope tokens, in order (G4).
/// Repeated spaces are tolerated; any other separator or character outside the RFC 6749
/// set is `invalid_scope`, as are more than [`MAX_SCOPES`] tokens or more than
/// [`MAX_SCOPE_BYTES`] bytes. An empty or all-space string gives no scopes.
pub fn parse(s: &str) -> Result<Vec<String>> {
    if s.len() > MAX_SCOPE_BYTES {
        return Err(Error::invalid_scope(format!(
            "scope is longer than {MAX_SCOPE_BYTES} bytes"
        )));
    }
    if let Some(bad) = s.bytes().find(|&b| b != b' ' && !is_scope_char(b)) {
        return Err(Error::invalid_scope(if bad.is_ascii_graphic() {
            format!("scope contains the character '{}'", bad as char)
        } else {
            format!("scope contains the byte 0x{bad:02x}, which is not allowed")
        }));
    }
    let mut out: Vec<String> = Vec::new();
    for (count, token) in s.split(' ').filter(|t| !t.is_empty()).enumerate() {
        if count >= MAX_SCOPES {
            return Err(Error::invalid_scope(format!(
                "more than {MAX_SCOPES} scopes requested"
            )));
        }
        // At most MAX_SCOPES entries: the scan is bounded.
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// Joins scope tokens with single spaces.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// Whether every scope in `a` is in `b`.
pub fn is_subset(a: &[String], b: &[String]) -> bool {
    a.iter().all(|s| b.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_and_dedupes_in_order() {
        assert_eq!(
            parse("mcp:tools read mcp:tools write").unwrap(),
            v(&["mcp:tools", "read", "write"])
        );
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("   ").unwrap(), Vec::<String>::new());
        assert_eq!(parse(" a  b ").unwrap(), v(&["a", "b"]));
    }

    #[test]
    fn accepts_the_whole_rfc_character_set() {
        let all: String = (0x21u8..=0x7E)
            .filter(|&b| b != b'"' && b != b'\\')
            .map(char::from)
            .collect();
        assert_eq!(parse(&all).unwrap(), vec![all.clone()]);
    }

    #[test]
    fn refuses_characters_outside_the_rfc_set() {
        for bad in [
            "a\"b",
            "a\\b",
            "a\tb",
            "a\nb",
            "a\rb",
            "a\u{7f}",
            "caf\u{e9}",
            "a\u{0}b",
            "a\u{a0}b",
        ] {
            assert_eq!(
                parse(bad).unwrap_err().code,
                ErrorCode::InvalidScope,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn g4_scope_count_limited() {
        let ok: Vec<String> = (0..MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(parse(&ok.join(" ")).unwrap(), ok);
        let too_many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(
            parse(&too_many.join(" ")).unwrap_err().code,
            ErrorCode::InvalidScope
        );
        // Repeats count too: the limit bounds the work, not only the result.
        let repeated = vec!["a"; MAX_SCOPES + 1].join(" ");
        assert_eq!(parse(&repeated).unwrap_err().code, ErrorCode::InvalidScope);
    }

    #[test]
    fn g4_huge_scope_string_refused_by_length_first() {
        let exact = "a".repeat(MAX_SCOPE_BYTES);
        assert_eq!(parse(&exact).unwrap(), vec![exact.clone()]);
        // 10 MB of separators and tokens: refused on length before any splitting.
        let huge = "a ".repeat(5 * 1024 * 1024);
        let err = parse(&huge).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
        assert!(err.description.contains("longer"), "{}", err.description);
    }

    #[test]
    fn join_and_subset() {
        assert_eq!(join(&v(&["a", "b"])), "a b");
        assert!(is_subset(&v(&["a"]), &v(&["a", "b"])));
        assert!(!is_subset(&v(&["c"]), &v(&["a", "b"])));
    }
}
