//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3,
//! RFC 7636 §4.6). Checks that must not burn the code (client, redirect URI, resource: C3,
//! C5, R6) come before redemption; a PKCE failure burns it (P4); redemption is one atomic
//! transition (C1), and a replayed code revokes everything issued from it (C2).

use super::issue::{self, AccessTokenSpec};
use super::{Issued, TokenRequest};
use crate::audit::{self, Event};
use crate::crypto::token_hash;
use crate::error::{Error, Result};
use crate::server::Portcullis;
use crate::store::repo::{codes, grants, refresh, resources};

/// Redeems an authorization code.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    let db = server.env().sql.as_ref();
    let now = server.now();
    let code = params.require("code")?;
    let code_hash = token_hash(code);
    let Some((row, bound_jkt)) = codes::get_bound(db, &code_hash).await? else {
        return Err(Error::invalid_grant("the authorization code is invalid"));
    };
    if row.used_at.is_some() {
        return Err(replayed(server, &row.grant_id, &row.client_id, ctx.rid).await);
    }
    if now >= row.expires_at {
        return Err(Error::invalid_grant("the authorization code has expired"));
    }
    if row.client_id != client.client_id {
        // C3: another client's code. Not burned: the rightful client may still redeem it.
        return Err(Error::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    match params.get("redirect_uri") {
        Some(given) if given != row.redirect_uri => {
            return Err(Error::invalid_grant(
                "redirect_uri does not match the one used at the authorization endpoint",
            ));
        }
        // R9: named at authorize, so required here (RFC 6749 §4.1.3); the code is not burned.
        None if row.redirect_uri_sent => {
            return Err(Error::invalid_grant(
                "redirect_uri is required: the authorization request included it",
            ));
        }
        _ => {}
    }
    let resource = row.resource.clone().unwrap_or_default();
    if let Some(given) = params.get("resource") {
        if given != resource {
            return Err(Error::invalid_target(
                "resource does not match the one authorized",
            ));
        }
    }
    if resources::get(db, &resource).await?.is_none() {
        return Err(Error::invalid_target(
            "the resource is no longer registered",
        ));
    }
    // RFC 9449 §10: a code requested with `dpop_jkt` is redeemed only with that key's proof
    // (checked before redemption: a request without the key does not burn the code).
    crate::dpop::require_binding(
        server,
        bound_jkt.as_deref(),
        ctx.dpop_jkt,
        "authorization code",
        &client.client_id,
        ctx.rid,
    )
    .await?;
    if let Err(e) = crate::pkce::verify(
        row.code_challenge.as_deref(),
        row.code_challenge_method.as_deref(),
        params.get("code_verifier"),
    ) {
        // P4: a failed verifier burns the code.
        codes::redeem(db, &code_hash, now).await?;
        return Err(e);
    }
    if !codes::redeem(db, &code_hash, now).await? {
        // Lost a race with another redemption of the same code (C1): treat as replay.
        return Err(replayed(server, &row.grant_id, &row.client_id, ctx.rid).await);
    }
    if grants::get(db, &row.grant_id)
        .await?
        .is_none_or(|g| g.revoked_at.is_some())
    {
        return Err(Error::invalid_grant("the grant has been revoked"));
    }

    let ttl = server.config().access_token_ttl;
    let (jwt, claims) = issue::access_token(
        server,
        &AccessTokenSpec {
            sub: &row.subject,
            aud: &resource,
            client_id: &row.client_id,
            scope: &row.scope,
            ttl,
            grant_id: Some(&row.grant_id),
            auth_time: Some(row.auth_time),
            dpop_jkt: ctx.dpop_jkt,
            act: None,
            parent_jti: None,
        },
    )
    .await?;
    let refresh_token = if client.allows_grant("refresh_token") {
        let rt = issue::refresh_token(server);
        // RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
        let rt_jkt = ctx.dpop_jkt.filter(|_| client.is_public());
        refresh::insert_bound(
            db,
            &refresh::RefreshRow {
                token_hash: token_hash(&rt),
                grant_id: row.grant_id.clone(),
                client_id: row.client_id.clone(),
                subject: row.subject.clone(),
                scope: row.scope.clone(),
                resource: row.resource.clone(),
                expires_at: now + server.config().refresh_token_ttl,
                consumed_at: None,
                created_at: now,
            },
            rt_jkt,
        )
        .await?;
        Some(rt)
    } else {
        None
    };
    Ok(Issued {
        access_token: jwt,
        token_type: Issued::token_type_for(ctx.dpop_jkt),
        issued_token_type: None,
        expires_in: ttl,
        scope: row.scope,
        refresh_token,
        subject: claims.sub,
        jti: claims.jti,
        resource,
    })
}

/// C2: a code presented again revokes the grant and every token issued from it.
async fn replayed(
    server: &Portcullis,
    grant_id: &str,
    client_id: &str,
    rid: Option<&str>,
) -> Error {
    if let Err(e) = grants::revoke(server.env().sql.as_ref(), grant_id, server.now()).await {
        return e.into();
    }
    audit::record(
        server,
        Event {
            action: "code.replay_detected",
            success: false,
            client_id: Some(client_id),
            reason: Some("grant_revoked"),
            request_id: rid,
            ..Default::default()
        },
    )
    .await;
    Error::invalid_grant("the authorization code has already been used")
}
