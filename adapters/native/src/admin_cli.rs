//! Local administration for the CLI: each operation is a request to the core's admin API,
//! routed in-process with [`portcullis_core::admin::route_trusted`] (the same routes and
//! JSON as the admin listener, without the API key, for an operator who holds the database).

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use portcullis_core::{Portcullis, RequestId};
use serde_json::{json, Value};

/// One admin operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a user.
    UserAdd {
        /// Login name.
        username: String,
        /// Password (hashed by the core).
        password: String,
    },
    /// List users.
    UserList,
    /// Set a user's password (ends their sessions and grants).
    UserPassword {
        /// Login name.
        username: String,
        /// New password.
        password: String,
    },
    /// Disable or enable a user.
    UserDisabled {
        /// Login name.
        username: String,
        /// Disable (`true`) or enable.
        disabled: bool,
    },
    /// Set a client's policy.
    ClientPolicy {
        /// Client id.
        client_id: String,
        /// Allow `client_credentials`.
        client_credentials: bool,
        /// Requests per minute.
        rate_limit_per_minute: Option<i64>,
        /// Tokens per day.
        daily_token_quota: Option<i64>,
    },
    /// Suspend or resume a client.
    ClientSuspended {
        /// Client id.
        client_id: String,
        /// Suspend (`true`) or resume.
        suspended: bool,
    },
    /// Declare (create or replace) a vault provider: the admin API's JSON body.
    ProviderPut {
        /// The provider declaration (`POST /admin/providers`).
        body: Value,
    },
    /// List vault providers (secrets never shown).
    ProviderList,
    /// Delete a vault provider with its connections.
    ProviderDelete {
        /// Provider name.
        name: String,
    },
    /// Declare (create or replace) an OIDC connector: the admin API's JSON body.
    ConnectorPut {
        /// The connector declaration (`POST /admin/connectors`).
        body: Value,
    },
    /// List OIDC connectors (secrets never shown).
    ConnectorList,
    /// Delete an OIDC connector with its identity links.
    ConnectorDelete {
        /// Connector id.
        id: String,
    },
    /// Declare (create or replace) a trusted enterprise IdP: the admin API's JSON body.
    IdpPut {
        /// The IdP declaration (`POST /admin/idps`).
        body: Value,
    },
    /// List trusted IdPs.
    IdpList,
    /// Delete a trusted IdP with its policies and subject mappings.
    IdpDelete {
        /// Its issuer.
        issuer: String,
    },
    /// Declare (create or replace) a JWT bearer policy with its rules: the admin API's body.
    IdpPolicyPut {
        /// The policy (`POST /admin/idp-policies`).
        body: Value,
    },
    /// List JWT bearer policies.
    IdpPolicyList {
        /// Only this IdP's.
        issuer: Option<String>,
    },
    /// Delete a JWT bearer policy.
    IdpPolicyDelete {
        /// Policy id.
        id: String,
    },
    /// List external identities linked to users.
    IdentityList {
        /// Only this user's (username).
        user: Option<String>,
        /// Only this connector's.
        connector: Option<String>,
    },
    /// Unlink an external identity.
    IdentityUnlink {
        /// Connector id.
        connector: String,
        /// The IdP's subject.
        subject: String,
    },
    /// List vault connections.
    ConnectionList {
        /// Only this user's (user id).
        user: Option<String>,
        /// Only this provider's.
        provider: Option<String>,
    },
    /// Revoke a vault connection.
    ConnectionRevoke {
        /// Connection id.
        id: String,
    },
    /// Create or update a resource (RFC 8707) with its scope catalog.
    ResourceAdd {
        /// Resource URI.
        uri: String,
        /// Scope catalog.
        scopes: Vec<String>,
        /// Display name.
        name: Option<String>,
    },
    /// List resources.
    ResourceList,
    /// Create a static client; the response holds the secret once.
    ClientAdd {
        /// Chosen id (random when absent).
        client_id: Option<String>,
        /// `Some(true)`: confidential (`client_secret_basic`); `Some(false)`: public (`none`).
        confidential: Option<bool>,
        /// Redirect URIs.
        redirect_uris: Vec<String>,
        /// Grant types.
        grant_types: Vec<String>,
        /// Display name.
        name: Option<String>,
        /// Scope ceiling (space separated).
        scope: Option<String>,
    },
    /// List clients.
    ClientList,
    /// List audit events, newest first.
    AuditList {
        /// Page size.
        limit: Option<u32>,
        /// Only this action.
        action: Option<String>,
    },
    /// List signing keys.
    KeyList,
    /// Add a new signing key, optionally published ahead of signing.
    KeyRotate {
        /// Seconds of pre-publication (`None`: the configured default).
        prepublish_secs: Option<i64>,
    },
    /// Re-seal every value sealed under a previous master key under the current one.
    Rekey,
    /// Trust a workload issuer (or replace its keys and audiences).
    WorkloadIssuerPut {
        /// The issuer identifier.
        issuer: String,
        /// Where its JWK Set is (else OpenID Connect discovery).
        jwks_uri: Option<String>,
        /// Accepted `aud` values (empty: the token endpoint URL).
        audiences: Vec<String>,
    },
    /// List trusted workload issuers.
    WorkloadIssuerList,
    /// Stop trusting a workload issuer (its rules go too).
    WorkloadIssuerDelete {
        /// The issuer identifier.
        issuer: String,
    },
    /// Add (or replace) a workload rule.
    WorkloadRulePut {
        /// The workload issuer.
        issuer: String,
        /// The subject pattern (`*` for any run of characters).
        subject: String,
        /// The resource URI.
        resource: String,
        /// The client the tokens are issued to.
        client_id: String,
        /// The largest scope set granted.
        scopes: Vec<String>,
    },
    /// List workload rules.
    WorkloadRuleList {
        /// Only this issuer's.
        issuer: Option<String>,
    },
    /// Delete a workload rule.
    WorkloadRuleDelete {
        /// Rule id.
        id: String,
    },
}

impl Op {
    /// The admin API request for this operation: method, path with query, JSON body.
    pub fn request(&self) -> (Method, String, Option<Value>) {
        match self {
            Op::UserAdd { username, password } => (
                Method::POST,
                "/admin/users".into(),
                Some(json!({ "username": username, "password": password })),
            ),
            Op::UserList => (Method::GET, "/admin/users".into(), None),
            Op::UserPassword { username, password } => (
                Method::POST,
                format!("/admin/users/{}/password", segment(username)),
                Some(json!({ "password": password })),
            ),
            Op::UserDisabled { username, disabled } => (
                Method::POST,
                format!(
                    "/admin/users/{}/{}",
                    segment(username),
                    if *disabled { "disable" } else { "enable" }
                ),
                None,
            ),
            Op::ClientPolicy {
                client_id,
                client_credentials,
                rate_limit_per_minute,
                daily_token_quota,
            } => (
                Method::PUT,
                format!("/admin/clients/{}/policy", segment(client_id)),
                Some(json!({
                    "client_credentials": client_credentials,
                    "rate_limit_per_minute": rate_limit_per_minute,
                    "daily_token_quota": daily_token_quota,
                })),
            ),
            Op::ClientSuspended {
                client_id,
                suspended,
            } => (
                Method::POST,
                format!(
                    "/admin/clients/{}/{}",
                    segment(client_id),
                    if *suspended { "suspend" } else { "resume" }
                ),
                None,
            ),
            Op::ResourceAdd { uri, scopes, name } => {
                let mut body = json!({ "uri": uri, "scopes": scopes });
                if let Some(n) = name {
                    body["name"] = n.as_str().into();
                }
                (Method::POST, "/admin/resources".into(), Some(body))
            }
            Op::ResourceList => (Method::GET, "/admin/resources".into(), None),
            Op::ClientAdd {
                client_id,
                confidential,
                redirect_uris,
                grant_types,
                name,
                scope,
            } => {
                let mut body = json!({ "redirect_uris": redirect_uris });
                if !grant_types.is_empty() {
                    body["grant_types"] = json!(grant_types);
                }
                if let Some(id) = client_id {
                    body["client_id"] = id.as_str().into();
                }
                if let Some(c) = confidential {
                    body["token_endpoint_auth_method"] =
                        if *c { "client_secret_basic" } else { "none" }.into();
                }
                if let Some(n) = name {
                    body["client_name"] = n.as_str().into();
                }
                if let Some(s) = scope {
                    body["scope"] = s.as_str().into();
                }
                (Method::POST, "/admin/clients".into(), Some(body))
            }
            Op::ClientList => (Method::GET, "/admin/clients".into(), None),
            Op::AuditList { limit, action } => {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                if let Some(l) = limit {
                    q.append_pair("limit", &l.to_string());
                }
                if let Some(a) = action {
                    q.append_pair("action", a);
                }
                let q = q.finish();
                let path = if q.is_empty() {
                    "/admin/audit".into()
                } else {
                    format!("/admin/audit?{q}")
                };
                (Method::GET, path, None)
            }
            Op::ProviderPut { body } => {
                (Method::POST, "/admin/providers".into(), Some(body.clone()))
            }
            Op::ProviderList => (Method::GET, "/admin/providers".into(), None),
            Op::ProviderDelete { name } => (
                Method::DELETE,
                format!("/admin/providers/{}", segment(name)),
                None,
            ),
            Op::ConnectionList { user, provider } => {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                if let Some(u) = user {
                    q.append_pair("user", u);
                }
                if let Some(p) = provider {
                    q.append_pair("provider", p);
                }
                let q = q.finish();
                let path = if q.is_empty() {
                    "/admin/connections".into()
                } else {
                    format!("/admin/connections?{q}")
                };
                (Method::GET, path, None)
            }
            Op::ConnectorPut { body } => {
                (Method::POST, "/admin/connectors".into(), Some(body.clone()))
            }
            Op::ConnectorList => (Method::GET, "/admin/connectors".into(), None),
            Op::ConnectorDelete { id } => (
                Method::DELETE,
                format!("/admin/connectors/{}", segment(id)),
                None,
            ),
            Op::IdpPut { body } => (Method::POST, "/admin/idps".into(), Some(body.clone())),
            Op::IdpList => (Method::GET, "/admin/idps".into(), None),
            Op::IdpDelete { issuer } => (
                Method::DELETE,
                format!("/admin/idps?issuer={}", segment(issuer)),
                None,
            ),
            Op::IdpPolicyPut { body } => (
                Method::POST,
                "/admin/idp-policies".into(),
                Some(body.clone()),
            ),
            Op::IdpPolicyList { issuer } => match issuer {
                Some(i) => (
                    Method::GET,
                    format!("/admin/idp-policies?issuer={}", segment(i)),
                    None,
                ),
                None => (Method::GET, "/admin/idp-policies".into(), None),
            },
            Op::IdpPolicyDelete { id } => (
                Method::DELETE,
                format!("/admin/idp-policies/{}", segment(id)),
                None,
            ),
            Op::IdentityList { user, connector } => {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                if let Some(u) = user {
                    q.append_pair("user", u);
                }
                if let Some(c) = connector {
                    q.append_pair("connector", c);
                }
                let q = q.finish();
                let path = if q.is_empty() {
                    "/admin/identities".into()
                } else {
                    format!("/admin/identities?{q}")
                };
                (Method::GET, path, None)
            }
            Op::IdentityUnlink { connector, subject } => (
                Method::DELETE,
                format!(
                    "/admin/identities/{}/{}",
                    segment(connector),
                    segment(subject)
                ),
                None,
            ),
            Op::ConnectionRevoke { id } => (
                Method::DELETE,
                format!("/admin/connections/{}", segment(id)),
                None,
            ),
            Op::KeyList => (Method::GET, "/admin/keys".into(), None),
            Op::KeyRotate { prepublish_secs } => (
                Method::POST,
                "/admin/keys/rotate".into(),
                prepublish_secs.map(|n| serde_json::json!({ "prepublish_secs": n })),
            ),
            Op::Rekey => (Method::POST, "/admin/rekey".into(), None),
            Op::WorkloadIssuerPut {
                issuer,
                jwks_uri,
                audiences,
            } => {
                let mut body = json!({ "issuer": issuer, "audiences": audiences });
                if let Some(u) = jwks_uri {
                    body["jwks_uri"] = u.as_str().into();
                }
                (Method::POST, "/admin/workload-issuers".into(), Some(body))
            }
            Op::WorkloadIssuerList => (Method::GET, "/admin/workload-issuers".into(), None),
            Op::WorkloadIssuerDelete { issuer } => (
                Method::DELETE,
                format!("/admin/workload-issuers?issuer={}", segment(issuer)),
                None,
            ),
            Op::WorkloadRulePut {
                issuer,
                subject,
                resource,
                client_id,
                scopes,
            } => (
                Method::POST,
                "/admin/workload-rules".into(),
                Some(json!({
                    "issuer": issuer, "subject": subject, "resource": resource,
                    "client_id": client_id, "scopes": scopes,
                })),
            ),
            Op::WorkloadRuleList { issuer } => (
                Method::GET,
                match issuer {
                    Some(i) => format!("/admin/workload-rules?issuer={}", segment(i)),
                    None => "/admin/workload-rules".into(),
                },
                None,
            ),
            Op::WorkloadRuleDelete { id } => (
                Method::DELETE,
                format!("/admin/workload-rules/{}", segment(id)),
                None,
            ),
        }
    }
}

/// Percent-encodes a path segment (client ids may be URLs).
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Runs `op` against `server` in-process and returns the status and JSON answer.
pub async fn run(server: &Portcullis, op: &Op) -> anyhow::Result<(StatusCode, Value)> {
    let (method, path, body) = op.request();
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .extension(RequestId {
            id: format!("cli-{}", std::process::id()),
            trace_id: portcullis_core::host::trace::trace_id(
                &http::HeaderMap::new(),
                &crate::server::OsRng,
            ),
        });
    let bytes = match body {
        Some(v) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(&v)?)
        }
        None => Bytes::new(),
    };
    let resp = portcullis_core::admin::route_trusted(server, builder.body(bytes)?).await;
    let status = resp.status();
    let value = if resp.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(resp.body())
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(resp.body()).into()))
    };
    Ok((status, value))
}

#[cfg(test)]
#[path = "admin_cli_tests.rs"]
mod tests;
