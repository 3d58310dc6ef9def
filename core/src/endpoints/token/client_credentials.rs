//! The client credentials grant (RFC 6749 §4.4) for confidential machine clients the operator
//! trusts ([`crate::client_policy`], K1), within their rate limit and daily quota (K3): the
//! token's subject is the client itself, its audience the selected resource (RFC 8707). A
//! request without `scope` gets the client's registered default scopes (K5), never the whole
//! catalogue of the resource.

use super::mint::{RefreshPolicy, TokenDecision};
use super::TokenRequest;
use crate::clients::Client;
use crate::error::Result;
use crate::store::repo::resources::ResourceRow;

/// Checks the client's machine policy and limits, and decides its token.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<TokenDecision> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    crate::client_policy::machine_grant(client, ctx.policy)?;
    let limits = crate::client_policy::limits(&server.config().machine_clients, ctx.policy);
    crate::client_policy::enforce_limits(server, &client.client_id, limits).await?;
    let resource = crate::resource::select(server, params.get("resource")).await?;
    decide(
        client,
        &resource,
        params.get("scope"),
        ctx.dpop_jkt,
        server.config().client_credentials_ttl,
    )
}

/// The machine token: subject and client are the client, the audience the resource, the
/// scope the requested one (within catalog and ceiling) or the client's defaults (K5); no
/// grant and no refresh token (RFC 6749 §4.4.3).
pub fn decide(
    client: &Client,
    resource: &ResourceRow,
    requested_scope: Option<&str>,
    dpop_jkt: Option<&str>,
    ttl: i64,
) -> Result<TokenDecision> {
    let scopes = match requested_scope {
        Some(requested) => crate::resource::select_scopes(Some(requested), resource, client)?,
        None => crate::resource::default_machine_scopes(resource, client)?,
    };
    Ok(TokenDecision {
        subject: client.client_id.clone(),
        resource: resource.uri.clone(),
        scope: crate::scope::join(&scopes),
        client_id: client.client_id.clone(),
        lifetime: ttl,
        dpop_jkt: dpop_jkt.map(str::to_owned),
        refresh: RefreshPolicy::None,
        act: None,
        parent_jti: None,
        grant_id: None,
        auth_time: None,
        issued_token_type: None,
        not_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::token::mint::test_values::{client, resource};
    use crate::error::ErrorCode;

    #[test]
    fn machine_token_is_the_clients_own_without_refresh() {
        let c = client("client_secret_basic", &["client_credentials"]);
        let r = resource("https://mcp.example/mcp", &["a", "b"]);
        let d = decide(&c, &r, Some("b"), Some("k"), 3_600).unwrap();
        assert_eq!(d.subject, "c1");
        assert_eq!(d.client_id, "c1");
        assert_eq!(d.resource, "https://mcp.example/mcp");
        assert_eq!(d.scope, "b");
        assert_eq!(d.lifetime, 3_600);
        assert_eq!(d.dpop_jkt.as_deref(), Some("k"));
        assert_eq!(d.refresh, RefreshPolicy::None);
        assert_eq!(d.grant_id, None);
        assert_eq!(d.auth_time, None);
    }

    #[test]
    fn k5_default_scopes_are_the_registered_ones_the_resource_offers() {
        let mut c = client("client_secret_basic", &["client_credentials"]);
        let r = resource("https://mcp.example/mcp", &["a", "b"]);
        assert_eq!(
            decide(&c, &r, None, None, 60).unwrap_err().code,
            ErrorCode::InvalidScope
        );
        c.metadata.scope = Some("b z".into());
        assert_eq!(decide(&c, &r, None, None, 60).unwrap().scope, "b");
        assert_eq!(
            decide(&c, &r, Some("a"), None, 60).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }
}
