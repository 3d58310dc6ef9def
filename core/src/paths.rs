//! Endpoint paths relative to the issuer. They live below the routers so protocol modules
//! (DPoP `htu` checks, client assertion audiences) can name them without importing
//! [`crate::endpoints`].

use crate::context::Context;

/// Authorization endpoint.
pub const AUTHORIZE: &str = "/oauth/authorize";
/// Login form target.
pub const LOGIN: &str = "/oauth/login";
/// Consent form target.
pub const CONSENT: &str = "/oauth/consent";
/// Logout.
pub const LOGOUT: &str = "/logout";
/// Token endpoint.
pub const TOKEN: &str = "/oauth/token";
/// Registration endpoint.
pub const REGISTER: &str = "/oauth/register";
/// Revocation endpoint.
pub const REVOKE: &str = "/oauth/revoke";
/// Introspection endpoint.
pub const INTROSPECT: &str = "/oauth/introspect";
/// Vault: connect a provider (`/connect/{provider}`, `/connect/{provider}/callback`).
pub const CONNECT: &str = "/connect";
/// Vault: the signed-in user's connections.
pub const CONNECTIONS: &str = "/connections";
/// Federation: OIDC connectors (`/oauth/connectors/{id}/start`, `…/callback`).
pub const CONNECTORS: &str = "/oauth/connectors";
/// JWK Set.
pub const JWKS: &str = "/.well-known/jwks.json";

/// The absolute URL of an endpoint.
pub fn endpoint_url(ctx: &Context, path: &str) -> String {
    format!("{}{}", ctx.issuer(), path)
}

/// The well-known URL of a resource's metadata (path-inserted, RFC 9728 §3.1).
pub fn protected_resource_metadata_url(resource_uri: &str) -> Option<String> {
    let u = url::Url::parse(resource_uri).ok()?;
    let path = u.path().trim_end_matches('/');
    Some(format!(
        "{}/.well-known/oauth-protected-resource{}",
        u.origin().ascii_serialization(),
        path
    ))
}
