//! The vend decision (RFC 8693 token exchange whose `resource` names an upstream provider):
//! which user's connection an MCP server may draw on, and with which scope. Plain functions
//! over the verified subject token, the authenticated client and the rows read; the token
//! endpoint performs the lookups and the refresh.

use super::provider::Provider;
use crate::access_token::AccessClaims;
use crate::clients::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::store::repo::resources::ResourceRow;

/// RFC 8693 §3 token type URI of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// What a vend request asks for, after the token endpoint parsed and verified it.
#[derive(Debug, Clone, Copy)]
pub struct VendRequest<'a> {
    /// The authenticated client asking (the MCP server).
    pub client: &'a Client,
    /// The verified subject token (the user's Portcullis access token).
    pub subject: &'a AccessClaims,
    /// The registered resource the subject token was issued for (its `aud`).
    pub subject_resource: &'a ResourceRow,
    /// The provider whose `resource` the request named.
    pub provider: &'a Provider,
    /// `requested_token_type`, if sent.
    pub requested_token_type: Option<&'a str>,
    /// `scope`, if sent.
    pub scope: Option<&'a str>,
}

/// Whose connection to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendPlan {
    /// The user (the subject token's `sub`).
    pub owner: String,
    /// The provider's name.
    pub provider: String,
    /// The scopes the MCP server needs (empty: whatever the connection holds).
    pub wanted: Vec<String>,
}

/// Checks who may vend what; `Ok` names the connection to draw on.
pub fn decide(r: &VendRequest<'_>) -> Result<VendPlan> {
    if r.client.is_public() {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            "only a confidential client (an MCP server) may obtain upstream tokens",
        ));
    }
    if let Some(t) = r.requested_token_type.filter(|t| *t != ACCESS_TOKEN_TYPE) {
        return Err(Error::invalid_request(format!(
            "requested_token_type must be {ACCESS_TOKEN_TYPE} for an upstream provider (got '{}')",
            crate::text::truncate(t, 80)
        )));
    }
    if !r.provider.vend_resources.contains(&r.subject.aud) {
        return Err(Error::invalid_target(format!(
            "tokens for '{}' cannot be exchanged for '{}' tokens",
            crate::text::truncate(&r.subject.aud, 200),
            r.provider.name
        )));
    }
    if !r
        .subject_resource
        .exchange_clients
        .contains(&r.client.client_id)
    {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            format!(
                "the client is not an exchange client of '{}'",
                crate::text::truncate(&r.subject.aud, 200)
            ),
        ));
    }
    let wanted: Vec<String> = r
        .scope
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // The provider's `scopes` bound what any MCP server may ask for.
    if let Some(outside) = wanted
        .iter()
        .find(|w| !r.provider.scopes.is_empty() && !r.provider.scopes.contains(w))
    {
        return Err(Error::invalid_scope(format!(
            "'{}' is not among the scopes provider '{}' vends ({})",
            crate::text::truncate(outside, 64),
            r.provider.name,
            r.provider.scopes.join(" ")
        )));
    }
    Ok(VendPlan {
        owner: r.subject.sub.clone(),
        provider: r.provider.name.clone(),
        wanted,
    })
}

/// The scope of the vended token: what the user granted upstream, refused when the MCP server
/// wants a scope the connection does not hold. Upstream tokens cannot be narrowed, so the
/// answer states the token's real scope.
pub fn granted_scope(held: &[String], wanted: &[String]) -> Result<String> {
    if let Some(missing) = wanted.iter().find(|w| !held.contains(w)) {
        return Err(Error::invalid_scope(format!(
            "the connection does not hold the scope '{}' (it holds '{}')",
            crate::text::truncate(missing, 64),
            held.join(" ")
        )));
    }
    Ok(held.join(" "))
}

#[cfg(test)]
mod tests {
    use super::super::provider::{validate, ProviderInput};
    use super::*;
    use crate::clients::{ClientKind, ClientMetadata};
    use crate::secret::Secret;

    const MCP: &str = "https://mcp.example.com/mcp";

    fn provider() -> Provider {
        validate(
            &ProviderInput {
                name: "github".into(),
                preset: Some("github".into()),
                client_id: "id".into(),
                client_secret: Some(Secret::new("s")),
                resource: "https://api.github.com".into(),
                vend_resources: vec![MCP.into()],
                ..Default::default()
            },
            false,
        )
        .unwrap()
    }

    fn client(method: &str) -> Client {
        Client {
            client_id: "mcp-server".into(),
            secret_hash: None,
            metadata: ClientMetadata {
                token_endpoint_auth_method: method.into(),
                ..Default::default()
            },
            kind: ClientKind::Static,
            last_used_at: None,
        }
    }

    fn claims(aud: &str) -> AccessClaims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://as", "sub": "alice", "aud": aud, "client_id": "agent",
            "scope": "mcp:tools", "jti": "j", "iat": 0, "nbf": 0, "exp": 10
        }))
        .unwrap()
    }

    fn resource(exchange: &[&str]) -> ResourceRow {
        ResourceRow {
            uri: MCP.into(),
            exchange_clients: exchange.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn run(
        c: &Client,
        sub: &AccessClaims,
        res: &ResourceRow,
        rtt: Option<&str>,
        scope: Option<&str>,
    ) -> Result<VendPlan> {
        let p = provider();
        decide(&VendRequest {
            client: c,
            subject: sub,
            subject_resource: res,
            provider: &p,
            requested_token_type: rtt,
            scope,
        })
    }

    #[test]
    fn an_exchange_client_of_a_vend_resource_draws_on_the_users_connection() {
        let plan = run(
            &client("client_secret_basic"),
            &claims(MCP),
            &resource(&["mcp-server"]),
            Some(ACCESS_TOKEN_TYPE),
            Some("repo"),
        )
        .unwrap();
        assert_eq!(plan.owner, "alice");
        assert_eq!(plan.provider, "github");
        assert_eq!(plan.wanted, ["repo"]);
    }

    #[test]
    fn refusals() {
        let ok_res = resource(&["mcp-server"]);
        let code = |r: Result<VendPlan>| r.unwrap_err().code;
        assert_eq!(
            code(run(&client("none"), &claims(MCP), &ok_res, None, None)),
            ErrorCode::UnauthorizedClient
        );
        assert_eq!(
            code(run(
                &client("client_secret_basic"),
                &claims("https://other/mcp"),
                &ok_res,
                None,
                None
            )),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            code(run(
                &client("client_secret_basic"),
                &claims(MCP),
                &resource(&["someone-else"]),
                None,
                None
            )),
            ErrorCode::UnauthorizedClient
        );
        assert_eq!(
            code(run(
                &client("client_secret_basic"),
                &claims(MCP),
                &ok_res,
                Some("urn:ietf:params:oauth:token-type:refresh_token"),
                None
            )),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a_provider_vends_only_its_own_scopes() {
        let mut p = provider();
        p.scopes = vec!["repo".into(), "read:user".into()];
        let (c, sub, res) = (
            client("client_secret_basic"),
            claims(MCP),
            resource(&["mcp-server"]),
        );
        let ask = |scope| {
            decide(&VendRequest {
                client: &c,
                subject: &sub,
                subject_resource: &res,
                provider: &p,
                requested_token_type: None,
                scope: Some(scope),
            })
        };
        assert_eq!(ask("repo").unwrap().wanted, ["repo"]);
        let refused = ask("repo admin:org").unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidScope);
        assert!(
            refused.description.contains("admin:org"),
            "{}",
            refused.description
        );
    }

    #[test]
    fn scope_is_what_the_user_granted_and_never_wider() {
        let held = vec!["repo".to_owned(), "gist".to_owned()];
        assert_eq!(granted_scope(&held, &[]).unwrap(), "repo gist");
        assert_eq!(granted_scope(&held, &["gist".into()]).unwrap(), "repo gist");
        assert_eq!(
            granted_scope(&held, &["admin:org".into()])
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
    }
}
