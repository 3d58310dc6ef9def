//! `[[connectors]]`: OIDC connectors declared in the configuration (the same shape as
//! `POST /admin/connectors`; checked and stored by `crate::federation`).

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Which claims hold what; OIDC Core §5.1 names by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimNames {
    /// The stable identifier (default `sub`; never an email, which can be reassigned).
    pub subject: String,
    /// The name shown to the person (default `preferred_username`).
    pub username: String,
    /// The email address (default `email`).
    pub email: String,
    /// The groups (default `groups`).
    pub groups: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            groups: "groups".into(),
        }
    }
}

/// A connector as declared by an operator. `client_secret` is write-only: sealed at rest and
/// never returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorInput {
    /// URL-safe id, in `/oauth/connectors/{id}/callback`.
    pub id: String,
    /// Shown on the sign-in page ("Sign in with {name}").
    pub name: String,
    /// The IdP's issuer identifier (its discovery document is under it).
    pub issuer: String,
    /// Our client id at the IdP.
    pub client_id: String,
    /// Our client secret at the IdP (write-only).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// Scopes asked for (`openid` is always added); default `openid email profile`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claim names.
    #[serde(default)]
    pub claims: ClaimNames,
    /// Whether to read the UserInfo endpoint (OIDC Core §5.3) after the ID token.
    #[serde(default)]
    pub userinfo: bool,
    /// When non-empty, only people in one of these groups may sign in.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// When non-empty, only people with a verified email in one of these domains may sign in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Email domains the operator owns for this connector: a first login with a verified
    /// email in one of them links the local account whose username is that email. Empty by
    /// default: never link by email.
    #[serde(default)]
    pub link_by_email_domains: Vec<String>,
}

/// One row of the declared table mapping IdP groups to the scopes a person may consent to at
/// a resource (`[[group_scopes]]`). A resource named in any row is group-gated: a person gets
/// only the scopes the rows for their groups (from their linked identities) grant there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupScopes {
    /// The resource (RFC 8707 URI).
    pub resource: String,
    /// The group, as the connector's groups claim names it.
    pub group: String,
    /// Scopes members may consent to there.
    pub scopes: Vec<String>,
}
