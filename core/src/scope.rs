//! Scope strings (RFC 6749 §3.3). PLACEHOLDER signatures: bodies are being written.

use crate::error::Result;

/// Parses a space-delimited scope string into distinct scope tokens, in order (G4).
pub fn parse(s: &str) -> Result<Vec<String>> {
    let _ = s;
    unimplemented!()
}

/// Joins scope tokens with single spaces.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// Whether every scope in `a` is in `b`.
pub fn is_subset(a: &[String], b: &[String]) -> bool {
    a.iter().all(|s| b.contains(s))
}
