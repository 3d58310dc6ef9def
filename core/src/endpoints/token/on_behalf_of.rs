//! On-behalf-of user authorization for AI agents (IETF draft
//! draft-oauth-ai-agents-on-behalf-of-user-02): at the authorization endpoint a client names
//! the agent that will act for the user (`requested_actor`); the user consents to that agent
//! and the code is bound to it; at the token endpoint the code is redeemed with the agent's
//! own credential (`actor_token` and `actor_token_type`), and the access token says who the
//! user is (`sub`) and which agent acts (`act.sub`, RFC 8693 §4.1).
//!
//! What an agent is here, where the draft leaves it to the server: a client registered at
//! Portcullis (its `client_id` is the `requested_actor`: a static client, a dynamically
//! registered one or a client ID metadata document URL), and its `actor_token` is an access
//! token this server issued to that agent for itself: `sub` and `client_id` both the agent
//! (client credentials, or workload identity federation), live, not revoked, not itself
//! delegated, with `actor_token_type` `urn:ietf:params:oauth:token-type:access_token` or
//! `…:jwt`; a DPoP-bound one needs a proof with its key, as in token exchange.
//!
//! Refusals, all checked before the code is redeemed (so a refused request does not burn it):
//! an unknown `requested_actor` at authorize is `invalid_request` (an error response to the
//! client); at the token endpoint a code bound to an agent without `actor_token` is
//! `invalid_request` (a missing parameter, RFC 6749 §5.2), as are an `actor_token` for a code
//! bound to no agent, a missing `actor_token_type` and an unsupported one (RFC 8693 §2.2.2);
//! an `actor_token` that is not a live access token of ours (forged, expired, revoked) or
//! that belongs to another agent than the one the user consented to is `invalid_grant`; an
//! `act` chain deeper than `token_exchange.max_delegation_depth` is `invalid_request`, as in
//! token exchange (X3).
//!
//! The `act` claim is `{"sub": <agent>, "client_id": <agent>}`, the hop shape of token
//! exchange, so the chain composes: exchanging an on-behalf-of token keeps it (X2) or nests
//! it under a new actor, within the same depth limit. The agent is recorded on the grant, so
//! tokens refreshed from it keep `act` (a refresh never drops the chain).

use serde_json::{json, Value};

use super::exchange::{depth, ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE};
use super::TokenRequest;
use crate::access_token::{self as issue, AccessClaims};
use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::repo::access;
use crate::text::truncate;

/// The authorization request parameter naming the agent.
pub const REQUESTED_ACTOR: &str = "requested_actor";

/// The agent named by `requested_actor`: a registered client (`invalid_request` otherwise).
pub async fn requested_agent(server: &Context, requested: &str) -> Result<Client> {
    let unknown = || {
        Error::invalid_request(format!(
            "requested_actor '{}' is not an agent known to this server",
            truncate(requested, 100)
        ))
    };
    if requested.is_empty() || requested.len() > 2048 {
        return Err(unknown());
    }
    crate::client_lookup::resolve(server, requested)
        .await?
        .ok_or_else(unknown)
}

/// The `act` claim naming `agent` as the actor (the hop shape of token exchange).
pub fn act(agent: &str) -> Value {
    json!({ "sub": agent, "client_id": agent })
}

/// At the token endpoint: the `act` of the tokens a code yields. A code bound to an agent
/// (`bound`) needs that agent's `actor_token`; a code bound to none takes none.
pub async fn check_actor(ctx: &TokenRequest<'_>, bound: Option<&str>) -> Result<Option<Value>> {
    let params = ctx.params;
    let token = params.get("actor_token");
    let token_type = params.get("actor_token_type");
    let Some(agent) = bound else {
        if token.is_some() || token_type.is_some() {
            return Err(Error::invalid_request(
                "actor_token is only accepted for a code issued with requested_actor",
            ));
        }
        return Ok(None);
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Error::invalid_request(
            "actor_token is required: the user authorized this code for an agent (requested_actor)",
        ));
    };
    match token_type {
        Some(t) if t == ACCESS_TOKEN_TYPE || t == JWT_TOKEN_TYPE => {}
        Some(t) => {
            return Err(Error::invalid_request(format!(
                "actor_token_type '{}' is not supported (supported: {ACCESS_TOKEN_TYPE}, {JWT_TOKEN_TYPE})",
                truncate(t, 100)
            )))
        }
        None => {
            return Err(Error::invalid_request(
                "actor_token_type is required with actor_token",
            ))
        }
    }
    let claims = live_token(ctx.server, token).await?;
    check_claims(&claims, agent, ctx.dpop_jkt)?;
    let act = act(agent);
    let max = ctx.server.config().token_exchange.max_delegation_depth;
    if depth(Some(&act)) > max {
        return Err(Error::invalid_request(format!(
            "an agent acting for the user makes the act chain 1 actor deep; at most {max} are allowed"
        )));
    }
    Ok(Some(act))
}

/// A live access token of ours: signature, issuer, not expired, not revoked (directly,
/// through its grant or an ancestor).
async fn live_token(server: &Context, token: &str) -> Result<AccessClaims> {
    let Some(claims) = issue::verify_access_token(server, token).await? else {
        return Err(Error::invalid_grant(
            "the actor_token is not a valid access token issued by this server",
        ));
    };
    if claims.exp <= server.now() {
        return Err(Error::invalid_grant("the actor_token has expired"));
    }
    if access::lineage(server.env().sql.as_ref(), &claims.jti)
        .await?
        .revoked
    {
        return Err(Error::invalid_grant("the actor_token has been revoked"));
    }
    Ok(claims)
}

/// The actor token must be the bound agent's own (`sub` and `client_id` the agent), not
/// itself delegated, and proven with its DPoP key when bound to one.
fn check_claims(claims: &AccessClaims, agent: &str, dpop_jkt: Option<&str>) -> Result<()> {
    if claims.sub != agent || claims.client_id != agent {
        return Err(Error::invalid_grant(
            "the actor_token is not the token of the agent the user authorized (requested_actor)",
        ));
    }
    if claims.act.is_some() {
        return Err(Error::invalid_grant(
            "the actor_token carries its own delegation chain; present a token of the agent itself",
        ));
    }
    if let Some(cnf) = &claims.cnf {
        if dpop_jkt != Some(cnf.jkt.as_str()) {
            return Err(Error::invalid_grant(
                "the actor_token is DPoP-bound; send a DPoP proof made with its key",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_token::Confirmation;
    use crate::error::ErrorCode;

    fn claims(sub: &str, client_id: &str) -> AccessClaims {
        AccessClaims {
            iss: "https://as.example".into(),
            sub: sub.into(),
            aud: "https://mcp.example/mcp".into(),
            client_id: client_id.into(),
            scope: "a".into(),
            jti: "j".into(),
            iat: 0,
            nbf: 0,
            exp: 100,
            auth_time: None,
            cnf: None,
            act: None,
            agent_name: None,
            client_registration: None,
        }
    }

    #[test]
    fn the_actor_token_must_be_the_bound_agents_own() {
        assert!(check_claims(&claims("agent", "agent"), "agent", None).is_ok());
        for (c, why) in [
            (claims("other", "other"), "another agent"),
            (
                claims("user-1", "agent"),
                "a user's token issued to the agent",
            ),
            (
                claims("agent", "client"),
                "a token issued to another client",
            ),
        ] {
            let e = check_claims(&c, "agent", None).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{why}");
        }
        let mut delegated = claims("agent", "agent");
        delegated.act = Some(act("x"));
        assert_eq!(
            check_claims(&delegated, "agent", None).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        let mut bound = claims("agent", "agent");
        bound.cnf = Some(Confirmation { jkt: "k".into() });
        assert!(check_claims(&bound, "agent", None).is_err());
        assert!(check_claims(&bound, "agent", Some("other")).is_err());
        assert!(check_claims(&bound, "agent", Some("k")).is_ok());
    }

    #[test]
    fn act_is_the_hop_shape_of_token_exchange() {
        let a = act("agent-7");
        assert_eq!(a, json!({ "sub": "agent-7", "client_id": "agent-7" }));
        assert_eq!(depth(Some(&a)), 1);
    }
}
