//! The JWT bearer authorization grant (RFC 7523 §2.1, §3) with Identity Assertion JWT
//! Authorization Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant §4.3), the
//! grant of the MCP enterprise-managed authorization extension: a confidential client presents
//! an assertion its enterprise IdP issued for one user, and gets an access token for one
//! resource without a browser, a consent screen or a refresh token.
//!
//! SECURITY-CHECKLIST X5 (each refused on its own, as `invalid_grant` unless said otherwise):
//! an issuer that is not a trusted IdP; a `typ` other than exactly `oauth-id-jag+jwt`
//! (RFC 8725 §3.11); an `aud` that is not our issuer (a string, or an array containing it);
//! a missing or past `exp`; a missing `iat`, one older than [`MAX_ASSERTION_AGE`] or more than
//! [`CLOCK_SKEW`] in the future; an `nbf` more than [`CLOCK_SKEW`] ahead; missing `sub`,
//! `jti` or `client_id`; a `client_id` other than the authenticated client; a signature that
//! does not verify with the IdP key named by `kid` (ES256 only: J1–J4); a replayed `jti`.
//! The `jti` is reserved (atomically, in SQL) only after every other check has passed, so an
//! assertion refused for any other reason is not spent.
//!
//! Then: the `resource` (assertion claim or request parameter; when both are present they
//! must be equal, else `invalid_target`) selects a registered resource (RFC 8707); a policy
//! (`idp_policies`) must allow this IdP, client and resource (403 `access_denied` otherwise);
//! the scope is the requested scope (checked against the catalog and the client's ceiling as
//! for every grant), narrowed to the assertion's `scope` and the policy's scopes, and must not
//! end up empty (`invalid_scope`). The subject is the explicit mapping of the IdP's `sub`, or
//! the automatic [`idp::automatic_subject`]. The access token lives at most until the
//! assertion expires, and is bound to the DPoP key when a proof came with the request.

use serde_json::Value;

use super::issue::{self, AccessTokenSpec};
use super::{Issued, TokenRequest};
use crate::audit::{self, Event};
use crate::error::{Error, ErrorCode, Result};
use crate::http_util::truncate;
use crate::idp::{self, KeyError};
use crate::jose::{self, JwtError};
use crate::store::repo::{idps, replay};
use crate::store::StoreError;

/// The `typ` header of an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §3).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
/// The authorization grant profile advertised in metadata
/// (`authorization_grant_profiles_supported`).
pub const ID_JAG_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
/// Oldest accepted assertion (`now - iat`), seconds.
pub const MAX_ASSERTION_AGE: i64 = 300;
/// Tolerated clock difference for `iat` and `nbf` in the future, seconds (J5).
pub const CLOCK_SKEW: i64 = 60;
/// Largest accepted assertion, bytes.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// Longest accepted `sub`, `jti` or `client_id` claim, bytes.
const MAX_CLAIM_LEN: usize = 1024;

/// Why a grant was refused (a short audit reason) and the error sent to the client.
type Refusal = (&'static str, Error);

/// What the audit event reports about the assertion.
#[derive(Default)]
struct Facts {
    issuer: Option<String>,
    external_subject: Option<String>,
    assertion_jti: Option<String>,
    subject: Option<String>,
    resource: Option<String>,
}

/// Exchanges an ID-JAG for an access token, and audits the grant or denial
/// (`token.jwt_bearer`, with the reason and the issuer).
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let mut facts = Facts::default();
    let result = grant(ctx, &mut facts).await;
    let (success, reason, description, scope) = match &result {
        Ok(issued) => (true, None, None, Some(issued.scope.as_str())),
        Err((reason, err)) => (false, Some(*reason), Some(err.description.as_str()), None),
    };
    audit::record(
        ctx.server,
        Event {
            action: "token.jwt_bearer",
            success,
            client_id: Some(&ctx.client.client_id),
            subject: facts.subject.as_deref(),
            reason,
            request_id: ctx.rid,
            detail: Some(serde_json::json!({
                "issuer": facts.issuer,
                "external_subject": facts.external_subject,
                "assertion_jti": facts.assertion_jti,
                "resource": facts.resource,
                "scope": scope,
                "description": description,
            })),
        },
    )
    .await;
    result.map_err(|(_, err)| err)
}

fn refuse(reason: &'static str, description: impl Into<String>) -> Refusal {
    (reason, Error::invalid_grant(description))
}

fn store(e: StoreError) -> Refusal {
    ("storage", e.into())
}

async fn grant(ctx: &TokenRequest<'_>, facts: &mut Facts) -> std::result::Result<Issued, Refusal> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    let db = server.env().sql.as_ref();
    if client.is_public() {
        // draft-ietf-oauth-identity-assertion-authz-grant §7.1.
        return Err((
            "public_client",
            Error::new(
                ErrorCode::UnauthorizedClient,
                "the JWT bearer grant is only available to confidential clients",
            ),
        ));
    }
    let assertion = match params.get("assertion") {
        Some(a) if !a.is_empty() => a,
        _ => {
            return Err((
                "missing_assertion",
                Error::invalid_request("missing parameter 'assertion'"),
            ))
        }
    };
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(refuse(
            "malformed",
            format!("the assertion exceeds {MAX_ASSERTION_BYTES} bytes"),
        ));
    }
    let header = jose::header(assertion)
        .map_err(|_| refuse("malformed", "the assertion is not a compact JWS"))?;
    if header.get("typ").and_then(Value::as_str) != Some(ID_JAG_TYP) {
        return Err(refuse(
            "wrong_typ",
            format!("the assertion's typ must be '{ID_JAG_TYP}'"),
        ));
    }

    // The issuer decides the key, so it is read before the signature is checked; nothing
    // else is trusted until the signature verifies.
    let unverified = unverified_claims(assertion)?;
    let Some(iss) = non_empty(&unverified, "iss") else {
        return Err(refuse("missing_claim", "the assertion has no 'iss' claim"));
    };
    facts.issuer = Some(truncate(iss, 256).to_owned());
    let Some(trusted) = idps::get(db, iss).await.map_err(store)? else {
        return Err(refuse(
            "untrusted_issuer",
            "the assertion's issuer is not a trusted identity provider",
        ));
    };
    let kid = header.get("kid").and_then(Value::as_str);
    let jwk = match idp::key_for(server, &trusted, kid).await {
        Ok(jwk) => jwk,
        Err(KeyError::UnknownKey) => {
            return Err(refuse(
                "unknown_key",
                "no ES256 key of the identity provider matches the assertion's kid",
            ))
        }
        Err(KeyError::Unavailable(why)) => {
            return Err(refuse(
                "keys_unavailable",
                format!(
                    "the identity provider's keys could not be obtained: {}",
                    truncate(&why, 200)
                ),
            ))
        }
        Err(KeyError::Store(e)) => return Err(store(e)),
    };
    let claims = jose::verify_with_jwk(server.env().crypto.as_ref(), assertion, &jwk)
        .await
        .map_err(|e| match e {
            JwtError::Algorithm => refuse("algorithm", "only ES256 assertions are accepted"),
            JwtError::Claims(_) | JwtError::Malformed => {
                refuse("malformed", "the assertion's claims are malformed")
            }
            _ => refuse("bad_signature", "the assertion's signature does not verify"),
        })?;
    let claims = Value::Object(claims);
    if claims.get("iss").and_then(Value::as_str) != Some(trusted.issuer.as_str()) {
        return Err(refuse("malformed", "the assertion's issuer changed"));
    }
    let checked = check_claims(ctx, &claims)?;
    facts.external_subject = Some(checked.sub.to_owned());
    facts.assertion_jti = Some(checked.jti.to_owned());

    // The resource: the assertion's and the request's must agree.
    let resource_param = params.get("resource");
    let resource_claim = match claims.get("resource") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.as_str()),
        Some(_) => {
            return Err(refuse(
                "malformed",
                "the assertion's resource claim must be a string",
            ))
        }
    };
    if let (Some(p), Some(c)) = (resource_param, resource_claim) {
        if p != c {
            return Err((
                "resource_mismatch",
                Error::invalid_target(
                    "the resource parameter differs from the assertion's resource",
                ),
            ));
        }
    }
    let resource = crate::resource::select(server, resource_param.or(resource_claim))
        .await
        .map_err(|e| ("invalid_target", e))?;
    facts.resource = Some(resource.uri.clone());
    if !trusted.allowed_audiences.is_empty() && !trusted.allowed_audiences.contains(&resource.uri) {
        return Err((
            "audience_not_allowed",
            Error::new(
                ErrorCode::AccessDenied,
                "the identity provider may not grant access to this resource",
            ),
        ));
    }
    let policies = idps::matching_policies(db, &trusted.issuer, &client.client_id, &resource.uri)
        .await
        .map_err(store)?;
    if policies.is_empty() {
        return Err((
            "no_policy",
            Error::new(
                ErrorCode::AccessDenied,
                "no policy allows this client to get tokens for this resource from this identity provider",
            ),
        ));
    }

    // Scope: requested (within catalog and ceiling) ∩ assertion ∩ policy.
    let mut scopes = crate::resource::select_scopes(params.get("scope"), &resource, client)
        .map_err(|e| ("invalid_scope", e))?;
    match claims.get("scope") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            let granted = crate::scope::parse(s).map_err(|_| {
                refuse(
                    "malformed",
                    "the assertion's scope claim is not a valid scope",
                )
            })?;
            scopes.retain(|s| granted.contains(s));
        }
        Some(_) => {
            return Err(refuse(
                "malformed",
                "the assertion's scope claim must be a string",
            ))
        }
    }
    scopes.retain(|s| policies.iter().any(|p| p.scopes.contains(s)));
    if scopes.is_empty() {
        return Err((
            "no_scope",
            Error::invalid_scope(
                "no scope remains within the request, the assertion, the client's scope and the policy",
            ),
        ));
    }
    let scope = crate::scope::join(&scopes);

    let subject = idp::local_subject(server, &trusted.issuer, checked.sub)
        .await
        .map_err(store)?;
    facts.subject = Some(subject.clone());

    // Every other check passed: spend the jti (single use until the assertion can no longer
    // be accepted anyway).
    let now = server.now();
    let spent_until = checked.exp.min(checked.iat + MAX_ASSERTION_AGE) + CLOCK_SKEW;
    let key = format!("idjag:{}:{}", trusted.issuer, checked.jti);
    if !replay::reserve(db, &key, spent_until, now)
        .await
        .map_err(store)?
    {
        return Err(refuse("replayed", "the assertion has already been used"));
    }

    let ttl = server
        .config()
        .access_token_ttl
        .min(checked.exp - now)
        .max(1);
    let (jwt, access) = issue::access_token(
        server,
        &AccessTokenSpec {
            sub: &subject,
            aud: &resource.uri,
            client_id: &client.client_id,
            scope: &scope,
            ttl,
            grant_id: None,
            auth_time: claims.get("auth_time").and_then(Value::as_i64),
            dpop_jkt: ctx.dpop_jkt,
            act: None,
            parent_jti: None,
        },
    )
    .await
    .map_err(|e| ("issue_failed", e))?;
    Ok(Issued {
        access_token: jwt,
        token_type: Issued::token_type_for(ctx.dpop_jkt),
        issued_token_type: None,
        expires_in: ttl,
        scope,
        refresh_token: None,
        subject: access.sub,
        jti: access.jti,
        resource: resource.uri,
    })
}

/// The claims every assertion must carry, checked.
struct Checked<'a> {
    sub: &'a str,
    jti: &'a str,
    exp: i64,
    iat: i64,
}

/// X5 / J5 claim checks on the verified claims: audience, time window, required claims and
/// the client.
fn check_claims<'a>(
    ctx: &TokenRequest<'_>,
    claims: &'a Value,
) -> std::result::Result<Checked<'a>, Refusal> {
    let issuer = ctx.server.issuer();
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(refuse(
            "wrong_audience",
            "the assertion's aud must be this authorization server's issuer",
        ));
    }
    let now = ctx.server.now();
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(refuse("missing_claim", "the assertion has no 'exp' claim"));
    };
    if exp <= now {
        return Err(refuse("expired", "the assertion has expired"));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return Err(refuse("missing_claim", "the assertion has no 'iat' claim"));
    };
    if iat > now + CLOCK_SKEW {
        return Err(refuse(
            "issued_in_future",
            "the assertion's iat is in the future",
        ));
    }
    if now - iat > MAX_ASSERTION_AGE {
        return Err(refuse(
            "too_old",
            format!("the assertion was issued more than {MAX_ASSERTION_AGE} seconds ago"),
        ));
    }
    if let Some(nbf) = claims.get("nbf") {
        match nbf.as_i64() {
            Some(nbf) if nbf <= now + CLOCK_SKEW => {}
            Some(_) => return Err(refuse("not_yet_valid", "the assertion is not valid yet")),
            None => return Err(refuse("malformed", "the assertion's nbf is not a number")),
        }
    }
    let mut required = [("sub", ""), ("jti", ""), ("client_id", "")];
    for (name, value) in required.iter_mut() {
        match non_empty(claims, name) {
            Some(v) if v.len() <= MAX_CLAIM_LEN => *value = v,
            Some(_) => {
                return Err(refuse(
                    "malformed",
                    format!("the assertion's '{name}' claim is too long"),
                ))
            }
            None => {
                return Err(refuse(
                    "missing_claim",
                    format!("the assertion has no '{name}' claim"),
                ))
            }
        }
    }
    let [(_, sub), (_, jti), (_, client_id)] = required;
    if client_id != ctx.client.client_id {
        return Err(refuse(
            "client_mismatch",
            "the assertion was issued to another client",
        ));
    }
    Ok(Checked { sub, jti, exp, iat })
}

/// A non-empty string claim.
fn non_empty<'a>(claims: &'a Value, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The payload of the assertion before its signature is checked (only to find the issuer).
fn unverified_claims(assertion: &str) -> std::result::Result<Value, Refusal> {
    let malformed = || refuse("malformed", "the assertion is not a compact JWS");
    let mut parts = assertion.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = crate::crypto::b64_decode(payload).ok_or_else(malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(malformed()),
    }
}
