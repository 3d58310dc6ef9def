//! Grant type identifiers on the wire (RFC 6749 §4, RFC 8693 §2.1, RFC 7523 §2.1). Client
//! registration validates against them and the token endpoint dispatches on them;
//! `crate::endpoints::token` re-exports them.

/// RFC 8693 token exchange grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 JWT bearer grant type (used with ID-JAG assertions).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Every grant type the endpoint serves.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
    JWT_BEARER,
];
