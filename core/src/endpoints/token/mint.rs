//! The one place a grant's decision becomes tokens: the signed RFC 9068 access token (with
//! its `access_tokens` row when it belongs to a grant or a parent token), the opaque refresh
//! token (RFC 6749 §6, rotated per RFC 9700 §4.14.2) when the decision asks for one, and the
//! RFC 6749 §5.1 response. Every grant handler ends with a [`TokenDecision`]; none mints.

use serde_json::Value;

use super::Issued;
use crate::access_token::{self as issue, AccessTokenSpec};
use crate::clients::Client;
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, Result};
use crate::store::repo::refresh::{self, RefreshRow};

/// Whether a refresh token comes with the access token, and how it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshPolicy {
    /// No refresh token (client credentials, token exchange, JWT bearer, or a client not
    /// registered for `refresh_token`).
    None,
    /// A new refresh token in the decision's grant (the family), for a first issue or a
    /// rotation: it expires at `expires_at` and is bound to `jkt` (RFC 9449 §5) when set.
    Issue {
        /// Absolute expiry (a rotation keeps the family's expiry).
        expires_at: i64,
        /// DPoP key thumbprint the refresh token is bound to.
        jkt: Option<String>,
    },
    /// A refresh token rotation: the token hashed `replaces` is consumed and a new one in
    /// the decision's grant stored, in one transaction, after the access token is signed
    /// (so a failure anywhere leaves the old token live: F7).
    Rotate {
        /// [`crate::crypto::token_hash`] of the refresh token being rotated.
        replaces: String,
        /// Absolute expiry (the family's).
        expires_at: i64,
        /// DPoP key thumbprint the refresh token is bound to.
        jkt: Option<String>,
    },
}

/// What [`mint_or_lose`] did.
#[derive(Debug)]
pub enum Minted {
    /// The tokens, with everything that must be stored stored.
    Issued(Issued),
    /// The decision rotated a refresh token that another request consumed first (F3):
    /// nothing was handed out and no refresh token was stored.
    RotationLost,
}

/// What a grant decided to issue. Built by each grant's plain decision function from the
/// validated request and the rows it read; turned into tokens only by [`mint`].
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDecision {
    /// `sub`: the user, or the client itself for client credentials.
    pub subject: String,
    /// `aud`: the resource URI (RFC 8707).
    pub resource: String,
    /// Granted scope, space separated.
    pub scope: String,
    /// `client_id`: the client the token is issued to.
    pub client_id: String,
    /// Access token lifetime, seconds (also `expires_in`).
    pub lifetime: i64,
    /// DPoP key thumbprint the access token is bound to (`cnf.jkt`, RFC 9449 §6.1).
    pub dpop_jkt: Option<String>,
    /// The refresh token to issue, if any.
    pub refresh: RefreshPolicy,
    /// Delegation chain (`act`, RFC 8693 §4.1).
    pub act: Option<Value>,
    /// The token this one was exchanged from (RFC 8693); revoking it revokes this one.
    pub parent_jti: Option<String>,
    /// The grant the tokens belong to (so grant revocation reaches them).
    pub grant_id: Option<String>,
    /// When the user authenticated.
    pub auth_time: Option<i64>,
    /// RFC 8693 `issued_token_type`, for token exchange.
    pub issued_token_type: Option<&'static str>,
    /// The latest `exp` the token may have (the assertion's or subject token's own), applied
    /// at signing time so that a second passing between decision and signature never lets the
    /// token outlive what it was derived from.
    pub not_after: Option<i64>,
}

/// Signs the access token, stores what must be stored, and builds the response. The token
/// names the agent it was issued to: `client`'s registered name and how it registered.
pub async fn mint(server: &Context, client: &Client, decision: &TokenDecision) -> Result<Issued> {
    match mint_or_lose(server, client, decision).await? {
        Minted::Issued(issued) => Ok(issued),
        Minted::RotationLost => Err(Error::invalid_grant(
            "the refresh token has already been used",
        )),
    }
}

/// [`mint`], telling a lost rotation race apart so the refresh grant can treat it as reuse.
pub async fn mint_or_lose(
    server: &Context,
    client: &Client,
    decision: &TokenDecision,
) -> Result<Minted> {
    let d = decision;
    let (jwt, claims) = issue::access_token(
        server,
        &AccessTokenSpec {
            sub: &d.subject,
            aud: &d.resource,
            client_id: &d.client_id,
            scope: &d.scope,
            ttl: d.lifetime,
            not_after: d.not_after,
            grant_id: d.grant_id.as_deref(),
            auth_time: d.auth_time,
            dpop_jkt: d.dpop_jkt.as_deref(),
            act: d.act.clone(),
            parent_jti: d.parent_jti.as_deref(),
            agent_name: client.metadata.client_name.as_deref(),
            client_registration: Some(client.kind.as_str()),
        },
    )
    .await?;
    let refresh_token = match (&d.refresh, &d.grant_id) {
        (RefreshPolicy::Issue { expires_at, jkt }, Some(grant_id)) => {
            let rt = issue::refresh_token(server);
            refresh::insert_bound(
                server.env().sql.as_ref(),
                &RefreshRow {
                    token_hash: token_hash(&rt),
                    grant_id: grant_id.clone(),
                    client_id: d.client_id.clone(),
                    subject: d.subject.clone(),
                    scope: d.scope.clone(),
                    resource: Some(d.resource.clone()),
                    expires_at: *expires_at,
                    consumed_at: None,
                    created_at: server.now(),
                },
                jkt.as_deref(),
            )
            .await?;
            Some(rt)
        }
        (
            RefreshPolicy::Rotate {
                replaces,
                expires_at,
                jkt,
            },
            Some(grant_id),
        ) => {
            let rt = issue::refresh_token(server);
            let now = server.now();
            let row = RefreshRow {
                token_hash: token_hash(&rt),
                grant_id: grant_id.clone(),
                client_id: d.client_id.clone(),
                subject: d.subject.clone(),
                scope: d.scope.clone(),
                resource: Some(d.resource.clone()),
                expires_at: *expires_at,
                consumed_at: None,
                created_at: now,
            };
            let db = server.env().sql.as_ref();
            if !refresh::rotate(db, replaces, now, &row, jkt.as_deref()).await? {
                return Ok(Minted::RotationLost);
            }
            Some(rt)
        }
        // A refresh token outside a grant could never be revoked with it.
        (RefreshPolicy::Issue { .. } | RefreshPolicy::Rotate { .. }, None) => {
            return Err(Error::server("a refresh token was decided without a grant"))
        }
        (RefreshPolicy::None, _) => None,
    };
    Ok(Minted::Issued(Issued {
        access_token: jwt,
        token_type: Issued::token_type_for(d.dpop_jkt.as_deref()),
        expires_in: claims.exp - claims.iat,
        scope: d.scope.clone(),
        refresh_token,
        issued_token_type: d.issued_token_type,
        subject: claims.sub,
        jti: claims.jti,
        resource: d.resource.clone(),
    }))
}

/// Plain values for the grants' decision tests.
#[cfg(test)]
pub(crate) mod test_values {
    use crate::clients::{Client, ClientKind, ClientMetadata};
    use crate::store::repo::resources::ResourceRow;

    /// Client `c1` with this authentication method and these grant types.
    pub fn client(auth: &str, grants: &[&str]) -> Client {
        Client {
            client_id: "c1".into(),
            secret_hash: None,
            metadata: ClientMetadata {
                grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
                token_endpoint_auth_method: auth.into(),
                ..Default::default()
            },
            kind: ClientKind::Static,
            last_used_at: None,
        }
    }

    /// A resource with this scope catalog.
    pub fn resource(uri: &str, scopes: &[&str]) -> ResourceRow {
        ResourceRow {
            uri: uri.into(),
            name: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            introspection_clients: Vec::new(),
            exchange_clients: Vec::new(),
            created_at: 0,
        }
    }
}
