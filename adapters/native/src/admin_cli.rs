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
mod tests {
    use super::*;

    async fn server() -> (tempfile::TempDir, Portcullis) {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("a.db").display());
        let env = [("PORTCULLIS_DATABASE_URL".to_string(), db)];
        let settings = crate::config::load_from(None, &env).unwrap();
        let server = crate::server::start(&settings).await.unwrap();
        (dir, server)
    }

    #[test]
    fn audit_query_is_encoded() {
        let op = Op::AuditList {
            limit: Some(5),
            action: Some("token issued&x".into()),
        };
        assert_eq!(
            op.request().1,
            "/admin/audit?limit=5&action=token+issued%26x"
        );
        let none = Op::AuditList {
            limit: None,
            action: None,
        };
        assert_eq!(none.request().1, "/admin/audit");
    }

    #[tokio::test]
    async fn vault_providers_and_connections_from_the_cli() {
        let (_dir, server) = server().await;
        let body = json!({
            "name": "github", "preset": "github", "client_id": "Iv1.x",
            "client_secret": "cli-secret-value", "scopes": ["repo"],
            "resource": "https://api.github.com",
        });
        let (s, v) = run(&server, &Op::ProviderPut { body }).await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (_, list) = run(&server, &Op::ProviderList).await.unwrap();
        assert!(list.to_string().contains("github"), "{list}");
        assert!(!list.to_string().contains("cli-secret-value"), "{list}");
        let (s, v) = run(
            &server,
            &Op::ConnectionList {
                user: Some("nobody".into()),
                provider: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (s, v["connections"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0))
        );
        let (s, _) = run(
            &server,
            &Op::ConnectionRevoke {
                id: "missing".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = run(
            &server,
            &Op::ProviderDelete {
                name: "github".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn connectors_and_identities_from_the_cli() {
        let (_dir, server) = server().await;
        let body = json!({
            "id": "okta", "name": "Okta", "issuer": "https://acme.okta.com",
            "client_id": "0oa1", "client_secret": "cli-connector-secret",
        });
        let (s, v) = run(&server, &Op::ConnectorPut { body }).await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(v["redirect_uri"]
            .as_str()
            .unwrap()
            .ends_with("/oauth/connectors/okta/callback"));
        let (_, list) = run(&server, &Op::ConnectorList).await.unwrap();
        assert!(list.to_string().contains("okta"), "{list}");
        assert!(!list.to_string().contains("cli-connector-secret"), "{list}");
        let (s, v) = run(
            &server,
            &Op::IdentityList {
                user: None,
                connector: Some("okta".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (s, v["identities"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0))
        );
        let unlink = Op::IdentityUnlink {
            connector: "okta".into(),
            subject: "nobody".into(),
        };
        assert_eq!(
            run(&server, &unlink).await.unwrap().0,
            StatusCode::NOT_FOUND
        );
        let delete = Op::ConnectorDelete { id: "okta".into() };
        assert_eq!(
            run(&server, &delete).await.unwrap().0,
            StatusCode::NO_CONTENT
        );
    }

    #[tokio::test]
    async fn idps_and_policies_with_rules_from_the_cli() {
        let (_dir, server) = server().await;
        let issuer = "https://acme.okta.com";
        let (s, v) = run(
            &server,
            &Op::IdpPut {
                body: json!({ "issuer": issuer }),
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, _) = run(
            &server,
            &Op::ResourceAdd {
                uri: "https://mcp.example.com/mcp".into(),
                scopes: vec!["tools:read".into(), "tools:write".into()],
                name: None,
            },
        )
        .await
        .unwrap();
        assert!(s.is_success());
        let rule = json!({ "scopes": ["tools:write"], "groups": ["ops"],
                           "max_auth_age": 300, "acr_values": ["urn:mfa"] });
        let body = json!({
            "issuer": issuer, "client_id": "agent", "resource": "https://mcp.example.com/mcp",
            "scopes": ["tools:read", "tools:write"], "rules": [rule],
        });
        let (s, v) = run(&server, &Op::IdpPolicyPut { body }).await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["rules"][0]["groups_from"], json!("assertion"), "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let list = Op::IdpPolicyList {
            issuer: Some(issuer.into()),
        };
        let (_, v) = run(&server, &list).await.unwrap();
        assert_eq!(v["policies"][0]["rules"][0]["max_auth_age"], json!(300));
        let (_, idps) = run(&server, &Op::IdpList).await.unwrap();
        assert!(idps.to_string().contains(issuer), "{idps}");
        let delete = Op::IdpPolicyDelete { id };
        assert_eq!(
            run(&server, &delete).await.unwrap().0,
            StatusCode::NO_CONTENT
        );
        let delete = Op::IdpDelete {
            issuer: issuer.into(),
        };
        assert_eq!(
            run(&server, &delete).await.unwrap().0,
            StatusCode::NO_CONTENT
        );
    }

    #[tokio::test]
    async fn users_resources_clients_keys_roundtrip() {
        let (_dir, server) = server().await;
        let (s, v) = run(
            &server,
            &Op::UserAdd {
                username: "alice".into(),
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(!v.to_string().contains("correct horse"));
        let (_, users) = run(&server, &Op::UserList).await.unwrap();
        assert!(users.to_string().contains("alice"), "{users}");

        let (s, v) = run(
            &server,
            &Op::ResourceAdd {
                uri: "https://mcp.example.com/mcp".into(),
                scopes: vec!["mcp:tools".into(), "mcp:read".into()],
                name: Some("Example".into()),
            },
        )
        .await
        .unwrap();
        assert!(s.is_success(), "{v}");
        let (_, res) = run(&server, &Op::ResourceList).await.unwrap();
        assert!(res.to_string().contains("mcp:read"), "{res}");

        let (s, v) = run(
            &server,
            &Op::ClientAdd {
                client_id: Some("cli-test".into()),
                confidential: Some(true),
                redirect_uris: vec!["https://app.example.com/cb".into()],
                grant_types: vec![],
                name: Some("CLI test".into()),
                scope: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["client_id"], "cli-test");
        assert!(
            v["client_secret"].as_str().is_some_and(|s| s.len() >= 32),
            "{v}"
        );
        let (_, clients) = run(&server, &Op::ClientList).await.unwrap();
        assert!(clients.to_string().contains("cli-test"));
        assert!(!clients
            .to_string()
            .contains(v["client_secret"].as_str().unwrap()));

        let (s, v) = run(
            &server,
            &Op::ClientAdd {
                client_id: None,
                confidential: Some(false),
                redirect_uris: vec!["http://127.0.0.1/cb".into()],
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                name: None,
                scope: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(v.get("client_secret").is_none(), "{v}");

        let (_, before) = run(&server, &Op::KeyList).await.unwrap();
        let (s, _) = run(
            &server,
            &Op::KeyRotate {
                prepublish_secs: None,
            },
        )
        .await
        .unwrap();
        assert!(s.is_success());
        let (_, after) = run(&server, &Op::KeyList).await.unwrap();
        assert_ne!(before, after);
        let (s, pending) = run(
            &server,
            &Op::KeyRotate {
                prepublish_secs: Some(600),
            },
        )
        .await
        .unwrap();
        assert!(s.is_success(), "{pending}");
        assert_eq!(pending["status"], "pending", "{pending}");

        let (s, audit) = run(
            &server,
            &Op::AuditList {
                limit: Some(50),
                action: Some("admin.client.created".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::OK);
        assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");
    }

    #[tokio::test]
    async fn errors_come_back_as_status_and_json() {
        let (_dir, server) = server().await;
        let add = Op::UserAdd {
            username: "bob".into(),
            password: "another long password".into(),
        };
        run(&server, &add).await.unwrap();
        let (s, v) = run(&server, &add).await.unwrap();
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["error"], "conflict");
    }

    #[tokio::test]
    async fn users_and_client_policies_from_the_cli() {
        let (_dir, server) = server().await;
        let add = Op::UserAdd {
            username: "bob".into(),
            password: "first password".into(),
        };
        assert_eq!(run(&server, &add).await.unwrap().0, StatusCode::CREATED);
        for op in [
            Op::UserPassword {
                username: "bob".into(),
                password: "second password".into(),
            },
            Op::UserDisabled {
                username: "bob".into(),
                disabled: true,
            },
        ] {
            let (s, v) = run(&server, &op).await.unwrap();
            assert_eq!(s, StatusCode::NO_CONTENT, "{op:?}: {v}");
        }
        let (_, users) = run(&server, &Op::UserList).await.unwrap();
        assert_eq!(users["users"][0]["disabled"], json!(true), "{users}");
        let (s, _) = run(
            &server,
            &Op::UserDisabled {
                username: "nobody".into(),
                disabled: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::NOT_FOUND);

        let id = "https://agent.example.com/client.json";
        let (s, v) = run(
            &server,
            &Op::ClientPolicy {
                client_id: id.into(),
                client_credentials: true,
                rate_limit_per_minute: Some(30),
                daily_token_quota: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["client_id"], json!(id));
        assert_eq!(v["effective_rate_limit_per_minute"], json!(30));
        let suspend = Op::ClientSuspended {
            client_id: id.into(),
            suspended: true,
        };
        assert_eq!(
            run(&server, &suspend).await.unwrap().0,
            StatusCode::NO_CONTENT
        );
        let (s, v) = run(
            &server,
            &Op::ClientPolicy {
                client_id: "no-such-client".into(),
                client_credentials: true,
                rate_limit_per_minute: Some(-1),
                daily_token_quota: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
}
