//! Federation: people sign in through their organisation's OpenID Connect provider (Okta,
//! Entra ID, Google, Auth0, Keycloak, any OIDC IdP) via connectors declared by the operator,
//! instead of (or next to) local passwords. OpenID Connect Core 1.0 §3.1 (authorization code
//! flow, with PKCE per RFC 7636 and RFC 9700 §2.1.1), Discovery 1.0 §4; each external login
//! is an identity `(connector, subject)` linked to one local user, never matched by email
//! unless the operator declared the email's domain as owned for that connector.

pub mod connector;
pub mod connectors;
pub mod groups;
pub mod login;
pub mod oidc;
