//! The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14.2): rotation on every
//! use (F1) by one transaction that consumes the old token and stores its successor, after
//! the access token is signed (F3, F7); a consumed token presented again revokes its whole
//! family (F2), but a token consumed by its grant's revocation (RFC 7009, the admin API, a
//! signed-out user) is reported as revoked, not as reuse; another client's token is refused without touching it (F5); scope only
//! narrows (F4); the resource is re-validated and expiry enforced (F6). Storage failures are
//! 503, never `invalid_grant` or a revocation (F7). At a group-gated resource
//! (`[[group_scopes]]`, [`crate::federation::groups`]) the scope is re-checked against the
//! groups the user's connector identities last stored, as Dex re-reads an identity on refresh:
//! a user who left a group (at their next sign-in) or whose identity an admin unlinked gets
//! the narrower scope, or `invalid_grant` when nothing is left.

use super::mint::{self, Minted, RefreshPolicy, TokenDecision};
use super::replay::{revoke_replayed, Replay};
use super::{Issued, TokenRequest};
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, Result};
use crate::store::repo::refresh::RefreshRow;
use crate::store::repo::resources::ResourceRow;
use crate::store::repo::{grants, refresh, resources};

/// Decides the tokens a refresh token yields and issues them, rotating the refresh token in
/// the same transaction that stores its successor.
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
    if let Some(consumed_at) = row.consumed_at {
        return Err(consumed(server, &row, consumed_at, ctx.rid).await);
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
    let by_groups =
        crate::federation::groups::allowed_scopes(server, &row.subject, &resource.uri).await?;
    let mut decision = decide(
        &row,
        bound_jkt.as_deref(),
        params.get("scope"),
        &resource,
        by_groups.as_deref(),
        ctx.dpop_jkt,
        server.config().access_token_ttl,
    )?;
    // On-behalf-of: the agent the user consented to stays in `act` (never dropped).
    decision.act = grants::actor(db, &row.grant_id)
        .await?
        .map(|agent| super::on_behalf_of::act(&agent));
    match mint::mint_or_lose(server, client, &decision).await? {
        Minted::Issued(issued) => Ok(issued),
        // Someone else consumed it between our read and now (F3): reuse, unless a revocation
        // did.
        Minted::RotationLost => Err(consumed(server, &row, now, ctx.rid).await),
    }
}

/// The tokens a refresh yields (F1, F4): the row's user and grant, the requested scope when
/// it keeps or narrows the row's (`invalid_scope` otherwise) without scopes the resource no
/// longer offers nor, at a group-gated resource, scopes the user's current groups no longer
/// allow (`by_groups`; `invalid_grant` when none is left), an access token bound to the
/// proof's key, and a rotated refresh token that keeps the family's expiry and the binding of
/// the one it replaces.
pub fn decide(
    row: &RefreshRow,
    bound_jkt: Option<&str>,
    requested_scope: Option<&str>,
    resource: &ResourceRow,
    by_groups: Option<&[String]>,
    dpop_jkt: Option<&str>,
    access_ttl: i64,
) -> Result<TokenDecision> {
    let current = crate::scope::parse(&row.scope).unwrap_or_default();
    let scopes = match requested_scope {
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
    let scopes = match by_groups {
        Some(allowed) => {
            let kept = crate::federation::groups::narrow(&scopes, allowed);
            if kept.is_empty() {
                return Err(Error::invalid_grant(
                    "the user's groups no longer allow any of the granted scopes",
                ));
            }
            kept
        }
        None => scopes,
    };
    Ok(TokenDecision {
        subject: row.subject.clone(),
        resource: resource.uri.clone(),
        scope: crate::scope::join(&scopes),
        client_id: row.client_id.clone(),
        lifetime: access_ttl,
        dpop_jkt: dpop_jkt.map(str::to_owned),
        refresh: RefreshPolicy::Rotate {
            replaces: row.token_hash.clone(),
            expires_at: row.expires_at,
            jkt: bound_jkt.map(str::to_owned),
        },
        act: None,
        parent_jti: None,
        grant_id: Some(row.grant_id.clone()),
        auth_time: None,
        issued_token_type: None,
        not_after: None,
    })
}

/// Why a presented refresh token is already consumed.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// Its grant was revoked (RFC 7009 revocation, the admin API, sign-out everywhere) when
    /// or before the token was consumed: the revocation consumed it.
    Revoked,
    /// It was rotated (or raced) and is presented again (F2).
    Reused,
}

/// Decides between revocation and reuse: revoking a grant consumes its live refresh tokens
/// at the revocation's instant, so a token consumed at or after `grant_revoked_at` was
/// consumed by the revocation; one consumed earlier was rotated, and presenting it is reuse.
pub fn classify(consumed_at: i64, grant_revoked_at: Option<i64>) -> Consumed {
    match grant_revoked_at {
        Some(revoked) if consumed_at >= revoked => Consumed::Revoked,
        _ => Consumed::Reused,
    }
}

/// The error for a consumed refresh token: `invalid_grant` saying it was revoked, or F2 reuse.
async fn consumed(
    server: &Context,
    row: &RefreshRow,
    consumed_at: i64,
    rid: Option<&crate::request::RequestId>,
) -> Error {
    let grant = match grants::get(server.env().sql.as_ref(), &row.grant_id).await {
        Ok(g) => g,
        Err(e) => return e.into(),
    };
    match classify(consumed_at, grant.and_then(|g| g.revoked_at)) {
        Consumed::Revoked => Error::invalid_grant("the refresh token has been revoked"),
        Consumed::Reused => reuse(server, &row.grant_id, &row.client_id, rid).await,
    }
}

/// F2: reuse of a consumed refresh token revokes the family.
async fn reuse(
    server: &Context,
    grant_id: &str,
    client_id: &str,
    rid: Option<&crate::request::RequestId>,
) -> Error {
    let replay = Replay {
        action: "refresh.reuse_detected",
        reason: "family_revoked",
        description: "the refresh token has already been used; its grant is revoked",
    };
    revoke_replayed(server, grant_id, client_id, rid, replay).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::token::mint::test_values::resource;
    use crate::error::ErrorCode;

    fn row() -> RefreshRow {
        RefreshRow {
            token_hash: "h".into(),
            grant_id: "g1".into(),
            client_id: "c1".into(),
            subject: "u1".into(),
            scope: "a b".into(),
            resource: Some("https://mcp.example/mcp".into()),
            expires_at: 9_000,
            consumed_at: None,
            created_at: 1_000,
        }
    }

    #[test]
    fn consumed_by_revocation_is_not_reuse() {
        assert_eq!(classify(5_000, Some(5_000)), Consumed::Revoked);
        assert_eq!(classify(5_001, Some(5_000)), Consumed::Revoked);
        assert_eq!(classify(4_999, Some(5_000)), Consumed::Reused);
        assert_eq!(classify(5_000, None), Consumed::Reused);
    }

    #[test]
    fn f1_rotation_keeps_family_expiry_binding_and_grant() {
        let r = resource("https://mcp.example/mcp", &["a", "b"]);
        let d = decide(&row(), Some("old"), None, &r, None, Some("old"), 900).unwrap();
        assert_eq!(d.subject, "u1");
        assert_eq!(d.resource, "https://mcp.example/mcp");
        assert_eq!(d.scope, "a b");
        assert_eq!(d.client_id, "c1");
        assert_eq!(d.lifetime, 900);
        assert_eq!(d.grant_id.as_deref(), Some("g1"));
        assert_eq!(d.auth_time, None);
        assert_eq!(d.dpop_jkt.as_deref(), Some("old"));
        assert_eq!(
            d.refresh,
            RefreshPolicy::Rotate {
                replaces: row().token_hash,
                expires_at: 9_000,
                jkt: Some("old".into())
            }
        );
    }

    #[test]
    fn f4_scope_only_narrows() {
        let r = resource("https://mcp.example/mcp", &["a", "b", "c"]);
        let d = decide(&row(), None, Some("b"), &r, None, None, 900).unwrap();
        assert_eq!(d.scope, "b");
        assert_eq!(d.dpop_jkt, None);
        let err = decide(&row(), None, Some("a c"), &r, None, None, 900).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn scopes_dropped_from_the_catalog_are_not_kept() {
        let r = resource("https://mcp.example/mcp", &["b"]);
        let d = decide(&row(), None, None, &r, None, None, 900).unwrap();
        assert_eq!(d.scope, "b");
    }

    #[test]
    fn group_gated_scopes_follow_the_current_groups() {
        let r = resource("https://mcp.example/mcp", &["a", "b"]);
        let only_b = vec!["b".to_owned()];
        let d = decide(&row(), None, None, &r, Some(&only_b), None, 900).unwrap();
        assert_eq!(d.scope, "b", "a group left: narrowed");
        let err = decide(&row(), None, None, &r, Some(&[]), None, 900).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidGrant, "no group left: refused");
        let err = decide(&row(), None, Some("a"), &r, Some(&only_b), None, 900).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidGrant);
    }
}
