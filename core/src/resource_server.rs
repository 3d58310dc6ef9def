//! Verifying an access token the way a resource server (an MCP server) does: RFC 6750 §2.1
//! `Authorization: Bearer` and RFC 9449 §7 `Authorization: DPoP` with a `DPoP` proof whose
//! `ath` is the token's hash and whose key is the token's `cnf.jkt`. A DPoP-bound token
//! presented as a bearer token is refused (D3); the audience must be this resource (M2);
//! revoked tokens are refused; missing scopes are `insufficient_scope` listing them (M4).
//! Refusals carry the `WWW-Authenticate` challenges of RFC 6750 §3 and RFC 9449 §7.1
//! (with `resource_metadata`, RFC 9728 §5.1) and, for `use_dpop_nonce`, a `DPoP-Nonce`
//! header (RFC 9449 §9). This is the seed of the verification middleware for MCP servers.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};

use crate::access_token::{verify_access_token, AccessClaims};
use crate::context::Context;
use crate::dpop::proof::{self, Expected, Reason, Rejection};
use crate::dpop::{self, ProofError, NONCE_HEADER};
use crate::store::repo::access;

/// Longest `Authorization` header accepted.
const MAX_AUTHORIZATION_LEN: usize = 16 * 1024;

/// What the resource requires of a token.
#[derive(Debug, Clone, Copy)]
pub struct Requirements<'a> {
    /// This resource's identifier: the token's `aud` must equal it.
    pub resource: &'a str,
    /// Scopes the request needs (all of them).
    pub scopes: &'a [&'a str],
    /// The protected resource metadata URL for challenges (RFC 9728 §5.1).
    pub resource_metadata: Option<&'a str>,
}

/// The request as the resource server received it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The method.
    pub method: &'a str,
    /// The absolute URL the client addressed (the resource server's external URL).
    pub url: &'a str,
    /// The headers (`Authorization`, `DPoP`).
    pub headers: &'a HeaderMap,
}

/// An accepted request.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The token's claims.
    pub claims: AccessClaims,
    /// The DPoP key thumbprint when the token is DPoP-bound.
    pub jkt: Option<String>,
    /// Headers to add to the response (`DPoP-Nonce` when nonces are required).
    pub response_headers: Vec<(http::HeaderName, String)>,
}

/// The authentication scheme a challenge belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449.
    DPoP,
}

/// A refused request, ready to become a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// 400, 401, 403 or 503.
    pub status: StatusCode,
    /// `invalid_request`, `invalid_token`, `insufficient_scope`, `invalid_dpop_proof`,
    /// `use_dpop_nonce` or `temporarily_unavailable`; `None` when no credentials were sent.
    pub error: Option<&'static str>,
    /// Client-safe description.
    pub description: String,
    /// Which scheme's challenge carries the error.
    pub scheme: Scheme,
    /// For `insufficient_scope`: the scopes needed.
    pub scope: Option<String>,
    /// `WWW-Authenticate` values (one challenge each).
    pub challenges: Vec<String>,
    /// Extra headers (`DPoP-Nonce`, `Retry-After`).
    pub headers: Vec<(http::HeaderName, String)>,
}

impl Denied {
    /// The response: status, `WWW-Authenticate` challenges, extra headers and a JSON body
    /// with `error` and `error_description`.
    pub fn into_response(self) -> Response<Bytes> {
        let body = match self.error {
            Some(e) => serde_json::json!({ "error": e, "error_description": self.description }),
            None => serde_json::json!({ "error_description": self.description }),
        };
        let mut resp = crate::response::json(self.status, &body);
        for c in &self.challenges {
            if let Ok(v) = HeaderValue::from_str(c) {
                resp.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(name.clone(), v);
            }
        }
        resp
    }
}

/// Quoted-string content: no quotes, backslashes or control characters.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

struct Refusal {
    status: StatusCode,
    error: Option<&'static str>,
    description: String,
    scheme: Scheme,
    scope: Option<String>,
    headers: Vec<(http::HeaderName, String)>,
    /// The DPoP reason, for the audit log.
    dpop_reason: Option<Reason>,
}

impl Refusal {
    fn new(status: StatusCode, error: &'static str, scheme: Scheme, d: impl Into<String>) -> Self {
        Self {
            status,
            error: Some(error),
            description: d.into(),
            scheme,
            scope: None,
            headers: Vec::new(),
            dpop_reason: None,
        }
    }
    fn invalid_token(scheme: Scheme, d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", scheme, d)
    }
    fn invalid_request(scheme: Scheme, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", scheme, d)
    }
    fn unavailable(scheme: Scheme) -> Self {
        let mut r = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            scheme,
            "the authorization server's storage is temporarily unavailable",
        );
        r.headers.push((header::RETRY_AFTER, "1".into()));
        r
    }
    fn dpop(r: Rejection) -> Self {
        let (error, status) = match r.reason {
            Reason::Nonce => ("use_dpop_nonce", StatusCode::UNAUTHORIZED),
            Reason::MultipleProofs => ("invalid_request", StatusCode::BAD_REQUEST),
            _ => ("invalid_dpop_proof", StatusCode::UNAUTHORIZED),
        };
        let mut out = Self::new(status, error, Scheme::DPoP, r.description);
        out.dpop_reason = Some(r.reason);
        out
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(_: crate::store::StoreError) -> Self {
        Self::unavailable(Scheme::Bearer)
    }
}

impl From<crate::error::Error> for Refusal {
    fn from(e: crate::error::Error) -> Self {
        if e.code == crate::error::ErrorCode::TemporarilyUnavailable {
            Self::unavailable(Scheme::Bearer)
        } else {
            Self::invalid_token(Scheme::Bearer, "the access token could not be verified")
        }
    }
}

/// The protected resource metadata URL the authorization server publishes for `resource`
/// (RFC 9728 §3.1, path-inserted at the issuer's origin).
pub fn resource_metadata_url(ctx: &Context, resource: &str) -> Option<String> {
    let issuer = url::Url::parse(ctx.issuer()).ok()?;
    let r = url::Url::parse(resource).ok()?;
    let path = r.path().trim_end_matches('/');
    Some(format!(
        "{}/.well-known/oauth-protected-resource{path}",
        issuer.origin().ascii_serialization()
    ))
}

/// [`verify`] over an `http::Request`. `url` is the absolute URL the client addressed (the
/// `htu` of its proofs): the request's URI alone does not carry it behind a proxy.
pub async fn verify_request<B>(
    ctx: &Context,
    req: &Request<B>,
    url: &str,
    needs: &Requirements<'_>,
) -> Result<Authorized, Denied> {
    verify(
        ctx,
        &Presented {
            method: req.method().as_str(),
            url,
            headers: req.headers(),
        },
        needs,
    )
    .await
}

/// Verifies the access token of a request (see the module documentation).
pub async fn verify(
    ctx: &Context,
    req: &Presented<'_>,
    needs: &Requirements<'_>,
) -> Result<Authorized, Denied> {
    let policy = dpop::nonce_policy(ctx);
    match authorize(ctx, req, needs, policy.as_ref()).await {
        Ok(a) => Ok(a),
        Err(r) => {
            if let Some(reason) = r.dpop_reason {
                dpop::audit_rejection(ctx, reason, None, None, needs.resource).await;
            }
            Err(deny(ctx, r, needs, policy.is_some()))
        }
    }
}

fn deny(ctx: &Context, r: Refusal, needs: &Requirements<'_>, nonces: bool) -> Denied {
    let mut bearer = vec!["Bearer realm=\"portcullis\"".to_owned()];
    let algs = proof::ALGS.join(" ");
    let mut dpop_challenge = vec![format!("DPoP algs=\"{algs}\"")];
    if let Some(md) = needs.resource_metadata {
        bearer.push(format!("resource_metadata=\"{}\"", quoted(md)));
        dpop_challenge.push(format!("resource_metadata=\"{}\"", quoted(md)));
    }
    let target = if r.scheme == Scheme::DPoP {
        &mut dpop_challenge
    } else {
        &mut bearer
    };
    if let Some(e) = r.error.filter(|e| *e != "temporarily_unavailable") {
        target.push(format!("error=\"{e}\""));
        target.push(format!("error_description=\"{}\"", quoted(&r.description)));
    }
    if let Some(s) = &r.scope {
        target.push(format!("scope=\"{}\"", quoted(s)));
    }
    let mut headers = r.headers;
    if nonces && r.scheme == Scheme::DPoP {
        headers.push((NONCE_HEADER, dpop::fresh_nonce(ctx)));
    }
    Denied {
        status: r.status,
        error: r.error,
        description: r.description,
        scheme: r.scheme,
        scope: r.scope,
        challenges: vec![bearer.join(", "), dpop_challenge.join(", ")],
        headers,
    }
}

/// Splits `Authorization` into scheme and token (RFC 9110 §11.6.2, token68).
fn credentials(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let malformed =
        || Refusal::invalid_request(Scheme::Bearer, "the Authorization header is malformed");
    if values.next().is_some() {
        return Err(Refusal::invalid_request(
            Scheme::Bearer,
            "exactly one Authorization header is allowed",
        ));
    }
    let value = value.to_str().map_err(|_| malformed())?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(malformed());
    }
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return Ok(None);
    };
    let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.chars().all(token68) {
        return Err(Refusal::invalid_request(
            scheme,
            "the access token is not a token68 value",
        ));
    }
    Ok(Some((scheme, token)))
}

async fn authorize(
    ctx: &Context,
    req: &Presented<'_>,
    needs: &Requirements<'_>,
    policy: Option<&(crate::dpop::nonce::NonceKey, i64)>,
) -> Result<Authorized, Refusal> {
    let Some((scheme, token)) = credentials(req.headers)? else {
        return Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            description: "an access token is required".into(),
            scheme: Scheme::Bearer,
            scope: None,
            headers: Vec::new(),
            dpop_reason: None,
        });
    };
    let Some(claims) = verify_access_token(ctx, token).await? else {
        return Err(Refusal::invalid_token(
            scheme,
            "the access token is invalid or expired",
        ));
    };
    if claims.exp <= ctx.now() {
        return Err(Refusal::invalid_token(
            scheme,
            "the access token has expired",
        ));
    }
    let bound = claims.cnf.as_ref().map(|c| c.jkt.clone());
    let checked = match (scheme, &bound) {
        (Scheme::Bearer, Some(_)) => {
            // D3: a DPoP-bound token presented as a bearer token.
            let mut r = Refusal::invalid_token(
                Scheme::DPoP,
                "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
            );
            r.dpop_reason = Some(Reason::Missing);
            return Err(r);
        }
        (Scheme::Bearer, None) => None,
        (Scheme::DPoP, None) => {
            return Err(Refusal::invalid_token(
                Scheme::DPoP,
                "the access token is not DPoP-bound: present it with the Bearer scheme",
            ))
        }
        (Scheme::DPoP, Some(jkt)) => {
            let proof = proof::single_header(req.headers)
                .map_err(Refusal::dpop)?
                .ok_or_else(|| {
                    Refusal::dpop(Rejection::new(
                        Reason::Missing,
                        "a DPoP proof is required with the DPoP scheme",
                    ))
                })?;
            let expected = Expected {
                method: req.method,
                url: req.url,
                access_token: Some(token),
                now: ctx.now(),
                max_age: ctx.config().dpop.proof_max_age_secs,
                skew: ctx.config().jwt_clock_skew_seconds,
                nonce: policy.map(|(k, l)| (k, *l)),
            };
            let checked = proof::check(ctx.env().crypto.as_ref(), proof, &expected)
                .await
                .map_err(Refusal::dpop)?;
            if !crate::crypto::ct_eq(checked.jkt.as_bytes(), jkt.as_bytes()) {
                let mut r = Refusal::invalid_token(
                    Scheme::DPoP,
                    "the DPoP proof key is not the key the access token is bound to",
                );
                r.dpop_reason = Some(Reason::KeyMismatch);
                return Err(r);
            }
            Some(checked)
        }
    };
    if claims.aud != needs.resource {
        return Err(Refusal::invalid_token(
            scheme,
            "the access token is not for this resource",
        ));
    }
    if access::is_revoked(ctx.env().sql.as_ref(), &claims.jti).await? {
        return Err(Refusal::invalid_token(
            scheme,
            "the access token has been revoked",
        ));
    }
    let granted: Vec<&str> = claims.scope.split(' ').collect();
    let missing: Vec<&str> = needs
        .scopes
        .iter()
        .copied()
        .filter(|s| !granted.contains(s))
        .collect();
    if !missing.is_empty() {
        let mut r = Refusal::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            scheme,
            "the access token lacks a required scope",
        );
        r.scope = Some(needs.scopes.join(" "));
        return Err(r);
    }
    // Every other check passed: now spend the proof's jti (D2).
    let mut response_headers = Vec::new();
    if let Some(checked) = &checked {
        match dpop::reserve(ctx, checked).await {
            Ok(()) => {}
            Err(ProofError::Rejected(r)) => return Err(Refusal::dpop(r)),
            Err(ProofError::Store(_)) => return Err(Refusal::unavailable(Scheme::DPoP)),
        }
        if policy.is_some() {
            response_headers.push((NONCE_HEADER, dpop::fresh_nonce(ctx)));
        }
    }
    Ok(Authorized {
        jkt: checked.map(|c| c.jkt),
        claims,
        response_headers,
    })
}

#[cfg(test)]
#[path = "resource_server_tests.rs"]
mod tests;
