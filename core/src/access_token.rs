//! Minting access tokens as RFC 9068 JWTs (header `typ: at+jwt`, `alg: ES256`, `kid`; claims
//! `iss`, `sub`, `aud`, `client_id`, `scope`, `jti`, `iat`, `nbf`, `exp`, and the agent identity
//! claims `agent_name` and `client_registration` documented in docs/mcp-servers.md) and opaque refresh
//! tokens, and reading our own access tokens back (for revocation and introspection).

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::jose::Parsed;
use crate::store::repo::access;

/// The `typ` header of our access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of our access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or the client for client_credentials.
    pub sub: String,
    /// Audience: the resource URI.
    pub aud: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Unique id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// When the user authenticated (user tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Confirmation: the DPoP key thumbprint the token is bound to (RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The delegation chain (RFC 8693 §4.1): the current actor, with earlier ones nested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// Agent identity: the registered `client_name` of the client (the agent) the token was
    /// issued to, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// Agent identity: how that client registered (`static`, `dynamic`, `metadata_document`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_registration: Option<String>,
}

/// The `cnf` claim (RFC 7800 §3.1) with a JWK SHA-256 thumbprint (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the DPoP public key.
    pub jkt: String,
}

/// What to put in a new access token.
pub struct AccessTokenSpec<'a> {
    /// Subject.
    pub sub: &'a str,
    /// Audience.
    pub aud: &'a str,
    /// Client.
    pub client_id: &'a str,
    /// Scope.
    pub scope: &'a str,
    /// Lifetime, seconds.
    pub ttl: i64,
    /// The latest `exp` allowed, if any (the token still lives at least one second).
    pub not_after: Option<i64>,
    /// The grant it belongs to (recorded so grant revocation reaches it).
    pub grant_id: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: Option<i64>,
    /// DPoP key thumbprint to bind the token to (`cnf.jkt`).
    pub dpop_jkt: Option<&'a str>,
    /// Delegation chain (`act`).
    pub act: Option<serde_json::Value>,
    /// The token this one was exchanged from (RFC 8693); revoking it revokes this one.
    pub parent_jti: Option<&'a str>,
    /// The client's registered name (`agent_name`).
    pub agent_name: Option<&'a str>,
    /// How the client registered (`client_registration`).
    pub client_registration: Option<&'a str>,
}

/// Signs a new access token; records its `jti` when it belongs to a grant.
/// Returns the token and its claims.
pub async fn access_token(
    ctx: &Context,
    spec: &AccessTokenSpec<'_>,
) -> Result<(String, AccessClaims)> {
    let now = ctx.now();
    let claims = AccessClaims {
        iss: ctx.issuer().to_owned(),
        sub: spec.sub.to_owned(),
        aud: spec.aud.to_owned(),
        client_id: spec.client_id.to_owned(),
        scope: spec.scope.to_owned(),
        jti: crate::runtime::random_token(ctx.env().rng.as_ref(), 16),
        iat: now,
        nbf: now,
        exp: match spec.not_after {
            Some(cap) => (now + spec.ttl).min(cap).max(now + 1),
            None => now + spec.ttl,
        },
        auth_time: spec.auth_time,
        cnf: spec.dpop_jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
        act: spec.act.clone(),
        agent_name: spec.agent_name.map(str::to_owned),
        client_registration: spec.client_registration.map(str::to_owned),
    };
    if spec.grant_id.is_some() || spec.parent_jti.is_some() {
        access::insert(
            ctx.env().sql.as_ref(),
            &claims.jti,
            spec.grant_id,
            spec.client_id,
            claims.exp,
            spec.parent_jti,
        )
        .await?;
    }
    let key = ctx.keys().active(ctx.env()).await?;
    let value = serde_json::to_value(&claims).map_err(|e| Error::server(e.to_string()))?;
    let jwt = key.sign_jws(ACCESS_TOKEN_TYP, &value).await?;
    Ok((jwt, claims))
}

/// A new opaque refresh token value.
pub fn refresh_token(ctx: &Context) -> String {
    crate::runtime::random_token(ctx.env().rng.as_ref(), 32)
}

/// Verifies one of our access tokens: signature with a published key, `typ`, issuer and
/// time window (within `jwt_clock_skew_seconds`, J5). Returns `None` for anything that is not a valid token of
/// ours (revocation is checked separately).
pub async fn verify_access_token(ctx: &Context, token: &str) -> Result<Option<AccessClaims>> {
    let Ok(parsed) = Parsed::parse(token) else {
        return Ok(None);
    };
    if parsed.typ().map(|t| t.to_ascii_lowercase()) != Some(ACCESS_TOKEN_TYP.into()) {
        return Ok(None);
    }
    let Some(kid) = parsed.kid() else {
        return Ok(None);
    };
    let Some(public) = ctx.keys().public_key(ctx.env(), kid).await? else {
        return Ok(None);
    };
    let Ok(claims) = parsed
        .verify::<AccessClaims>(ctx.env().crypto.as_ref(), &public)
        .await
    else {
        return Ok(None);
    };
    let now = ctx.now();
    let skew = ctx.config().jwt_clock_skew_seconds;
    if claims.iss != ctx.issuer() || claims.exp <= now - skew || claims.nbf > now + skew {
        return Ok(None);
    }
    Ok(Some(claims))
}
