//! Client metadata (RFC 7591 §2, OAuth Client ID Metadata Document §4): the registered
//! properties of a client, as stored and as returned by registration.

use serde::{Deserialize, Serialize};

/// Registered client metadata (RFC 7591 §2), as stored and as returned by registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientMetadata {
    /// Exact redirect URIs (loopback ones match any port, R4).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// `code` only.
    #[serde(default)]
    pub response_types: Vec<String>,
    /// `none`, `client_secret_basic`, `client_secret_post`.
    #[serde(default)]
    pub token_endpoint_auth_method: String,
    /// Display name shown at consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo (not loaded by our pages: no third-party resources, H2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// Scope ceiling, space separated; `None` means any scope of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `web` or `native` (OIDC Registration §2).
    #[serde(default = "default_application_type")]
    pub application_type: String,
    /// Contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Software id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// Software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// RFC 9449 §5.2: the client only accepts DPoP-bound access tokens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// Public keys for `private_key_jwt` (RFC 7591 §2, a JWK Set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where to fetch the public keys for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

fn default_application_type() -> String {
    "web".into()
}
