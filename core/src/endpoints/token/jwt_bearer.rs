//! The JWT bearer authorization grant (RFC 7523 §2.1, §3) with Identity Assertion JWT
//! Authorization Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant §4.3), the
//! grant of the MCP enterprise-managed authorization extension: a confidential client presents
//! an assertion its enterprise IdP issued for one user, and gets an access token for one
//! resource without a browser, a consent screen or a refresh token.
//!
//! SECURITY-CHECKLIST X5 (each refused on its own, as `invalid_grant` unless said otherwise):
//! an issuer that is not a trusted IdP; a `typ` other than exactly `oauth-id-jag+jwt`
//! (RFC 8725 §3.11); an `aud` that is not our issuer (a string, or an array containing it);
//! a missing or past `exp`; a missing `iat`, one older than [`MAX_ASSERTION_AGE`] or more
//! than the clock skew (`jwt_clock_skew_seconds`) in the future; an `nbf` more than the skew
//! ahead; missing `sub`, `jti` or `client_id`; a `client_id` other than the authenticated client; a signature that
//! does not verify with the IdP key named by `kid` (the key decides ES256, RS256, PS256 or EdDSA: J1–J4); a replayed `jti`.
//! The `jti` is reserved (atomically, in SQL) only after every other check has passed, so an
//! assertion refused for any other reason is not spent.
//!
//! Then: the `resource` (assertion claim or request parameter; when both are present they
//! must be equal, else `invalid_target`) selects a registered resource (RFC 8707); a policy
//! (`idp_policies`) must allow this IdP, client and resource (403 `access_denied` otherwise);
//! the scope is the requested scope (checked against the catalog and the client's ceiling as
//! for every grant), narrowed to the assertion's `scope` and the policy's scopes, and must not
//! end up empty (`invalid_scope`); the policies' rules (groups, `auth_time`, `acr`) then
//! withhold scopes or refuse the grant ([`super::id_jag_policy`]). The subject is the
//! explicit mapping of the IdP's `sub`, or the automatic [`idp::automatic_subject`]. The access token lives at most until the
//! assertion expires, and is bound to the DPoP key when a proof came with the request.

use serde_json::{Map, Value};

use super::assertion_grant::{
    audience_matches, check_time_window, refuse, required_strings, store, verify_with_key, Refusal,
};
use super::id_jag_policy;
use super::mint::{mint, RefreshPolicy, TokenDecision};
use super::{Issued, TokenRequest};
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::idp;
use crate::jose;
use crate::request::Params;
use crate::store::repo::idps::{IdpRow, PolicyRow};
use crate::store::repo::resources::ResourceRow;
use crate::store::repo::{idps, replay};
use crate::text::truncate;

/// The `typ` header of an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §3).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
/// The authorization grant profile advertised in metadata
/// (`authorization_grant_profiles_supported`).
pub const ID_JAG_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";
/// Oldest accepted assertion (`now - iat`), seconds.
pub const MAX_ASSERTION_AGE: i64 = 300;
/// Largest accepted assertion, bytes.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// What the audit event reports about the assertion.
#[derive(Default)]
struct Facts {
    issuer: Option<String>,
    external_subject: Option<String>,
    assertion_jti: Option<String>,
    subject: Option<String>,
    resource: Option<String>,
    /// The policy rule that refused the grant (policy, rule, scope, condition).
    policy: Option<Value>,
}

/// Exchanges an ID-JAG for an access token, and audits the grant or denial
/// (`token.jwt_bearer`, with the reason and the issuer).
pub async fn exchange(ctx: &TokenRequest<'_>) -> Result<Issued> {
    let mut facts = Facts::default();
    let result = match grant(ctx, &mut facts).await {
        Ok(decision) => mint(ctx.server, ctx.client, &decision)
            .await
            .map_err(|e| ("issue_failed", e)),
        Err(refusal) => Err(refusal),
    };
    let (success, reason, description, scope) = match &result {
        Ok(issued) => (true, None, None, Some(issued.scope.as_str())),
        Err((reason, err)) => (false, Some(*reason), Some(err.description.as_str()), None),
    };
    audit::record(
        ctx.server.env(),
        Event {
            action: "token.jwt_bearer",
            success,
            client_id: Some(&ctx.client.client_id),
            subject: facts.subject.as_deref(),
            reason,
            request: ctx.rid,
            detail: Some(serde_json::json!({
                "issuer": facts.issuer,
                "external_subject": facts.external_subject,
                "assertion_jti": facts.assertion_jti,
                "resource": facts.resource,
                "scope": scope,
                "description": description,
                "policy": facts.policy,
            })),
            label: None,
        },
    )
    .await;
    result.map_err(|(_, err)| err)
}

/// The grant's steps: the request, the assertion's signature, its claims, the resource, the
/// IdP's and the operator's policy, the scope, the local subject; then the `jti` is spent
/// (the only state change) and the decision made.
async fn grant(
    ctx: &TokenRequest<'_>,
    facts: &mut Facts,
) -> std::result::Result<TokenDecision, Refusal> {
    let (server, client, params) = (ctx.server, ctx.client, ctx.params);
    let db = server.env().sql.as_ref();
    let (assertion, header) = check_request(client, params)?;
    let (trusted, claims) = verify_assertion(ctx, assertion, &header, facts).await?;
    let now = server.now();
    let skew = server.config().jwt_clock_skew_seconds;
    let checked = check_claims(&claims, server.issuer(), &client.client_id, now, skew)?;
    facts.external_subject = Some(checked.sub.to_owned());
    facts.assertion_jti = Some(checked.jti.to_owned());

    let wanted = requested_resource(params.get("resource"), &claims)?;
    let resource = crate::resource::select(server, wanted)
        .await
        .map_err(|e| ("invalid_target", e))?;
    facts.resource = Some(resource.uri.clone());
    check_audience(&trusted, &resource)?;
    let policies = idps::matching_policies(db, &trusted.issuer, &client.client_id, &resource.uri)
        .await
        .map_err(store)?;
    let scopes = scopes(params.get("scope"), &claims, &resource, client, &policies)?;

    let subject = idp::local_subject(server, &trusted.issuer, checked.sub)
        .await
        .map_err(store)?;
    facts.subject = Some(subject.clone());
    let explicit = params.get("scope").is_some();
    let scopes = id_jag_policy::apply(server, &policies, scopes, &claims, &subject, explicit)
        .await
        .map_err(|r| {
            facts.policy = Some(r.detail);
            (r.reason, r.error)
        })?;

    // Every other check passed: spend the jti (single use until the assertion can no longer
    // be accepted anyway).
    let spent_until = checked.exp.min(checked.iat + MAX_ASSERTION_AGE) + skew;
    let key = format!("idjag:{}:{}", trusted.issuer, checked.jti);
    if !replay::reserve(db, &key, spent_until, now)
        .await
        .map_err(store)?
    {
        return Err(refuse("replayed", "the assertion has already been used"));
    }
    Ok(decide(
        subject,
        &resource,
        &scopes,
        client,
        &checked,
        ctx.dpop_jkt,
        server.config().access_token_ttl,
        now,
    ))
}

/// The token an accepted assertion yields: the local subject, the resource, the narrowed
/// scope, bound to the proof's key, living at most until the assertion expires (at least one
/// second), the assertion's `auth_time`, and no refresh token.
#[allow(clippy::too_many_arguments)]
fn decide(
    subject: String,
    resource: &ResourceRow,
    scopes: &[String],
    client: &Client,
    checked: &Checked<'_>,
    dpop_jkt: Option<&str>,
    access_ttl: i64,
    now: i64,
) -> TokenDecision {
    TokenDecision {
        subject,
        resource: resource.uri.clone(),
        scope: crate::scope::join(scopes),
        client_id: client.client_id.clone(),
        lifetime: access_ttl.min(checked.exp - now).max(1),
        dpop_jkt: dpop_jkt.map(str::to_owned),
        refresh: RefreshPolicy::None,
        act: None,
        parent_jti: None,
        grant_id: None,
        auth_time: checked.auth_time,
        issued_token_type: None,
        not_after: Some(checked.exp),
    }
}

/// The request itself: a confidential client (draft §7.1), an `assertion` within
/// [`MAX_ASSERTION_BYTES`] that is a compact JWS with `typ` [`ID_JAG_TYP`] (RFC 8725 §3.11).
fn check_request<'a>(
    client: &Client,
    params: &'a Params,
) -> std::result::Result<(&'a str, Map<String, Value>), Refusal> {
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
    Ok((assertion, header))
}

/// The trusted IdP named by the (unverified) `iss`, and the claims once the signature
/// verifies with its key named by `kid` (the key decides the algorithm, J1–J4). The issuer decides the key, so
/// it is read before the signature is checked; nothing else is trusted until it verifies.
async fn verify_assertion(
    ctx: &TokenRequest<'_>,
    assertion: &str,
    header: &Map<String, Value>,
    facts: &mut Facts,
) -> std::result::Result<(IdpRow, Value), Refusal> {
    let server = ctx.server;
    let unverified = unverified_claims(assertion)?;
    let Some(iss) = non_empty(&unverified, "iss") else {
        return Err(refuse("missing_claim", "the assertion has no 'iss' claim"));
    };
    facts.issuer = Some(truncate(iss, 256).to_owned());
    let Some(trusted) = idps::get(server.env().sql.as_ref(), iss)
        .await
        .map_err(store)?
    else {
        return Err(refuse(
            "untrusted_issuer",
            "the assertion's issuer is not a trusted identity provider",
        ));
    };
    let kid = header.get("kid").and_then(Value::as_str);
    let key = idp::key_for(server, &trusted, kid).await;
    let claims =
        verify_with_key(server, assertion, key, &trusted.issuer, "identity provider").await?;
    Ok((trusted, claims))
}

/// The resource asked for: the `resource` parameter or the assertion's `resource` claim;
/// when both are present they must be equal (`invalid_target`).
fn requested_resource<'a>(
    param: Option<&'a str>,
    claims: &'a Value,
) -> std::result::Result<Option<&'a str>, Refusal> {
    let claim = match claims.get("resource") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.as_str()),
        Some(_) => {
            return Err(refuse(
                "malformed",
                "the assertion's resource claim must be a string",
            ))
        }
    };
    if let (Some(p), Some(c)) = (param, claim) {
        if p != c {
            return Err((
                "resource_mismatch",
                Error::invalid_target(
                    "the resource parameter differs from the assertion's resource",
                ),
            ));
        }
    }
    Ok(param.or(claim))
}

/// The IdP's `allowed_audiences` (empty: any) must include the resource (`access_denied`).
fn check_audience(trusted: &IdpRow, resource: &ResourceRow) -> std::result::Result<(), Refusal> {
    if !trusted.allowed_audiences.is_empty() && !trusted.allowed_audiences.contains(&resource.uri) {
        return Err((
            "audience_not_allowed",
            Error::new(
                ErrorCode::AccessDenied,
                "the identity provider may not grant access to this resource",
            ),
        ));
    }
    Ok(())
}

/// The scope: requested (within catalog and ceiling) ∩ assertion ∩ policies, not empty. No
/// matching policy at all is `access_denied`.
fn scopes(
    requested: Option<&str>,
    claims: &Value,
    resource: &ResourceRow,
    client: &Client,
    policies: &[PolicyRow],
) -> std::result::Result<Vec<String>, Refusal> {
    if policies.is_empty() {
        return Err((
            "no_policy",
            Error::new(
                ErrorCode::AccessDenied,
                "no policy allows this client to get tokens for this resource from this identity provider",
            ),
        ));
    }
    let mut scopes = crate::resource::select_scopes(requested, resource, client)
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
    Ok(scopes)
}

/// The claims every assertion must carry, checked.
#[derive(Debug)]
struct Checked<'a> {
    sub: &'a str,
    jti: &'a str,
    exp: i64,
    iat: i64,
    auth_time: Option<i64>,
}

/// X5 / J5 claim checks on the verified claims: audience (`issuer`), time window at `now`
/// with `skew` (`jwt_clock_skew_seconds`), required claims, and the authenticated client.
fn check_claims<'a>(
    claims: &'a Value,
    issuer: &str,
    client_id: &str,
    now: i64,
    skew: i64,
) -> std::result::Result<Checked<'a>, Refusal> {
    if !audience_matches(claims, |a| a == issuer) {
        return Err(refuse(
            "wrong_audience",
            "the assertion's aud must be this authorization server's issuer",
        ));
    }
    let (exp, iat) = check_time_window(claims, now, skew)?;
    if now - iat > MAX_ASSERTION_AGE {
        return Err(refuse(
            "too_old",
            format!("the assertion was issued more than {MAX_ASSERTION_AGE} seconds ago"),
        ));
    }
    let [sub, jti, assertion_client] = required_strings(claims, ["sub", "jti", "client_id"])?;
    if assertion_client != client_id {
        return Err(refuse(
            "client_mismatch",
            "the assertion was issued to another client",
        ));
    }
    Ok(Checked {
        sub,
        jti,
        exp,
        iat,
        auth_time: claims.get("auth_time").and_then(Value::as_i64),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::token::assertion_grant::MAX_CLAIM_LEN;
    use crate::endpoints::token::mint::test_values::{client, resource};
    use serde_json::json;

    const AS: &str = "https://as.example";
    const NOW: i64 = 10_000;
    /// The default `jwt_clock_skew_seconds`.
    const CLOCK_SKEW: i64 = 60;

    fn assertion_claims() -> Value {
        json!({
            "iss": "https://idp.example", "aud": AS, "sub": "ext-1", "jti": "a1",
            "client_id": "c1", "exp": NOW + 120, "iat": NOW - 10, "auth_time": NOW - 30,
        })
    }

    fn reason<T: std::fmt::Debug>(r: std::result::Result<T, Refusal>) -> &'static str {
        r.unwrap_err().0
    }

    fn policy(scopes: &[&str]) -> PolicyRow {
        PolicyRow {
            id: "p".into(),
            issuer: "https://idp.example".into(),
            client_id: "c1".into(),
            resource: "https://mcp.example/mcp".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            rules: Vec::new(),
            created_at: 0,
        }
    }

    #[test]
    fn check_request_needs_a_confidential_client_and_an_id_jag() {
        let confidential = client("private_key_jwt", &[]);
        let header = crate::crypto::b64(br#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#);
        let good = format!("{header}.e30.sig");
        let form = |a: &str| Params::parse(format!("assertion={a}").as_bytes()).unwrap();
        let params = form(&good);
        let (a, h) = check_request(&confidential, &params).unwrap();
        assert_eq!(a, good);
        assert_eq!(h["typ"], ID_JAG_TYP);
        assert_eq!(
            reason(check_request(&client("none", &[]), &form(&good))),
            "public_client"
        );
        assert_eq!(
            reason(check_request(&confidential, &Params::parse(b"").unwrap())),
            "missing_assertion"
        );
        let jwt = crate::crypto::b64(br#"{"alg":"ES256","typ":"JWT"}"#);
        assert_eq!(
            reason(check_request(&confidential, &form(&format!("{jwt}.e30.s")))),
            "wrong_typ"
        );
    }

    #[test]
    fn x5_claim_checks() {
        let c = assertion_claims();
        let ok = check_claims(&c, AS, "c1", NOW, CLOCK_SKEW).unwrap();
        assert_eq!((ok.sub, ok.jti, ok.exp), ("ext-1", "a1", NOW + 120));
        assert_eq!(ok.auth_time, Some(NOW - 30));
        let with = |k: &str, v: Value| {
            let mut c = assertion_claims();
            c[k] = v;
            c
        };
        let cases = [
            (with("aud", json!("https://other")), "wrong_audience"),
            (with("exp", json!(NOW)), "expired"),
            (with("exp", Value::Null), "missing_claim"),
            (with("iat", json!(NOW + CLOCK_SKEW + 1)), "issued_in_future"),
            (with("iat", json!(NOW - MAX_ASSERTION_AGE - 1)), "too_old"),
            (with("nbf", json!(NOW + CLOCK_SKEW + 1)), "not_yet_valid"),
            (with("nbf", json!("soon")), "malformed"),
            (with("sub", json!("")), "missing_claim"),
            (
                with("jti", json!("x".repeat(MAX_CLAIM_LEN + 1))),
                "malformed",
            ),
            (with("client_id", json!("c2")), "client_mismatch"),
        ];
        for (claims, want) in &cases {
            assert_eq!(
                reason(check_claims(claims, AS, "c1", NOW, CLOCK_SKEW)),
                *want,
                "{claims}"
            );
        }
        let listed = with("aud", json!(["https://other", AS]));
        assert!(check_claims(&listed, AS, "c1", NOW, CLOCK_SKEW).is_ok());
        // The edges are accepted: expiring in one second, exactly the maximum age, exactly
        // the allowed skew.
        for (k, v) in [
            ("exp", NOW + 1),
            ("iat", NOW - MAX_ASSERTION_AGE),
            ("iat", NOW + CLOCK_SKEW),
            ("nbf", NOW + CLOCK_SKEW),
        ] {
            let edge = with(k, json!(v));
            assert!(
                check_claims(&edge, AS, "c1", NOW, CLOCK_SKEW).is_ok(),
                "{k} {v}"
            );
        }
    }

    #[test]
    fn resource_from_parameter_or_claim_and_they_must_agree() {
        let none = json!({});
        let claimed = json!({"resource": "https://r"});
        assert_eq!(requested_resource(None, &none).unwrap(), None);
        assert_eq!(
            requested_resource(None, &claimed).unwrap(),
            Some("https://r")
        );
        assert_eq!(
            requested_resource(Some("https://r"), &claimed).unwrap(),
            Some("https://r")
        );
        assert_eq!(
            reason(requested_resource(Some("https://x"), &claimed)),
            "resource_mismatch"
        );
        assert_eq!(
            reason(requested_resource(None, &json!({"resource": 1}))),
            "malformed"
        );
    }

    #[test]
    fn idp_audiences_restrict_resources() {
        let r = resource("https://mcp.example/mcp", &["a"]);
        let mut idp = IdpRow {
            issuer: "https://idp.example".into(),
            jwks_uri: None,
            jwks: None,
            allowed_audiences: Vec::new(),
            created_at: 0,
        };
        assert!(check_audience(&idp, &r).is_ok());
        idp.allowed_audiences = vec!["https://other".into()];
        assert_eq!(reason(check_audience(&idp, &r)), "audience_not_allowed");
    }

    #[test]
    fn scope_is_request_within_assertion_and_policies() {
        let c = client("private_key_jwt", &[]);
        let r = resource("https://mcp.example/mcp", &["a", "b", "c"]);
        let claims = json!({"scope": "a b"});
        let got = scopes(None, &claims, &r, &c, &[policy(&["b", "c"])]).unwrap();
        assert_eq!(got, vec!["b".to_owned()]);
        assert_eq!(reason(scopes(None, &claims, &r, &c, &[])), "no_policy");
        assert_eq!(
            reason(scopes(Some("c"), &claims, &r, &c, &[policy(&["c"])])),
            "no_scope"
        );
        assert_eq!(
            reason(scopes(Some("z"), &claims, &r, &c, &[policy(&["a"])])),
            "invalid_scope"
        );
        assert_eq!(
            reason(scopes(
                None,
                &json!({"scope": 3}),
                &r,
                &c,
                &[policy(&["a"])]
            )),
            "malformed"
        );
    }

    #[test]
    fn token_lives_at_most_until_the_assertion_expires() {
        let c = client("private_key_jwt", &[]);
        let r = resource("https://mcp.example/mcp", &["a"]);
        let claims = assertion_claims();
        let checked = check_claims(&claims, AS, "c1", NOW, CLOCK_SKEW).unwrap();
        let scopes = vec!["a".to_owned()];
        let d = decide("u1".into(), &r, &scopes, &c, &checked, Some("k"), 900, NOW);
        assert_eq!(d.lifetime, 120);
        assert_eq!(d.subject, "u1");
        assert_eq!(d.client_id, "c1");
        assert_eq!(d.resource, "https://mcp.example/mcp");
        assert_eq!(d.scope, "a");
        assert_eq!(d.dpop_jkt.as_deref(), Some("k"));
        assert_eq!(d.auth_time, Some(NOW - 30));
        assert_eq!(d.refresh, RefreshPolicy::None);
        assert_eq!((d.grant_id, d.parent_jti, d.act), (None, None, None));
        let d = decide("u1".into(), &r, &scopes, &c, &checked, None, 60, NOW);
        assert_eq!(d.lifetime, 60);
        let d = decide("u1".into(), &r, &scopes, &c, &checked, None, 900, NOW + 500);
        assert_eq!(d.lifetime, 1, "never below one second");
    }
}
