//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3,
//! RFC 7636 §4.6). Checks that must not burn the code (client, redirect URI, resource: C3,
//! C5, R6) come before redemption; a PKCE failure burns it (P4); redemption is one atomic
//! transition (C1), and a replayed code revokes everything issued from it (C2). A code the
//! user approved for an agent (on-behalf-of, [`super::on_behalf_of`]) needs that agent's
//! `actor_token`, also checked before redemption; its tokens carry `act`.

use super::mint::{RefreshPolicy, TokenDecision};
use super::replay::{revoke_replayed, Replay};
use super::TokenRequest;
use crate::clients::Client;
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, Result};
use crate::store::repo::codes::CodeRow;
use crate::store::repo::{codes, grants, resources};

/// Redeems an authorization code and decides the tokens it yields.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<TokenDecision> {
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
    // On-behalf-of: a code the user approved for an agent is redeemed with that agent's own
    // token (checked before redemption: a refused actor does not burn the code).
    let bound_actor = grants::actor(db, &row.grant_id).await?;
    let act = super::on_behalf_of::check_actor(ctx, bound_actor.as_deref()).await?;
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
    let config = server.config();
    let mut decision = decide(
        row,
        client,
        ctx.dpop_jkt,
        now,
        config.access_token_ttl,
        config.refresh_token_ttl,
    );
    decision.act = act;
    Ok(decision)
}

/// The tokens a redeemed code yields: an access token for the code's user, scope and
/// resource within its grant, bound to the proof's key; and a refresh token starting the
/// grant's family when the client is registered for `refresh_token`, bound to the same key
/// for a public client (RFC 9449 §5).
pub fn decide(
    row: CodeRow,
    client: &Client,
    dpop_jkt: Option<&str>,
    now: i64,
    access_ttl: i64,
    refresh_ttl: i64,
) -> TokenDecision {
    let refresh = if client.allows_grant("refresh_token") {
        RefreshPolicy::Issue {
            expires_at: now + refresh_ttl,
            jkt: dpop_jkt.filter(|_| client.is_public()).map(str::to_owned),
        }
    } else {
        RefreshPolicy::None
    };
    TokenDecision {
        subject: row.subject,
        resource: row.resource.unwrap_or_default(),
        scope: row.scope,
        client_id: row.client_id,
        lifetime: access_ttl,
        dpop_jkt: dpop_jkt.map(str::to_owned),
        refresh,
        act: None,
        parent_jti: None,
        grant_id: Some(row.grant_id),
        auth_time: Some(row.auth_time),
        issued_token_type: None,
        not_after: None,
    }
}

/// C2: a code presented again revokes the grant and every token issued from it.
async fn replayed(
    server: &Context,
    grant_id: &str,
    client_id: &str,
    rid: Option<&crate::request::RequestId>,
) -> Error {
    let replay = Replay {
        action: "code.replay_detected",
        reason: "grant_revoked",
        description: "the authorization code has already been used",
    };
    revoke_replayed(server, grant_id, client_id, rid, replay).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::token::mint::test_values::client;

    fn row() -> CodeRow {
        CodeRow {
            code_hash: "h".into(),
            grant_id: "g1".into(),
            client_id: "c1".into(),
            redirect_uri: "https://app.example/cb".into(),
            subject: "u1".into(),
            scope: "mcp:tools".into(),
            resource: Some("https://mcp.example/mcp".into()),
            code_challenge: None,
            code_challenge_method: None,
            auth_time: 900,
            expires_at: 1_060,
            used_at: None,
            created_at: 1_000,
            redirect_uri_sent: true,
        }
    }

    #[test]
    fn code_yields_user_token_in_its_grant_with_a_new_family() {
        let c = client(
            "client_secret_basic",
            &["authorization_code", "refresh_token"],
        );
        let d = decide(row(), &c, None, 1_000, 900, 3_600);
        assert_eq!(d.subject, "u1");
        assert_eq!(d.resource, "https://mcp.example/mcp");
        assert_eq!(d.scope, "mcp:tools");
        assert_eq!(d.client_id, "c1");
        assert_eq!(d.lifetime, 900);
        assert_eq!(d.grant_id.as_deref(), Some("g1"));
        assert_eq!(d.auth_time, Some(900));
        assert_eq!(d.dpop_jkt, None);
        assert_eq!(d.act, None);
        assert_eq!(d.parent_jti, None);
        assert_eq!(
            d.refresh,
            RefreshPolicy::Issue {
                expires_at: 4_600,
                jkt: None
            }
        );
    }

    #[test]
    fn no_refresh_token_without_the_refresh_grant() {
        let c = client("client_secret_basic", &["authorization_code"]);
        let d = decide(row(), &c, Some("jkt"), 1_000, 900, 3_600);
        assert_eq!(d.refresh, RefreshPolicy::None);
        assert_eq!(d.dpop_jkt.as_deref(), Some("jkt"));
    }

    #[test]
    fn refresh_token_bound_to_the_proof_key_only_for_public_clients() {
        let public = client("none", &["authorization_code", "refresh_token"]);
        let d = decide(row(), &public, Some("jkt"), 1_000, 900, 3_600);
        assert_eq!(
            d.refresh,
            RefreshPolicy::Issue {
                expires_at: 4_600,
                jkt: Some("jkt".into())
            }
        );
        let confidential = client("private_key_jwt", &["authorization_code", "refresh_token"]);
        let d = decide(row(), &confidential, Some("jkt"), 1_000, 900, 3_600);
        assert_eq!(
            d.refresh,
            RefreshPolicy::Issue {
                expires_at: 4_600,
                jkt: None
            }
        );
        assert_eq!(d.dpop_jkt.as_deref(), Some("jkt"));
    }
}
