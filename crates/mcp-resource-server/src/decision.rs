//! The decision for one request, as plain values: which credentials were presented
//! (RFC 6750 §2.1 `Bearer`, RFC 9449 §7.1 `DPoP`), whether the scheme fits the token and the
//! resource's DPoP setting (§7.2: a DPoP-bound token sent as a bearer token is refused), and
//! the refusal to send: 400 `invalid_request`, 401 (no `error` when no token was presented,
//! RFC 6750 §3.1; `invalid_token` otherwise), 403 `insufficient_scope` with the `scope` a new
//! token needs, or 503 when the issuer's keys cannot be fetched.

use http::{HeaderMap, StatusCode};

use crate::challenge::Challenge;
use crate::claims::{Scheme, VerifiedToken};
use crate::config::{Config, DpopMode};
use crate::dpop::{self, ProofError, ReplayCache};
use crate::jwks::Key;
use crate::metadata;
use crate::policy::{tools_called, ToolRule};
use crate::token::{TokenError, Unverified};

/// Longest `Authorization` header accepted.
const MAX_AUTHORIZATION_LEN: usize = 16 * 1024;

/// The outcome for a request.
// Allow is the common case: boxing the token would allocate on every accepted request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Decision {
    /// Let it through, with the verified token.
    Allow(VerifiedToken),
    /// Refuse it with this response.
    Deny(Denial),
}

/// A refusal, ready to become a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 400, 401, 403 or 503.
    pub status: StatusCode,
    /// The RFC 6750 / RFC 9449 error code; `None` when no credentials were presented.
    pub error: Option<&'static str>,
    /// A client-safe description.
    pub description: Option<String>,
    /// `WWW-Authenticate` challenges, one header each, in order.
    pub challenges: Vec<Challenge>,
    /// A fresh nonce for the `DPoP-Nonce` header (RFC 9449 §9, with `use_dpop_nonce`).
    pub dpop_nonce: Option<String>,
}

impl Denial {
    /// The `WWW-Authenticate` header values.
    pub fn www_authenticate(&self) -> Vec<String> {
        self.challenges.iter().map(ToString::to_string).collect()
    }

    /// A JSON body: `{"error", "error_description"}` (empty object without an error).
    pub fn body(&self) -> Vec<u8> {
        let mut doc = serde_json::Map::new();
        if let Some(e) = self.error {
            doc.insert("error".into(), e.into());
        }
        if let Some(d) = &self.description {
            doc.insert("error_description".into(), d.clone().into());
        }
        serde_json::Value::Object(doc).to_string().into_bytes()
    }

    /// The response: status, `WWW-Authenticate` headers, `Cache-Control: no-store`, JSON body.
    pub fn to_response(&self) -> http::Response<Vec<u8>> {
        let mut res = http::Response::new(self.body());
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        for c in self.www_authenticate() {
            // `quote` leaves only visible ASCII and spaces, so this cannot fail.
            if let Ok(v) = http::HeaderValue::try_from(c) {
                h.append(http::header::WWW_AUTHENTICATE, v);
            }
        }
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        h.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        if let Some(v) = self
            .dpop_nonce
            .as_deref()
            .and_then(|n| http::HeaderValue::try_from(n).ok())
        {
            h.insert("dpop-nonce", v);
        }
        res
    }
}

/// The credentials a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` and the `DPoP` proof, if one was sent.
    DPoP {
        /// The access token.
        token: &'a str,
        /// The proof.
        proof: Option<&'a str>,
    },
}

impl Presented<'_> {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            Self::Bearer(_) => Scheme::Bearer,
            Self::DPoP { .. } => Scheme::DPoP,
        }
    }

    /// The access token.
    pub fn token(&self) -> &str {
        match self {
            Self::Bearer(t) | Self::DPoP { token: t, .. } => t,
        }
    }
}

fn is_token68(s: &str) -> bool {
    // RFC 9110 §11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The scope to ask for in a 401 challenge.
fn base_scope(config: &Config) -> String {
    config.required_scopes.join(" ")
}

/// Builds the challenges for this resource: `Bearer` first (clients that only read the first
/// challenge, such as the MCP SDKs, find `resource_metadata` and `scope` there), then `DPoP`
/// when DPoP is on. When DPoP is required, only the `DPoP` challenge. `error` goes on the
/// challenge of the scheme the client used.
pub fn challenges(
    config: &Config,
    scope: &str,
    error: Option<(Scheme, &'static str, &str)>,
) -> Vec<Challenge> {
    let rm = metadata::well_known_url(config);
    let mut out = Vec::new();
    let with_error = |mut c: Challenge, scheme: Scheme| {
        if let Some((s, code, desc)) = error {
            if s == scheme {
                c = c.param("error", code).param("error_description", desc);
            }
        }
        c
    };
    if config.dpop != DpopMode::Required {
        let mut c = Challenge::new(Scheme::Bearer).param("resource_metadata", rm.clone());
        if !scope.is_empty() {
            c = c.param("scope", scope);
        }
        out.push(with_error(c, Scheme::Bearer));
    }
    if config.dpop != DpopMode::Off {
        let algs: Vec<&str> = config.dpop_algorithms.iter().map(|a| a.as_str()).collect();
        let mut c = Challenge::new(Scheme::DPoP).param("algs", algs.join(" "));
        if config.dpop == DpopMode::Required {
            c = c.param("resource_metadata", rm);
            if !scope.is_empty() {
                c = c.param("scope", scope);
            }
        }
        out.push(with_error(c, Scheme::DPoP));
    }
    out
}

/// 401 without an error code: no (usable) credentials were presented.
pub fn unauthenticated(config: &Config) -> Denial {
    Denial {
        status: StatusCode::UNAUTHORIZED,
        error: None,
        description: None,
        challenges: challenges(config, &base_scope(config), None),
        dpop_nonce: None,
    }
}

fn refusal(
    config: &Config,
    status: StatusCode,
    scheme: Scheme,
    code: &'static str,
    description: String,
    scope: &str,
) -> Denial {
    Denial {
        status,
        error: Some(code),
        challenges: challenges(config, scope, Some((scheme, code, &description))),
        description: Some(description),
        dpop_nonce: None,
    }
}

/// 401 `invalid_token`.
pub fn invalid_token(config: &Config, scheme: Scheme, description: impl Into<String>) -> Denial {
    refusal(
        config,
        StatusCode::UNAUTHORIZED,
        scheme,
        "invalid_token",
        description.into(),
        &base_scope(config),
    )
}

/// 400 `invalid_request`.
pub fn invalid_request(config: &Config, scheme: Scheme, description: impl Into<String>) -> Denial {
    refusal(
        config,
        StatusCode::BAD_REQUEST,
        scheme,
        "invalid_request",
        description.into(),
        &base_scope(config),
    )
}

/// 401 `invalid_dpop_proof` (RFC 9449 §7.1).
pub fn invalid_proof(config: &Config, e: &ProofError) -> Denial {
    refusal(
        config,
        StatusCode::UNAUTHORIZED,
        Scheme::DPoP,
        "invalid_dpop_proof",
        e.to_string(),
        &base_scope(config),
    )
}

/// 401 `use_dpop_nonce` (RFC 9449 §9) with `nonce` for the `DPoP-Nonce` header.
pub fn use_nonce(config: &Config, nonce: String) -> Denial {
    let mut d = refusal(
        config,
        StatusCode::UNAUTHORIZED,
        Scheme::DPoP,
        "use_dpop_nonce",
        ProofError::Nonce.to_string(),
        &base_scope(config),
    );
    d.dpop_nonce = Some(nonce);
    d
}

/// 503: the issuer's keys could not be fetched (not the client's fault; no challenge).
pub fn unavailable(description: impl Into<String>) -> Denial {
    Denial {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error: Some("temporarily_unavailable"),
        description: Some(description.into()),
        challenges: Vec::new(),
        dpop_nonce: None,
    }
}

/// 403 `insufficient_scope`. The challenge's `scope` is what a new token should carry: the
/// scopes already granted (so stepping up loses nothing) plus the ones missing.
pub fn insufficient_scope(config: &Config, token: &VerifiedToken, needed: &[String]) -> Denial {
    let mut scope: Vec<&str> = token.scopes();
    for n in needed {
        if !scope.contains(&n.as_str()) {
            scope.push(n);
        }
    }
    scope.retain(|s| *s != "offline_access");
    let missing: Vec<&str> = needed
        .iter()
        .map(String::as_str)
        .filter(|n| !token.scopes().contains(n))
        .collect();
    refusal(
        config,
        StatusCode::FORBIDDEN,
        token.scheme,
        "insufficient_scope",
        format!("this request needs scope {}", missing.join(" ")),
        &scope.join(" "),
    )
}

/// Reads the credentials from the headers: `Ok(None)` when there are none (or another
/// scheme), a refusal for several `Authorization` headers or a malformed one.
pub fn presented<'a>(
    config: &Config,
    headers: &'a HeaderMap,
) -> Result<Option<Presented<'a>>, Denial> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_request(
            config,
            Scheme::Bearer,
            "exactly one Authorization header is allowed",
        ));
    }
    if first.len() > MAX_AUTHORIZATION_LEN {
        return Err(invalid_request(
            config,
            Scheme::Bearer,
            "the Authorization header is too long",
        ));
    }
    let Ok(value) = first.to_str() else {
        return Err(invalid_request(
            config,
            Scheme::Bearer,
            "the Authorization header is not ASCII",
        ));
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let token = rest.trim_start_matches(' ');
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return Ok(None);
    };
    if !is_token68(token) {
        return Err(invalid_request(
            config,
            scheme,
            "the access token is not a token68 value",
        ));
    }
    match scheme {
        Scheme::Bearer => Ok(Some(Presented::Bearer(token))),
        Scheme::DPoP => {
            let mut proofs = headers.get_all("dpop").iter();
            let proof = proofs.next();
            if proofs.next().is_some() {
                return Err(invalid_proof(config, &ProofError::Multiple));
            }
            let proof = match proof.map(|p| p.to_str()) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(_)) => return Err(invalid_proof(config, &ProofError::Malformed)),
            };
            Ok(Some(Presented::DPoP { token, proof }))
        }
    }
}

/// The parts of the request a decision looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method.
    pub method: &'a str,
    /// The absolute URL the client sent the request to (for DPoP `htu`).
    pub url: &'a str,
    /// Current time, seconds since the epoch.
    pub now: i64,
}

/// Refusal for a token whose header or signature failed.
pub fn token_refused(config: &Config, scheme: Scheme, e: &TokenError) -> Denial {
    invalid_token(config, scheme, e.to_string())
}

/// Finishes the decision once the issuer's key for the token is known: signature and claims,
/// the scheme against `cnf.jkt` and the DPoP setting, the proof, the replay reservation, and
/// the scopes every request needs.
pub fn decide(
    config: &Config,
    presented: Presented<'_>,
    unverified: &Unverified<'_>,
    key: &Key,
    request: RequestInfo<'_>,
    replay: &dyn ReplayCache,
) -> Decision {
    let scheme = presented.scheme();
    let claims = match unverified.verify(key, config, request.now) {
        Ok(c) => c,
        Err(e) => return Decision::Deny(token_refused(config, scheme, &e)),
    };
    match (presented, claims.jkt(), config.dpop) {
        (Presented::Bearer(_), Some(_), _) => {
            return Decision::Deny(invalid_token(
                config,
                scheme,
                "a DPoP-bound token must be sent with the DPoP scheme and a proof",
            ));
        }
        (Presented::Bearer(_), None, DpopMode::Required) => {
            return Decision::Deny(invalid_token(
                config,
                Scheme::DPoP,
                "this resource requires a DPoP-bound token",
            ));
        }
        (Presented::DPoP { .. }, _, DpopMode::Off) => {
            return Decision::Deny(invalid_token(
                config,
                Scheme::Bearer,
                "this resource does not accept DPoP",
            ));
        }
        (Presented::DPoP { .. }, None, _) => {
            return Decision::Deny(invalid_token(
                config,
                scheme,
                "the token is not DPoP-bound; send it with the Bearer scheme",
            ));
        }
        (Presented::DPoP { token, proof }, Some(jkt), _) => {
            let Some(proof) = proof else {
                return Decision::Deny(invalid_proof(config, &ProofError::Missing));
            };
            let expected = dpop::Expected {
                method: request.method,
                url: request.url,
                access_token: token,
                jkt,
                now: request.now,
                max_age: i64::try_from(config.dpop_max_age).unwrap_or(i64::MAX),
                leeway: i64::try_from(config.leeway).unwrap_or(i64::MAX),
            };
            let checked = match dpop::check(proof, &expected, &config.dpop_algorithms) {
                Ok(c) => c,
                Err(e) => return Decision::Deny(invalid_proof(config, &e)),
            };
            if let Some(key) = &config.dpop_nonce {
                if !checked
                    .nonce
                    .as_deref()
                    .is_some_and(|n| key.accepts(n, request.now))
                {
                    return Decision::Deny(use_nonce(config, key.issue(request.now)));
                }
            }
            let until = checked
                .iat
                .saturating_add(expected.max_age)
                .saturating_add(expected.leeway);
            if !replay.reserve(
                &format!("{}:{}", checked.jkt, checked.jti),
                until,
                request.now,
            ) {
                return Decision::Deny(invalid_proof(config, &ProofError::Replay));
            }
        }
        (Presented::Bearer(_), None, _) => {}
    }
    let verified = VerifiedToken::new(claims, scheme, presented.token());
    if !verified.claims.has_scopes(&config.required_scopes) {
        return Decision::Deny(insufficient_scope(
            config,
            &verified,
            &config.required_scopes,
        ));
    }
    Decision::Allow(verified)
}

/// Applies the tool policy to a request body (a JSON-RPC message or batch): `None` when every
/// tool called is allowed for `token`, else the refusal.
pub fn check_tools(config: &Config, token: &VerifiedToken, body: &[u8]) -> Option<Denial> {
    let called = match tools_called(body) {
        Ok(c) => c,
        Err(e) => return Some(invalid_request(config, token.scheme, e.to_string())),
    };
    let mut needed: Vec<String> = Vec::new();
    for name in &called {
        match config.tools.rule(name) {
            ToolRule::Denied => {
                return Some(Denial {
                    status: StatusCode::FORBIDDEN,
                    error: Some("access_denied"),
                    description: Some(format!("tool {name:?} is not available on this server")),
                    challenges: Vec::new(),
                    dpop_nonce: None,
                });
            }
            ToolRule::Needs(scopes) => {
                for s in scopes {
                    if !needed.contains(s) {
                        needed.push(s.clone());
                    }
                }
            }
        }
    }
    (!token.claims.has_scopes(&needed)).then(|| insufficient_scope(config, token, &needed))
}

#[cfg(test)]
mod tests;
