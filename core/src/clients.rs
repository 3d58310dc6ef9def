//! The client model shared by stored clients (static, seeded, RFC 7591 dynamic) and client ID
//! metadata document clients, and [`resolve`], which finds a client by id wherever it lives.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::server::Portcullis;
use crate::store::repo;

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

/// Where a client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Created by an admin (API, CLI or config seed).
    Static,
    /// Registered through RFC 7591.
    Dynamic,
    /// A URL-shaped `client_id` whose metadata document was fetched.
    MetadataDocument,
}

/// A client, wherever it is registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// The client id.
    pub client_id: String,
    /// Hash of the secret, for confidential clients.
    pub secret_hash: Option<String>,
    /// Metadata.
    pub metadata: ClientMetadata,
    /// Provenance.
    pub kind: ClientKind,
}

impl Client {
    /// Whether the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant_type)
    }

    /// Whether the client is public (`token_endpoint_auth_method: none`).
    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == "none"
    }

    /// The name shown to users (the id when it registered none).
    pub fn display_name(&self) -> &str {
        self.metadata
            .client_name
            .as_deref()
            .unwrap_or(&self.client_id)
    }
}

impl From<repo::clients::ClientRow> for Client {
    fn from(r: repo::clients::ClientRow) -> Self {
        let kind = if r.source == "dynamic" {
            ClientKind::Dynamic
        } else {
            ClientKind::Static
        };
        Self {
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            metadata: r.metadata,
            kind,
        }
    }
}

/// Finds a client: stored clients first, then (for URL-shaped ids, when enabled) the client
/// ID metadata document. `Ok(None)` means unknown; a failed document fetch is an error that
/// says so (S7), not "unknown client".
pub async fn resolve(server: &Portcullis, client_id: &str) -> Result<Option<Client>> {
    if client_id.is_empty() || client_id.len() > 2048 {
        return Ok(None);
    }
    if let Some(row) = repo::clients::get(server.env().sql.as_ref(), client_id).await? {
        return Ok(Some(row.into()));
    }
    if crate::cimd::is_metadata_document_id(client_id) {
        if !server.config().cimd.enabled {
            return Ok(None);
        }
        return crate::cimd::fetch_client(server, client_id).await.map(Some);
    }
    Ok(None)
}
