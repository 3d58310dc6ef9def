//! The client credentials grant (RFC 6749 §4.4) for confidential machine clients the operator
//! trusts ([`crate::client_policy`], K1), within their rate limit and daily quota (K3): the
//! token's subject is the client itself, its audience the selected resource (RFC 8707). A
//! request without `scope` gets the client's registered default scopes (K5), never the whole
//! catalogue of the resource.

use super::issue::{self, AccessTokenSpec};
use super::{Issued, TokenRequest};
use crate::error::Result;

/// Exchanges client credentials for an access token.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    crate::client_policy::machine_grant(client, ctx.policy)?;
    let limits = crate::client_policy::limits(&server.config().machine_clients, ctx.policy);
    crate::client_policy::enforce_limits(server, &client.client_id, limits).await?;
    let resource = crate::resource::select(server, params.get("resource")).await?;
    let scopes = match params.get("scope") {
        Some(requested) => crate::resource::select_scopes(Some(requested), &resource, client)?,
        None => crate::resource::default_machine_scopes(&resource, client)?,
    };
    let scope = crate::scope::join(&scopes);
    let ttl = server.config().client_credentials_ttl;
    let (jwt, claims) = issue::access_token(
        server,
        &AccessTokenSpec {
            sub: &client.client_id,
            aud: &resource.uri,
            client_id: &client.client_id,
            scope: &scope,
            ttl,
            grant_id: None,
            auth_time: None,
            dpop_jkt: ctx.dpop_jkt,
            act: None,
            parent_jti: None,
        },
    )
    .await?;
    Ok(Issued {
        access_token: jwt,
        token_type: Issued::token_type_for(ctx.dpop_jkt),
        issued_token_type: None,
        expires_in: ttl,
        scope,
        refresh_token: None,
        subject: claims.sub,
        jti: claims.jti,
        resource: resource.uri,
    })
}
