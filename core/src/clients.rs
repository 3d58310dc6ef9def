//! The client model shared by stored clients (static, seeded, RFC 7591 dynamic) and client ID
//! metadata document clients; [`crate::client_lookup::resolve`] finds one by id.

pub use crate::client_metadata::ClientMetadata;
use crate::store::repo;

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

impl ClientKind {
    /// The `client_registration` claim of this client's access tokens: how the agent came to
    /// be known here (`static`: created by an operator; `dynamic`: RFC 7591; `metadata_document`:
    /// a client ID metadata document).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }
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
    /// When a stored client last obtained a token (coarse, see
    /// [`repo::clients::LAST_USED_GRANULARITY`]); `None` for metadata document clients.
    pub last_used_at: Option<i64>,
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
            last_used_at: r.last_used_at,
        }
    }
}
