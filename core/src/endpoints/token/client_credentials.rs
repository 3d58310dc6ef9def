//! The client credentials grant (RFC 6749 §4.4) for confidential machine clients: the token's
//! subject is the client itself, its audience the selected resource (RFC 8707).

use super::issue::{self, AccessTokenSpec};
use super::{Issued, TokenRequest};
use crate::error::{Error, ErrorCode, Result};

/// Exchanges client credentials for an access token.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    if client.is_public() {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use the client_credentials grant",
        ));
    }
    let resource = crate::resource::select(server, params.get("resource")).await?;
    let scopes = crate::resource::select_scopes(params.get("scope"), &resource, client)?;
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
