//! The grant types the token endpoint serves (RFC 6749 §4.1.3, §4.4, §6; RFC 8693 §2.1;
//! RFC 7523 §2.1), parsed once from the form's `grant_type` so dispatch is exhaustive.

use super::{JWT_BEARER, TOKEN_EXCHANGE};

/// A `grant_type` the token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code` (RFC 6749 §4.1.3).
    AuthorizationCode,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken,
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// Token exchange (RFC 8693 §2.1).
    TokenExchange,
    /// JWT bearer with an ID-JAG (RFC 7523 §2.1).
    JwtBearer,
}

impl GrantType {
    /// Every grant type, in the order they are advertised.
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
        GrantType::JwtBearer,
    ];

    /// The grant type named by a `grant_type` value (exact, case-sensitive), if served.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }

    /// The wire value, for audit events, errors and client registrations.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => TOKEN_EXCHANGE,
            GrantType::JwtBearer => JWT_BEARER,
        }
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_every_wire_value() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(
            GrantType::ALL.map(GrantType::as_str),
            super::super::GRANT_TYPES
        );
    }

    #[test]
    fn unknown_and_near_miss_values_are_not_grant_types() {
        for v in [
            "",
            "password",
            "implicit",
            "Authorization_Code",
            "refresh_token ",
        ] {
            assert_eq!(GrantType::parse(v), None, "{v:?}");
        }
    }
}
