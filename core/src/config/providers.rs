//! `[[providers]]`: upstream providers of the token vault declared in the configuration (the
//! same shape as `POST /admin/providers`; checked and stored by `crate::vault::providers`).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A provider as declared by an operator (config seed or admin API). `client_secret` is
/// write-only: it is sealed at rest and never returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// URL-safe name, used in `/connect/{name}`.
    pub name: String,
    /// `github`, `slack`, `linear`, `atlassian`; absent for a generic OAuth 2.0 provider.
    #[serde(default)]
    pub preset: Option<String>,
    /// The provider's authorization endpoint (a preset supplies it).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// The provider's token endpoint (a preset supplies it).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret at the provider (write-only).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    /// Scopes asked for when a user connects.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The identifier an MCP server names when it asks for this provider's token.
    pub resource: String,
    /// MCP server resources whose user tokens may be exchanged for this provider's token.
    #[serde(default)]
    pub vend_resources: Vec<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}
