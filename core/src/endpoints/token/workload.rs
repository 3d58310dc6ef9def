//! Workload identity federation at the token endpoint (MCP ext-auth draft "Workload Identity
//! Federation", SEP-1933; RFC 7523 §2.1, §3): an agent running in CI or Kubernetes presents
//! the JWT its platform issued it (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//! `assertion`, `resource`) with no client authentication at all, and gets an access token.
//!
//! A JWT bearer request that presents no client credentials (no `Authorization` header, no
//! `client_id`, `client_secret` or `client_assertion`) comes here; one that does is the
//! ID-JAG grant of [`super::jwt_bearer`]. Each refusal below is `invalid_grant` (the draft's
//! error for an invalid JWT or an unauthorized workload) unless said otherwise:
//! - the request: a missing `assertion` (`invalid_request`), one over [`MAX_ASSERTION_BYTES`]
//!   or not a compact JWS, a `typ` other than absent or `JWT` (so that ID-JAGs, access tokens
//!   and DPoP proofs cannot be replayed as workload credentials, RFC 8725 §3.11);
//! - the issuer: not a trusted workload issuer; the signature does not verify with its key
//!   named by `kid` (the key decides the algorithm: `none`, HS256 with a public key and other
//!   alg confusion fail, J1–J4);
//! - the claims (J5): `aud` not one of the issuer's accepted audiences (by default our token
//!   endpoint URL, as the draft requires); `exp` missing or past; `iat` missing or more than
//!   [`CLOCK_SKEW`] ahead; a lifetime (`exp - iat`) over [`MAX_LIFETIME`]; `nbf` ahead;
//!   missing `sub` or `jti`;
//! - the rule: no rule of the issuer for the resource whose subject pattern matches `sub`
//!   (the most specific matching rule decides the client and the scope ceiling); the rule's
//!   client no longer exists or is suspended (`unauthorized_client`);
//! - the resource (`invalid_target`) and the scope (`invalid_scope`: outside the rule's
//!   scopes or the resource's catalog, or nothing left);
//! - a replayed `jti`: reserved atomically in SQL (single use across every instance) only
//!   after every other check passed, until the JWT expires.
//!
//! The token: `sub` and `client_id` are the rule's client (the workload acts as itself, as a
//! machine client does with client credentials), `aud` the resource, no refresh token, bound
//! to the DPoP key when a proof came with the request, living at most until the workload JWT
//! expires. The audit event `token.workload` records the issuer, the workload's `sub`, its
//! `jti` and the rule.

use bytes::Bytes;
use http::Request;
use serde_json::{Map, Value};

use super::assertion_grant::{
    audience_matches, check_time_window, refuse, required_strings, store, verify_with_key, Refusal,
};
use super::mint::{mint, RefreshPolicy, TokenDecision};
use super::Issued;
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::jose;
use crate::request::{Params, RequestId};
use crate::store::repo::replay;
use crate::store::repo::resources::ResourceRow;
use crate::store::repo::workloads::{self, IssuerRow, RuleRow};
use crate::text::truncate;
use crate::workload;

/// Largest accepted workload JWT, bytes.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// Tolerated clock difference for `iat` and `nbf` in the future, seconds (J5).
pub const CLOCK_SKEW: i64 = 60;
/// Longest accepted workload JWT lifetime (`exp - iat`), seconds: a day. Its `jti` is kept
/// until it expires.
pub const MAX_LIFETIME: i64 = 24 * 3600;

/// A granted workload token, with what the token endpoint reports about it.
pub struct Granted {
    /// The tokens.
    pub issued: Issued,
    /// The client the token was issued to (the rule's).
    pub client_id: String,
    /// Headers for the response (`DPoP-Nonce`).
    pub headers: Vec<(http::HeaderName, String)>,
}

/// What the audit event reports.
#[derive(Default)]
struct Facts {
    issuer: Option<String>,
    workload: Option<String>,
    jti: Option<String>,
    resource: Option<String>,
    rule: Option<String>,
    client_id: Option<String>,
}

/// Whether a JWT bearer request is a workload's: it presents no client credentials at all.
pub fn is_workload_request(headers: &http::HeaderMap, params: &Params) -> bool {
    !headers.contains_key(http::header::AUTHORIZATION)
        && [
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
        ]
        .iter()
        .all(|p| params.get(p).is_none())
}

/// Exchanges a workload JWT for an access token, and audits the grant or the refusal
/// (`token.workload`).
pub async fn exchange(
    server: &Context,
    req: &Request<Bytes>,
    params: &Params,
    rid: Option<&RequestId>,
) -> Result<Granted> {
    let mut facts = Facts::default();
    let result = grant(server, req, params, &mut facts).await;
    let (success, reason, description, scope) = match &result {
        Ok(g) => (true, None, None, Some(g.issued.scope.as_str())),
        Err((reason, err)) => (false, Some(*reason), Some(err.description.as_str()), None),
    };
    audit::record(
        server.env(),
        Event {
            action: "token.workload",
            success,
            client_id: facts.client_id.as_deref(),
            subject: facts.client_id.as_deref().filter(|_| success),
            reason,
            request: rid,
            detail: Some(serde_json::json!({
                "issuer": facts.issuer,
                "workload_subject": facts.workload,
                "assertion_jti": facts.jti,
                "resource": facts.resource,
                "rule": facts.rule,
                "scope": scope,
                "description": description,
            })),
            label: None,
        },
    )
    .await;
    result.map_err(|(_, err)| err)
}

async fn grant(
    server: &Context,
    req: &Request<Bytes>,
    params: &Params,
    facts: &mut Facts,
) -> std::result::Result<Granted, Refusal> {
    let db = server.env().sql.as_ref();
    let (assertion, header) = check_request(params)?;
    let (issuer, claims) = verify(server, assertion, &header, facts).await?;
    let now = server.now();
    let audiences = workload::accepted_audiences(server, &issuer);
    let checked = check_claims(&claims, &audiences, now)?;
    facts.workload = Some(truncate(checked.sub, 256).to_owned());
    facts.jti = Some(truncate(checked.jti, 256).to_owned());

    let resource = crate::resource::select(server, params.get("resource"))
        .await
        .map_err(|e| ("invalid_target", e))?;
    facts.resource = Some(resource.uri.clone());
    let rules = workloads::rules_for(db, &issuer.issuer, &resource.uri)
        .await
        .map_err(store)?;
    let Some(rule) = best_rule(&rules, checked.sub) else {
        return Err(refuse(
            "no_rule",
            "the workload is not authorized to access the requested resource",
        ));
    };
    facts.rule = Some(rule.id.clone());
    facts.client_id = Some(rule.client_id.clone());
    let scopes = scopes(params.get("scope"), rule, &resource)?;
    let client = rule_client(server, rule).await?;
    let proof = crate::dpop::check_token_request(server, req, &client)
        .await
        .map_err(|e| ("dpop", e))?;

    // Every other check passed: spend the jti until the JWT expires.
    let key = format!("workload:{}:{}", issuer.issuer, checked.jti);
    if !replay::reserve(db, &key, checked.exp + CLOCK_SKEW, now)
        .await
        .map_err(store)?
    {
        return Err(refuse("replayed", "the workload JWT has already been used"));
    }
    let decision = decide(
        &client,
        &resource,
        &scopes,
        checked.exp,
        proof.jkt.as_deref(),
        server.config().access_token_ttl,
        now,
    );
    let issued = mint(server, &client, &decision)
        .await
        .map_err(|e| ("issue_failed", e))?;
    Ok(Granted {
        issued,
        client_id: client.client_id,
        headers: proof.response_headers,
    })
}

/// The request: an `assertion` within [`MAX_ASSERTION_BYTES`] that is a compact JWS whose
/// `typ` is absent or `JWT`.
fn check_request(params: &Params) -> std::result::Result<(&str, Map<String, Value>), Refusal> {
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
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => {
            return Err(refuse(
                "wrong_typ",
                "a workload JWT's typ must be absent or 'JWT'",
            ))
        }
    }
    Ok((assertion, header))
}

/// The trusted issuer named by the (unverified) `iss`, and the claims once the signature
/// verifies with its key named by `kid`.
async fn verify(
    server: &Context,
    assertion: &str,
    header: &Map<String, Value>,
    facts: &mut Facts,
) -> std::result::Result<(IssuerRow, Value), Refusal> {
    let unverified = unverified_claims(assertion)?;
    let Some(iss) = unverified
        .get("iss")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(refuse("missing_claim", "the assertion has no 'iss' claim"));
    };
    facts.issuer = Some(truncate(iss, 256).to_owned());
    let Some(issuer) = workloads::get_issuer(server.env().sql.as_ref(), iss)
        .await
        .map_err(store)?
    else {
        return Err(refuse(
            "untrusted_issuer",
            "the assertion's issuer is not a trusted workload issuer",
        ));
    };
    let kid = header.get("kid").and_then(Value::as_str);
    let key = workload::key_for(server, &issuer, kid).await;
    let claims = verify_with_key(server, assertion, key, &issuer.issuer, "workload issuer").await?;
    Ok((issuer, claims))
}

/// The claims every workload JWT must carry, checked.
#[derive(Debug)]
struct Checked<'a> {
    sub: &'a str,
    jti: &'a str,
    exp: i64,
}

/// J5 claim checks on the verified claims at `now`.
fn check_claims<'a>(
    claims: &'a Value,
    audiences: &[String],
    now: i64,
) -> std::result::Result<Checked<'a>, Refusal> {
    if !audience_matches(claims, |a| audiences.iter().any(|x| x == a)) {
        return Err(refuse(
            "wrong_audience",
            "the assertion's aud is not an audience this server accepts from its issuer",
        ));
    }
    let (exp, iat) = check_time_window(claims, now, CLOCK_SKEW)?;
    if exp - iat > MAX_LIFETIME {
        return Err(refuse(
            "lifetime_too_long",
            format!("the assertion lives longer than {MAX_LIFETIME} seconds"),
        ));
    }
    let [sub, jti] = required_strings(claims, ["sub", "jti"])?;
    Ok(Checked { sub, jti, exp })
}

/// The most specific rule whose subject pattern matches `sub` (ties: the first by id).
fn best_rule<'a>(rules: &'a [RuleRow], sub: &str) -> Option<&'a RuleRow> {
    rules
        .iter()
        .filter(|r| workload::matches(&r.subject, sub))
        .fold(None, |best: Option<&RuleRow>, r| match best {
            Some(b) if workload::specificity(&b.subject) >= workload::specificity(&r.subject) => {
                Some(b)
            }
            _ => Some(r),
        })
}

/// The scope: the requested one (every scope within the rule's and the resource's), or all
/// of the rule's the resource still offers; never empty.
fn scopes(
    requested: Option<&str>,
    rule: &RuleRow,
    resource: &ResourceRow,
) -> std::result::Result<Vec<String>, Refusal> {
    let allowed: Vec<String> = rule
        .scopes
        .iter()
        .filter(|s| resource.scopes.contains(s))
        .cloned()
        .collect();
    let scopes = match requested {
        Some(r) => {
            let wanted = crate::scope::parse(r).map_err(|e| ("invalid_scope", e))?;
            if let Some(s) = wanted.iter().find(|s| !allowed.contains(s)) {
                return Err((
                    "invalid_scope",
                    Error::invalid_scope(format!(
                        "scope '{}' is not granted to this workload for this resource",
                        truncate(s, 64)
                    )),
                ));
            }
            wanted
        }
        None => allowed,
    };
    if scopes.is_empty() {
        return Err((
            "no_scope",
            Error::invalid_scope("no scope is granted to this workload for this resource"),
        ));
    }
    Ok(scopes)
}

/// The rule's client, which must exist and not be suspended.
async fn rule_client(server: &Context, rule: &RuleRow) -> std::result::Result<Client, Refusal> {
    let Some(client) = crate::client_lookup::resolve(server, &rule.client_id)
        .await
        .map_err(|e| ("storage", e))?
    else {
        return Err(refuse(
            "client_missing",
            "the client the workload rule names does not exist",
        ));
    };
    let policy = crate::client_policy::load(server, &client.client_id)
        .await
        .map_err(|e| ("storage", e))?;
    crate::client_policy::check_not_suspended(policy.as_ref()).map_err(|e| ("suspended", e))?;
    Ok(client)
}

/// The token: the rule's client as subject and client, the resource, the scope, bound to
/// the proof's key, living at most until the workload JWT expires (at least one second).
fn decide(
    client: &Client,
    resource: &ResourceRow,
    scopes: &[String],
    exp: i64,
    dpop_jkt: Option<&str>,
    access_ttl: i64,
    now: i64,
) -> TokenDecision {
    TokenDecision {
        subject: client.client_id.clone(),
        resource: resource.uri.clone(),
        scope: crate::scope::join(scopes),
        client_id: client.client_id.clone(),
        lifetime: access_ttl.min(exp - now).max(1),
        dpop_jkt: dpop_jkt.map(str::to_owned),
        refresh: RefreshPolicy::None,
        act: None,
        parent_jti: None,
        grant_id: None,
        auth_time: None,
        issued_token_type: None,
        not_after: Some(exp),
    }
}

/// The payload before the signature is checked (only to find the issuer).
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

    const TOKEN: &str = "https://as.example/oauth/token";
    const NOW: i64 = 10_000;

    fn claims() -> Value {
        json!({
            "iss": "https://token.actions.githubusercontent.com", "aud": TOKEN,
            "sub": "repo:acme/app:ref:refs/heads/main", "jti": "j1",
            "exp": NOW + 300, "iat": NOW - 10,
        })
    }

    fn reason<T: std::fmt::Debug>(r: std::result::Result<T, Refusal>) -> &'static str {
        r.unwrap_err().0
    }

    fn rule(id: &str, subject: &str, client_id: &str, scopes: &[&str]) -> RuleRow {
        RuleRow {
            id: id.into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: subject.into(),
            resource: "https://mcp.example/mcp".into(),
            client_id: client_id.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            created_at: 0,
        }
    }

    #[test]
    fn j5_claim_checks() {
        let aud = vec![TOKEN.to_owned()];
        let c = claims();
        let ok = check_claims(&c, &aud, NOW).unwrap();
        assert_eq!(
            (ok.sub, ok.jti, ok.exp),
            ("repo:acme/app:ref:refs/heads/main", "j1", NOW + 300)
        );
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            c
        };
        let cases = [
            (with("aud", json!("https://as.example")), "wrong_audience"),
            (with("aud", json!(["https://other"])), "wrong_audience"),
            (with("exp", json!(NOW)), "expired"),
            (with("exp", Value::Null), "missing_claim"),
            (with("iat", Value::Null), "missing_claim"),
            (with("iat", json!(NOW + CLOCK_SKEW + 1)), "issued_in_future"),
            (
                with("iat", json!(NOW + 300 - MAX_LIFETIME - 1)),
                "lifetime_too_long",
            ),
            (with("nbf", json!(NOW + CLOCK_SKEW + 1)), "not_yet_valid"),
            (with("sub", json!("")), "missing_claim"),
            (with("jti", Value::Null), "missing_claim"),
            (
                with("jti", json!("x".repeat(MAX_CLAIM_LEN + 1))),
                "malformed",
            ),
        ];
        for (c, want) in &cases {
            assert_eq!(reason(check_claims(c, &aud, NOW)), *want, "{c}");
        }
        let listed = with("aud", json!(["https://other", TOKEN]));
        assert!(check_claims(&listed, &aud, NOW).is_ok());
    }

    #[test]
    fn typ_must_be_absent_or_jwt() {
        let form = |h: &str| {
            let a = format!("{}.e30.sig", crate::crypto::b64(h.as_bytes()));
            Params::parse(format!("assertion={a}").as_bytes()).unwrap()
        };
        for ok in [
            r#"{"alg":"ES256"}"#,
            r#"{"alg":"ES256","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"jwt"}"#,
        ] {
            assert!(check_request(&form(ok)).is_ok(), "{ok}");
        }
        for bad in [
            r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#,
            r#"{"alg":"ES256","typ":"at+jwt"}"#,
            r#"{"alg":"ES256","typ":"dpop+jwt"}"#,
            r#"{"alg":"ES256","typ":1}"#,
        ] {
            assert_eq!(reason(check_request(&form(bad))), "wrong_typ", "{bad}");
        }
        assert_eq!(
            reason(check_request(&Params::parse(b"").unwrap())),
            "missing_assertion"
        );
    }

    #[test]
    fn the_most_specific_matching_rule_decides() {
        let rules = [
            rule("r1", "repo:acme/*", "broad", &["a"]),
            rule("r2", "repo:acme/app:*", "narrow", &["a"]),
            rule("r3", "repo:acme/app:ref:refs/heads/main", "exact", &["a"]),
            rule("r4", "repo:other/*", "other", &["a"]),
        ];
        let pick = |sub: &str| best_rule(&rules, sub).map(|r| r.client_id.as_str());
        assert_eq!(pick("repo:acme/app:ref:refs/heads/main"), Some("exact"));
        assert_eq!(pick("repo:acme/app:pull_request"), Some("narrow"));
        assert_eq!(pick("repo:acme/web:ref:refs/heads/main"), Some("broad"));
        assert_eq!(pick("repo:evil/app"), None);
    }

    #[test]
    fn scope_is_within_the_rule_and_the_catalog() {
        let r = resource("https://mcp.example/mcp", &["a", "b"]);
        let rl = rule("r", "x*", "c1", &["a", "b", "gone"]);
        assert_eq!(scopes(None, &rl, &r).unwrap(), vec!["a", "b"]);
        assert_eq!(scopes(Some("b"), &rl, &r).unwrap(), vec!["b"]);
        assert_eq!(reason(scopes(Some("gone"), &rl, &r)), "invalid_scope");
        assert_eq!(reason(scopes(Some("c"), &rl, &r)), "invalid_scope");
        let none = rule("r", "x*", "c1", &["gone"]);
        assert_eq!(reason(scopes(None, &none, &r)), "no_scope");
    }

    #[test]
    fn the_token_is_the_rule_clients_and_ends_with_the_jwt() {
        let c = client("client_secret_basic", &[]);
        let r = resource("https://mcp.example/mcp", &["a"]);
        let d = decide(&c, &r, &["a".to_owned()], NOW + 120, Some("k"), 900, NOW);
        assert_eq!((d.subject.as_str(), d.client_id.as_str()), ("c1", "c1"));
        assert_eq!(d.lifetime, 120);
        assert_eq!(d.not_after, Some(NOW + 120));
        assert_eq!(d.refresh, RefreshPolicy::None);
        assert_eq!(d.dpop_jkt.as_deref(), Some("k"));
        assert_eq!(
            decide(&c, &r, &[], NOW + 5000, None, 900, NOW).lifetime,
            900
        );
    }

    #[test]
    fn only_requests_without_client_credentials_are_workload_requests() {
        let h = http::HeaderMap::new();
        let p = |s: &str| Params::parse(s.as_bytes()).unwrap();
        assert!(is_workload_request(&h, &p("assertion=x&resource=y")));
        assert!(!is_workload_request(&h, &p("assertion=x&client_id=c")));
        assert!(!is_workload_request(
            &h,
            &p("assertion=x&client_assertion=c")
        ));
        let mut basic = http::HeaderMap::new();
        basic.insert(http::header::AUTHORIZATION, "Basic eDp5".parse().unwrap());
        assert!(!is_workload_request(&basic, &p("assertion=x")));
    }
}
