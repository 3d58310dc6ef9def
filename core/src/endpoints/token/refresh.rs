//! The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14.2): rotation on every
//! use (F1) by one atomic transition (F3); a consumed token presented again revokes its whole
//! family (F2); another client's token is refused without touching it (F5); scope only
//! narrows (F4); the resource is re-validated and expiry enforced (F6). Storage failures are
//! 503, never `invalid_grant` or a revocation (F7).

use super::issue::{self, AccessTokenSpec};
use super::{Issued, TokenRequest};
use crate::audit::{self, Event};
use crate::crypto::token_hash;
use crate::error::{Error, Result};
use crate::server::Portcullis;
use crate::store::repo::{grants, refresh, resources};

/// Rotates a refresh token and issues a new access token.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    let db = server.env().sql.as_ref();
    let now = server.now();
    let presented = params.require("refresh_token")?;
    let hash = token_hash(presented);
    let Some((row, bound_jkt)) = refresh::get_bound(db, &hash).await? else {
        return Err(Error::invalid_grant("the refresh token is invalid"));
    };
    if row.client_id != client.client_id {
        return Err(Error::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.consumed_at.is_some() {
        return Err(reuse(server, &row.grant_id, &row.client_id, ctx.rid).await);
    }
    if now >= row.expires_at {
        return Err(Error::invalid_grant("the refresh token has expired"));
    }
    // RFC 9449 §5 (D3): a public client's bound refresh token needs a proof with its key.
    crate::dpop::require_binding(
        server,
        bound_jkt.as_deref(),
        ctx.dpop_jkt,
        "refresh token",
        &client.client_id,
        ctx.rid,
    )
    .await?;
    let grant = grants::get(db, &row.grant_id).await?;
    if grant.as_ref().is_none_or(|g| g.revoked_at.is_some()) {
        return Err(Error::invalid_grant("the grant has been revoked"));
    }
    let resource_uri = row.resource.clone().unwrap_or_default();
    if let Some(given) = params.get("resource") {
        if given != resource_uri {
            return Err(Error::invalid_target(
                "resource does not match the one authorized",
            ));
        }
    }
    let Some(resource) = resources::get(db, &resource_uri).await? else {
        return Err(Error::invalid_target(
            "the resource is no longer registered",
        ));
    };
    let current = crate::scope::parse(&row.scope).unwrap_or_default();
    let scopes = match params.get("scope") {
        Some(s) => {
            let wanted = crate::scope::parse(s)?;
            if !crate::scope::is_subset(&wanted, &current) {
                return Err(Error::invalid_scope(
                    "a refresh can only keep or narrow the granted scope",
                ));
            }
            wanted
        }
        None => current,
    };
    // Scopes removed from the resource's catalog since the grant are dropped.
    let scopes: Vec<String> = scopes
        .into_iter()
        .filter(|s| resource.scopes.contains(s))
        .collect();
    let scope = crate::scope::join(&scopes);

    if !refresh::consume(db, &hash, &client.client_id, now).await? {
        // Someone else consumed it between our read and now (F3): reuse.
        return Err(reuse(server, &row.grant_id, &row.client_id, ctx.rid).await);
    }
    let new_token = issue::refresh_token(server);
    // The new token keeps the binding of the one it replaces.
    refresh::insert_bound(
        db,
        &refresh::RefreshRow {
            token_hash: token_hash(&new_token),
            grant_id: row.grant_id.clone(),
            client_id: row.client_id.clone(),
            subject: row.subject.clone(),
            scope: scope.clone(),
            resource: row.resource.clone(),
            expires_at: row.expires_at,
            consumed_at: None,
            created_at: now,
        },
        bound_jkt.as_deref(),
    )
    .await?;
    let ttl = server.config().access_token_ttl;
    let (jwt, claims) = issue::access_token(
        server,
        &AccessTokenSpec {
            sub: &row.subject,
            aud: &resource.uri,
            client_id: &row.client_id,
            scope: &scope,
            ttl,
            grant_id: Some(&row.grant_id),
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
        refresh_token: Some(new_token),
        subject: claims.sub,
        jti: claims.jti,
        resource: resource.uri,
    })
}

/// F2: reuse of a consumed refresh token revokes the family.
async fn reuse(server: &Portcullis, grant_id: &str, client_id: &str, rid: Option<&str>) -> Error {
    if let Err(e) = grants::revoke(server.env().sql.as_ref(), grant_id, server.now()).await {
        return e.into();
    }
    audit::record(
        server,
        Event {
            action: "refresh.reuse_detected",
            success: false,
            client_id: Some(client_id),
            reason: Some("family_revoked"),
            request_id: rid,
            ..Default::default()
        },
    )
    .await;
    Error::invalid_grant("the refresh token has already been used; its grant is revoked")
}
