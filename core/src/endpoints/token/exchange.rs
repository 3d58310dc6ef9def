//! The token exchange grant (RFC 8693 §2): a client trades one of our access tokens (the
//! subject token) for a new access token for a target resource, with a narrower or equal
//! scope, optionally naming a new actor with an actor token (delegation, §4.1).
//!
//! Rules (SECURITY-CHECKLIST X1–X4):
//! - Token types: `subject_token_type` and `actor_token_type` (required with an
//!   `actor_token`) are `urn:ietf:params:oauth:token-type:access_token` or `…:jwt`;
//!   `requested_token_type`, when sent, one of the same two (echoed as `issued_token_type`;
//!   our access tokens are both). Anything else is `invalid_request`.
//! - The subject token must be one of our access tokens: signature by a published key,
//!   `typ`, issuer, not expired, and neither it, nor a token it was exchanged from, nor the
//!   grant of either revoked; otherwise `invalid_grant` (X1). The actor token passes the same
//!   checks, must have been issued to the authenticated client, must not itself carry an
//!   `act` chain (that chain could not be kept), and when DPoP-bound needs a proof made with
//!   its key.
//! - `act` (§4.1): without an actor token the new token keeps the subject token's `act`
//!   exactly (impersonation; a chain is never dropped, X2); with one, a new outermost
//!   `{"sub", "client_id", "act": <previous chain>}` names the actor. A chain deeper than
//!   `token_exchange.max_delegation_depth` is refused with `invalid_request` (§2.2.2: the
//!   subject token is unacceptable by policy) (X3).
//! - Target: `resource` (RFC 8707) and/or `audience` name a registered resource URI (both:
//!   the same one); neither means the subject token's audience. Unknown: `invalid_target`.
//! - Scope only narrows: the requested scope must lie within the subject token's scope, the
//!   target's catalog and the client's ceiling (`invalid_scope`, X4); by default it is that
//!   intersection, which must not be empty.
//! - Policy: a client may exchange its own token into the token's own audience. Anything
//!   else (another client's token, or another resource) needs the client in the target
//!   resource's `exchange_clients`; exchanging another client's token also needs a
//!   confidential (authenticated) client, since a public `client_id` proves nothing.
//!   Refused with `unauthorized_client`.
//! - Binding: a valid DPoP proof binds the new token to its key; without one the subject
//!   token's `cnf.jkt`, if any, is kept. Re-binding a bound subject token to another key
//!   needs a confidential client.
//! - The new token: `sub` of the subject token, `client_id` the authenticated client, `aud`
//!   the target, lifetime at most the server's access token lifetime and never past the
//!   subject (or actor) token's expiry, no refresh token. It is recorded with the subject
//!   token's `jti` as parent, so revoking the subject token or its grant revokes it too;
//!   lineages longer than [`access::MAX_LINEAGE`] are refused.
//! - Audit: `token.exchanged` with the chain and the parent `jti`; refusals as
//!   `token.exchange_denied` with the precise reason (besides the endpoint's `token.denied`).

use serde_json::{json, Value};

use super::mint::{mint, RefreshPolicy, TokenDecision};
use super::{Issued, TokenRequest};
use crate::access_token::{self as issue, AccessClaims};
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::store::repo::access;
use crate::store::repo::resources::{self, ResourceRow};
use crate::text::truncate;
use crate::vault::{self, provider::Provider};

/// RFC 8693 §3 token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3 token type of a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Exchanges a subject token (and optional actor token) for a new access token.
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let result = run(ctx).await;
    if let Err(e) = &result {
        audit::record(
            ctx.server.env(),
            Event {
                action: "token.exchange_denied",
                success: false,
                client_id: Some(&ctx.client.client_id),
                reason: Some(e.code.as_str()),
                request: ctx.rid,
                detail: Some(json!({ "description": e.description })),
                ..Default::default()
            },
        )
        .await;
    }
    result
}

async fn run(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    let subject_token = params.require("subject_token")?;
    token_type("subject_token_type", params.require("subject_token_type")?)?;
    let actor_token = match (params.get("actor_token"), params.get("actor_token_type")) {
        (Some(t), Some(ty)) => {
            token_type("actor_token_type", ty)?;
            Some(t)
        }
        (Some(_), None) => {
            return Err(Error::invalid_request(
                "actor_token_type is required with actor_token",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::invalid_request(
                "actor_token_type must not be sent without actor_token",
            ))
        }
        (None, None) => None,
    };
    let issued_token_type = match params.get("requested_token_type") {
        None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
        Some(JWT_TOKEN_TYPE) => JWT_TOKEN_TYPE,
        Some(other) => {
            return Err(Error::invalid_request(format!(
                "requested_token_type '{}' is not supported (supported: {ACCESS_TOKEN_TYPE}, {JWT_TOKEN_TYPE})",
                truncate(other, 100)
            )))
        }
    };

    if let Some(resource) = params.get("resource") {
        if let Some(provider) = crate::vault::providers::for_resource(server, resource).await? {
            if actor_token.is_some() {
                return Err(Error::invalid_request(
                    "an upstream provider's token cannot be obtained by delegation (actor_token)",
                ));
            }
            return vend(ctx, &provider, subject_token).await;
        }
    }
    let (subject, lineage) = ours(server, subject_token, "subject_token").await?;
    let actor = match actor_token {
        Some(t) => Some(actor_claims(ctx, t).await?),
        None => None,
    };
    let target = target(server, params, &subject.aud).await?;
    let decision = decide(&Inputs {
        client,
        subject: &subject,
        lineage_length: lineage.length,
        actor: actor.as_ref(),
        target: &target,
        requested_scope: params.get("scope"),
        proof_jkt: ctx.dpop_jkt,
        issued_token_type,
        max_depth: server.config().token_exchange.max_delegation_depth,
        access_ttl: server.config().access_token_ttl,
        now: server.now(),
    })?;
    let issued = mint(server, client, &decision).await?;
    audit::record(
        server.env(),
        Event {
            action: "token.exchanged",
            success: true,
            client_id: Some(&client.client_id),
            subject: Some(&issued.subject),
            request: ctx.rid,
            detail: Some(json!({
                "jti": issued.jti,
                "parent_jti": subject.jti,
                "subject_client_id": subject.client_id,
                "subject_aud": subject.aud,
                "resource": issued.resource,
                "scope": issued.scope,
                "act": decision.act,
                "delegation_depth": depth(decision.act.as_ref()),
                "delegated": actor.is_some(),
                "token_type": issued.token_type,
            })),
            ..Default::default()
        },
    )
    .await;
    Ok(issued)
}

/// A vend (the vault): the user's upstream access token for the provider whose `resource`
/// the request named, refreshed first when needed; never a refresh token.
async fn vend(ctx: &TokenRequest<'_>, provider: &Provider, subject_token: &str) -> Result<Issued> {
    let server = ctx.server;
    let (subject, _) = ours(server, subject_token, "subject_token").await?;
    let subject_resource = resources::get(server.env().sql.as_ref(), &subject.aud)
        .await?
        .ok_or_else(|| {
            Error::invalid_target("the subject_token's audience is no longer registered")
        })?;
    let plan = vault::vend::decide(&vault::vend::VendRequest {
        client: ctx.client,
        subject: &subject,
        subject_resource: &subject_resource,
        provider,
        requested_token_type: ctx.params.get("requested_token_type"),
        scope: ctx.params.get("scope"),
    })?;
    let outcome = async {
        let vended = vault::broker::current_token(server, provider, &plan.owner).await?;
        let scope = vault::vend::granted_scope(&vended.scope, &plan.wanted)?;
        Ok::<_, Error>((vended, scope))
    }
    .await;
    let (vended, scope) = match outcome {
        Ok(v) => v,
        Err(e) => {
            let wanted = plan.wanted.join(" ");
            vault::broker::audit_vend(
                server,
                &ctx.client.client_id,
                &plan.owner,
                &provider.name,
                &wanted,
                false,
                Some(e.code.as_str()),
            )
            .await;
            return Err(e);
        }
    };
    vault::broker::audit_vend(
        server,
        &ctx.client.client_id,
        &plan.owner,
        &provider.name,
        &scope,
        true,
        None,
    )
    .await;
    Ok(Issued {
        access_token: vended.access_token,
        token_type: "Bearer",
        // An upstream token without a stated lifetime is vended for our own access token
        // lifetime: the MCP server comes back for it within that time.
        expires_in: vended
            .expires_in
            .unwrap_or(server.config().access_token_ttl),
        scope,
        refresh_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        subject: plan.owner,
        jti: String::new(),
        resource: provider.resource.clone(),
    })
}

/// What the exchange decision is made from: the authenticated client, the verified subject
/// (and actor) token with the subject's lineage, the target resource, and the request.
pub struct Inputs<'a> {
    /// The authenticated client.
    pub client: &'a Client,
    /// The verified subject token's claims.
    pub subject: &'a AccessClaims,
    /// How many exchanges the subject token descends from.
    pub lineage_length: usize,
    /// The verified actor token's claims, for delegation.
    pub actor: Option<&'a AccessClaims>,
    /// The target resource.
    pub target: &'a ResourceRow,
    /// The `scope` parameter.
    pub requested_scope: Option<&'a str>,
    /// The thumbprint of the request's DPoP proof key.
    pub proof_jkt: Option<&'a str>,
    /// The `issued_token_type` to answer with.
    pub issued_token_type: &'static str,
    /// `token_exchange.max_delegation_depth`.
    pub max_depth: usize,
    /// The server's access token lifetime.
    pub access_ttl: i64,
    /// The current time.
    pub now: i64,
}

/// The exchanged token (see the module documentation): policy, `act` chain, narrowed scope,
/// lineage limit and binding, in that order of refusal; the subject's user and `auth_time`,
/// the authenticated client, the target as audience, the subject token as parent, a lifetime
/// ending no later than the subject (or actor) token, and no refresh token.
pub fn decide(i: &Inputs<'_>) -> Result<TokenDecision> {
    let (client, subject) = (i.client, i.subject);
    policy(client, subject, i.target)?;
    let act = chain(subject.act.as_ref(), i.actor, i.max_depth)?;
    let scopes = narrow(i.requested_scope, subject, i.target, client)?;
    if i.lineage_length >= access::MAX_LINEAGE {
        return Err(Error::invalid_request(format!(
            "the subject_token descends from {} exchanges; no more are allowed",
            i.lineage_length
        )));
    }
    let jkt = binding(i.proof_jkt, client, subject)?;
    let mut expires_at = (i.now + i.access_ttl).min(subject.exp);
    if let Some(a) = i.actor {
        expires_at = expires_at.min(a.exp);
    }
    Ok(TokenDecision {
        subject: subject.sub.clone(),
        resource: i.target.uri.clone(),
        scope: crate::scope::join(&scopes),
        client_id: client.client_id.clone(),
        lifetime: expires_at - i.now,
        dpop_jkt: jkt,
        refresh: RefreshPolicy::None,
        act,
        parent_jti: Some(subject.jti.clone()),
        grant_id: None,
        auth_time: subject.auth_time,
        issued_token_type: Some(i.issued_token_type),
        not_after: Some(expires_at),
    })
}

/// Checks a `*_token_type` parameter (RFC 8693 §3).
fn token_type(field: &str, value: &str) -> Result<()> {
    if value == ACCESS_TOKEN_TYPE || value == JWT_TOKEN_TYPE {
        return Ok(());
    }
    Err(Error::invalid_request(format!(
        "{field} '{}' is not supported (supported: {ACCESS_TOKEN_TYPE}, {JWT_TOKEN_TYPE})",
        truncate(value, 100)
    )))
}

/// Verifies that `token` is a live access token of ours (X1): signature, issuer, not
/// expired, not revoked directly, through its grant or through an ancestor.
async fn ours(
    server: &Context,
    token: &str,
    field: &str,
) -> Result<(AccessClaims, access::Lineage)> {
    let Some(claims) = issue::verify_access_token(server, token).await? else {
        return Err(Error::invalid_grant(format!(
            "the {field} is not a valid access token issued by this server"
        )));
    };
    if claims.exp <= server.now() {
        return Err(Error::invalid_grant(format!("the {field} has expired")));
    }
    let lineage = access::lineage(server.env().sql.as_ref(), &claims.jti).await?;
    if lineage.revoked {
        return Err(Error::invalid_grant(format!(
            "the {field} has been revoked"
        )));
    }
    Ok((claims, lineage))
}

/// Verifies the actor token: one of ours, issued to the authenticated client, not itself
/// delegated, and proven with its DPoP key when bound.
async fn actor_claims(ctx: &TokenRequest<'_>, token: &str) -> Result<AccessClaims> {
    let (claims, _) = ours(ctx.server, token, "actor_token").await?;
    if claims.client_id != ctx.client.client_id {
        return Err(Error::invalid_grant(
            "the actor_token was not issued to the authenticated client",
        ));
    }
    if claims.act.is_some() {
        return Err(Error::invalid_grant(
            "the actor_token carries its own delegation chain; present a token of the actor itself",
        ));
    }
    if let Some(cnf) = &claims.cnf {
        if ctx.dpop_jkt != Some(cnf.jkt.as_str()) {
            return Err(Error::invalid_grant(
                "the actor_token is DPoP-bound; send a DPoP proof made with its key",
            ));
        }
    }
    Ok(claims)
}

/// The target resource: `resource` and/or `audience`, else the subject token's audience.
async fn target(
    server: &Context,
    params: &crate::request::Params,
    subject_aud: &str,
) -> Result<ResourceRow> {
    let db = server.env().sql.as_ref();
    match (params.get("resource"), params.get("audience")) {
        (Some(r), Some(a)) if r != a => Err(Error::invalid_target(
            "resource and audience name different targets; only one target is supported",
        )),
        (Some(r), _) => crate::resource::select(server, Some(r)).await,
        (None, Some(a)) => resources::get(db, a).await?.ok_or_else(|| {
            Error::invalid_target("audience does not name a resource registered at this server")
        }),
        (None, None) => resources::get(db, subject_aud).await?.ok_or_else(|| {
            Error::invalid_target(
                "the subject_token's audience is no longer a registered resource; name a resource",
            )
        }),
    }
}

/// The exchange policy (see the module documentation).
fn policy(client: &Client, subject: &AccessClaims, target: &ResourceRow) -> Result<()> {
    let own = client.client_id == subject.client_id;
    if own && target.uri == subject.aud {
        return Ok(());
    }
    if !target.exchange_clients.contains(&client.client_id) {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            if own {
                "the client may not exchange its token for another resource: it is not in that resource's exchange_clients"
            } else {
                "the client may not exchange another client's token for this resource: it is not in the resource's exchange_clients"
            },
        ));
    }
    if !own && client.is_public() {
        return Err(Error::new(
            ErrorCode::UnauthorizedClient,
            "only an authenticated (confidential) client may exchange another client's token",
        ));
    }
    Ok(())
}

/// The number of actors in an `act` chain (RFC 8693 §4.1): nested objects, outermost first.
pub fn depth(act: Option<&Value>) -> usize {
    let mut n = 0;
    let mut cur = act;
    while let Some(Value::Object(o)) = cur {
        n += 1;
        cur = o.get("act");
    }
    n
}

/// The new token's `act`: the subject's chain unchanged without an actor (X2), or a new
/// outermost hop naming the actor; refused past `max_depth` (X3).
fn chain(
    previous: Option<&Value>,
    actor: Option<&AccessClaims>,
    max_depth: usize,
) -> Result<Option<Value>> {
    let Some(actor) = actor else {
        let d = depth(previous);
        if d > max_depth {
            return Err(Error::invalid_request(format!(
                "the subject_token's delegation chain has {d} actors; at most {max_depth} are allowed"
            )));
        }
        return Ok(previous.cloned());
    };
    let d = depth(previous) + 1;
    if d > max_depth {
        return Err(Error::invalid_request(format!(
            "delegation would make the act chain {d} actors deep; at most {max_depth} are allowed"
        )));
    }
    let mut hop = json!({ "sub": actor.sub, "client_id": actor.client_id });
    if let Some(prev) = previous {
        hop["act"] = prev.clone();
    }
    Ok(Some(hop))
}

/// The new token's scope (X4): within the subject token's scope, the target's catalog and the
/// client's ceiling; by default all of that intersection, which must not be empty.
fn narrow(
    requested: Option<&str>,
    subject: &AccessClaims,
    target: &ResourceRow,
    client: &Client,
) -> Result<Vec<String>> {
    let held = crate::scope::parse(&subject.scope).unwrap_or_default();
    let ceiling = client
        .metadata
        .scope
        .as_deref()
        .map(crate::scope::parse)
        .transpose()?;
    let why_not = |s: &String| -> Option<&'static str> {
        if !held.contains(s) {
            Some("is wider than the subject_token's scope")
        } else if !target.scopes.contains(s) {
            Some("is not in the target resource's scope catalog")
        } else if ceiling.as_ref().is_some_and(|c| !c.contains(s)) {
            Some("is not allowed for this client")
        } else {
            None
        }
    };
    let scopes: Vec<String> = match requested {
        Some(req) => {
            let wanted = crate::scope::parse(req)?;
            for s in &wanted {
                if let Some(why) = why_not(s) {
                    return Err(Error::invalid_scope(format!(
                        "scope '{}' {why}",
                        truncate(s, 64)
                    )));
                }
            }
            wanted
        }
        None => held
            .iter()
            .filter(|s| why_not(s).is_none())
            .cloned()
            .collect(),
    };
    if scopes.is_empty() {
        return Err(Error::invalid_scope(
            "no scope of the subject_token is available at the target resource",
        ));
    }
    Ok(scopes)
}

/// The key the new token is bound to: the proof's, else the subject token's.
fn binding(
    proof_jkt: Option<&str>,
    client: &Client,
    subject: &AccessClaims,
) -> Result<Option<String>> {
    let bound = subject.cnf.as_ref().map(|c| c.jkt.as_str());
    match (proof_jkt, bound) {
        (Some(new), Some(old)) if new != old && client.is_public() => Err(Error::invalid_grant(
            "the subject_token is bound to another DPoP key; a public client cannot re-bind it",
        )),
        (Some(new), _) => Ok(Some(new.to_owned())),
        (None, Some(old)) => Ok(Some(old.to_owned())),
        (None, None) if client.metadata.dpop_bound_access_tokens => Err(Error::invalid_request(
            "this client only accepts DPoP-bound tokens: send a DPoP proof",
        )),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::token::mint::test_values::{client, resource};

    fn claims(sub: &str, client_id: &str, act: Option<Value>) -> AccessClaims {
        AccessClaims {
            iss: "https://as.example".into(),
            sub: sub.into(),
            aud: "https://mcp.example.com/mcp".into(),
            client_id: client_id.into(),
            scope: "a b".into(),
            jti: "j".into(),
            iat: 0,
            nbf: 0,
            exp: 100,
            auth_time: None,
            cnf: None,
            act,
            agent_name: None,
            client_registration: None,
        }
    }

    fn inputs<'a>(
        client: &'a Client,
        subject: &'a AccessClaims,
        target: &'a ResourceRow,
    ) -> Inputs<'a> {
        Inputs {
            client,
            subject,
            lineage_length: 0,
            actor: None,
            target,
            requested_scope: None,
            proof_jkt: None,
            issued_token_type: ACCESS_TOKEN_TYPE,
            max_depth: 5,
            access_ttl: 900,
            now: 40,
        }
    }

    #[test]
    fn own_token_into_its_audience_keeps_user_and_chain_with_parent() {
        let c = client("client_secret_basic", &[]);
        let mut subject = claims("u1", "c1", Some(json!({"sub": "agent"})));
        subject.auth_time = Some(7);
        let target = resource("https://mcp.example.com/mcp", &["a", "b", "c"]);
        let d = decide(&inputs(&c, &subject, &target)).unwrap();
        assert_eq!(d.subject, "u1");
        assert_eq!(d.client_id, "c1");
        assert_eq!(d.resource, "https://mcp.example.com/mcp");
        assert_eq!(d.scope, "a b");
        assert_eq!(d.act, Some(json!({"sub": "agent"})));
        assert_eq!(d.parent_jti.as_deref(), Some("j"));
        assert_eq!(d.auth_time, Some(7));
        assert_eq!(d.grant_id, None);
        assert_eq!(d.refresh, RefreshPolicy::None);
        assert_eq!(d.issued_token_type, Some(ACCESS_TOKEN_TYPE));
        // Never past the subject token's expiry (100), whatever the server lifetime.
        assert_eq!(d.lifetime, 60);
        assert_eq!(d.dpop_jkt, None);
    }

    #[test]
    fn delegation_ends_with_the_actor_token_and_binds_to_the_proof() {
        let c = client("client_secret_basic", &[]);
        let subject = claims("u1", "c1", None);
        let mut actor = claims("agent-2", "c1", None);
        actor.exp = 50;
        let target = resource("https://mcp.example.com/mcp", &["a", "b"]);
        let mut i = inputs(&c, &subject, &target);
        i.actor = Some(&actor);
        i.proof_jkt = Some("k");
        i.requested_scope = Some("a");
        let d = decide(&i).unwrap();
        assert_eq!(d.act, Some(json!({"sub": "agent-2", "client_id": "c1"})));
        assert_eq!(d.lifetime, 10);
        assert_eq!(d.scope, "a");
        assert_eq!(d.dpop_jkt.as_deref(), Some("k"));
    }

    #[test]
    fn refusals_policy_scope_lineage_and_binding() {
        let c = client("none", &[]);
        let target = resource("https://mcp.example.com/mcp", &["a", "b"]);
        // Another client's token, and the client is not an exchanger of the target.
        let other = claims("u1", "c2", None);
        let err = decide(&inputs(&c, &other, &target)).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnauthorizedClient);
        // X4: wider than the subject token.
        let subject = claims("u1", "c1", None);
        let mut i = inputs(&c, &subject, &target);
        i.requested_scope = Some("a c");
        assert_eq!(decide(&i).unwrap_err().code, ErrorCode::InvalidScope);
        // Lineage limit.
        let mut i = inputs(&c, &subject, &target);
        i.lineage_length = access::MAX_LINEAGE;
        assert_eq!(decide(&i).unwrap_err().code, ErrorCode::InvalidRequest);
        // A public client cannot re-bind a bound subject token; without a proof it is kept.
        let mut bound = claims("u1", "c1", None);
        bound.cnf = Some(crate::access_token::Confirmation { jkt: "old".into() });
        let mut i = inputs(&c, &bound, &target);
        i.proof_jkt = Some("new");
        assert_eq!(decide(&i).unwrap_err().code, ErrorCode::InvalidGrant);
        let d = decide(&inputs(&c, &bound, &target)).unwrap();
        assert_eq!(d.dpop_jkt.as_deref(), Some("old"));
    }

    #[test]
    fn depth_counts_nested_actors() {
        assert_eq!(depth(None), 0);
        assert_eq!(depth(Some(&json!({"sub": "a"}))), 1);
        assert_eq!(depth(Some(&json!({"sub": "a", "act": {"sub": "b"}}))), 2);
        assert_eq!(depth(Some(&json!("not an object"))), 0);
    }

    #[test]
    fn x2_chain_kept_without_actor_and_extended_with_one() {
        let prev = json!({"sub": "agent-1", "client_id": "c1"});
        assert_eq!(chain(Some(&prev), None, 5).unwrap(), Some(prev.clone()));
        assert_eq!(chain(None, None, 5).unwrap(), None);
        let actor = claims("agent-2", "c2", None);
        let got = chain(Some(&prev), Some(&actor), 5).unwrap().unwrap();
        assert_eq!(
            got,
            json!({"sub": "agent-2", "client_id": "c2", "act": prev}),
            "the new actor is outermost and the old chain nested under it"
        );
        assert_eq!(depth(Some(&got)), 2);
    }

    #[test]
    fn x3_depth_limit() {
        let actor = claims("agent", "c", None);
        let mut prev: Option<Value> = None;
        for _ in 0..3 {
            prev = chain(prev.as_ref(), Some(&actor), 3).unwrap();
        }
        assert_eq!(depth(prev.as_ref()), 3);
        let err = chain(prev.as_ref(), Some(&actor), 3).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.description.contains("at most 3"), "{}", err.description);
        // Impersonation keeps a chain at the limit, but not one past a lowered limit.
        assert!(chain(prev.as_ref(), None, 3).is_ok());
        assert!(chain(prev.as_ref(), None, 2).is_err());
        // A limit of 0 disables delegation.
        assert!(chain(None, Some(&actor), 0).is_err());
    }
}
