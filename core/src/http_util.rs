//! Request parsing and response building shared by every endpoint: form bodies
//! (RFC 6749 §3.2, parameters must not repeat), JSON and HTML responses with the hygiene
//! headers of SECURITY-CHECKLIST H1/H2, CORS for the endpoints browsers call cross-origin.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::error::{Error, ErrorCode, Result};
use crate::text::truncate;

/// Largest single parameter value (G2, G4).
pub const MAX_PARAM_BYTES: usize = 8 * 1024;

/// The peer address of a request, set by the adapter as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub IpAddr);

/// The abuse-control bucket of a peer address: the address itself, or its /64 for IPv6
/// (one host usually owns a whole /64), IPv4-mapped IPv6 addresses as IPv4.
pub fn ip_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// A request id chosen by the adapter (or the core) for logs and audit events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Decoded `application/x-www-form-urlencoded` or query parameters.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

/// Parameters whose values are safe in a log line; every other value (passwords, codes,
/// verifiers, secrets, tokens, assertions, CSRF tokens) is redacted by `Debug` (E3, H3).
const LOGGABLE_PARAMS: &[&str] = &[
    "grant_type",
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "resource",
    "code_challenge_method",
    "token_type_hint",
    "subject_token_type",
    "actor_token_type",
    "requested_token_type",
    "client_assertion_type",
    "prompt",
    "decision",
];

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if LOGGABLE_PARAMS.contains(&k.as_str()) {
                    v.as_str()
                } else {
                    "[redacted]"
                };
                (k, shown)
            }))
            .finish()
    }
}

impl Params {
    /// Parses `input`; a repeated parameter or an oversized value is `invalid_request`.
    pub fn parse(input: &[u8]) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(input) {
            if v.len() > MAX_PARAM_BYTES || k.len() > 256 {
                return Err(Error::invalid_request(format!(
                    "parameter '{}' is too long",
                    truncate(&k, 64)
                )));
            }
            if map.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(Error::invalid_request(format!(
                    "parameter '{}' must not be repeated",
                    truncate(&k, 64)
                )));
            }
        }
        Ok(Self(map))
    }

    /// The query string of `uri`.
    pub fn from_query(uri: &http::Uri) -> Result<Self> {
        Self::parse(uri.query().unwrap_or("").as_bytes())
    }

    /// A form body; the `Content-Type` must be `application/x-www-form-urlencoded` (G3).
    pub fn from_form(headers: &HeaderMap, body: &[u8]) -> Result<Self> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(Error::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse(body)
    }

    /// A parameter; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| Error::invalid_request(format!("missing parameter '{key}'")))
    }

    /// Whether the parameter is present (even empty).
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Builds parameters from pairs (tests, redirects).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// Iterates over every parameter.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Parses a JSON body; requires an `application/json` content type (G3).
pub fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(Error::invalid_request(
            "the request body must be application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_request(format!("malformed JSON body: {e}")))
}

/// A JSON response with `Cache-Control: no-store` (H1).
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Bytes> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// A cacheable public JSON document (discovery, JWKS).
pub fn public_json(value: &serde_json::Value, max_age: u32) -> Response<Bytes> {
    let mut resp = json(StatusCode::OK, value);
    let h = resp.headers_mut();
    h.remove(header::PRAGMA);
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// The JSON error response for `err`.
pub fn error_json(err: &Error) -> Response<Bytes> {
    let mut resp = json(err.code.status(), &err.body());
    for (name, value) in &err.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().append(name.clone(), v);
        }
    }
    resp
}

/// Content-Security-Policy for our own pages: nothing from third parties, no framing (H2).
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`PAGE_CSP`] with one more `form-action` source. Browsers apply `form-action` to the
/// redirects that follow a form post (CSP3 §6.3.3.2), so a form whose answer is a redirect to
/// another origin (the consent decision, to the client's redirect URI) must name it.
pub fn page_csp_with_form_target(source: &str) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self' {source}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// An HTML page with the hygiene headers of H2 (no referrer, no framing, no caching).
pub fn html(status: StatusCode, body: String) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// A `303 See Other` redirect (used after form posts and for authorization responses).
pub fn redirect(location: &str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// Adds permissive CORS headers: for discovery, JWKS, token, revoke, introspect and
/// registration, which carry no ambient credentials (never for login and consent).
pub fn with_cors(mut resp: Response<Bytes>) -> Response<Bytes> {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, DPoP-Nonce"),
    );
    resp
}

/// The answer to a CORS preflight.
pub fn preflight() -> Response<Bytes> {
    let mut resp = Response::new(Bytes::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, DPoP, MCP-Protocol-Version"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    resp
}

/// `405` with an `Allow` header.
pub fn method_not_allowed(allow: &'static str) -> Error {
    Error::new(
        ErrorCode::MethodNotAllowed,
        format!("this endpoint accepts {allow}"),
    )
    .with_header(header::ALLOW, allow)
}

/// Requires `method`, else 405.
pub fn expect_method(actual: &Method, expected: &Method) -> Result<()> {
    if actual == expected {
        Ok(())
    } else if expected == Method::GET {
        Err(method_not_allowed("GET"))
    } else {
        Err(method_not_allowed("POST"))
    }
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The request id the adapter assigned, if any.
pub fn request_id(req: &Request<Bytes>) -> Option<&str> {
    req.extensions().get::<RequestId>().map(|r| r.0.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e3_params_debug_redacts_secrets() {
        let p = Params::parse(
            b"grant_type=authorization_code&code=c0de-S3CRET&code_verifier=v3r-S3CRET&password=pa55-S3CRET&client_secret=cs-S3CRET&scope=mcp%3Atools",
        )
        .unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(
            shown.contains("authorization_code") && shown.contains("mcp:tools"),
            "{shown}"
        );
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let err = Params::parse(b"a=1&a=2").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn g3_wrong_content_type_is_invalid_request() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            Params::from_form(&h, b"a=1").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        assert_eq!(Params::from_form(&h, b"a=1").unwrap().get("a"), Some("1"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::parse(b"scope=&state=x").unwrap();
        assert_eq!(p.get("scope"), None);
        assert!(p.contains("scope"));
    }

    #[test]
    fn cookie_lookup() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pc_session=xyz"),
        );
        assert_eq!(cookie(&h, "pc_session"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
