//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1): `Bearer` (RFC 6750 §3) and `DPoP`
//! (RFC 9449 §7.1), with `resource_metadata` (RFC 9728 §5.1), `scope`, `error`,
//! `error_description` and `algs`. Every value is a quoted-string (RFC 9110 §5.6.4) with `"`
//! and `\` escaped; characters RFC 6750 §3 does not allow in these values are replaced, so a
//! value can never break out of its parameter.

use crate::claims::Scheme;

/// One challenge: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme.
    pub scheme: Scheme,
    /// Parameters, in order.
    pub params: Vec<(&'static str, String)>,
}

/// A quoted-string holding `value`: `"` and `\` escaped, anything outside printable ASCII
/// (and space) replaced with `?`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

impl Challenge {
    /// A challenge with no parameters yet.
    pub fn new(scheme: Scheme) -> Self {
        Self {
            scheme,
            params: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }
}

impl std::fmt::Display for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.scheme.as_str())?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{name}={}", quote(value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_escaped() {
        let c = Challenge::new(Scheme::Bearer)
            .param(
                "resource_metadata",
                "https://m.example/.well-known/oauth-protected-resource/mcp",
            )
            .param("scope", "mcp:read mcp:write")
            .param("error_description", "bad \"token\"\\ \r\nX-Injected: 1 é");
        assert_eq!(
            c.to_string(),
            "Bearer resource_metadata=\"https://m.example/.well-known/oauth-protected-resource/mcp\", \
             scope=\"mcp:read mcp:write\", error_description=\"bad \\\"token\\\"\\\\ ??X-Injected: 1 ?\""
        );
        assert_eq!(
            Challenge::new(Scheme::DPoP)
                .param("algs", "ES256")
                .to_string(),
            "DPoP algs=\"ES256\""
        );
        assert_eq!(Challenge::new(Scheme::Bearer).to_string(), "Bearer");
    }
}
