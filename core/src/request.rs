//! What arrives: form and query parameters (RFC 6749 §3.2, parameters must not repeat), JSON
//! bodies, cookies, the client address and request id the host attaches, and method checks.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request};

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

/// The ids of a request, for logs and audit events: its request id (chosen by the adapter or
/// the core, sent back in `x-request-id`) and the W3C trace id it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    /// The request id.
    pub id: String,
    /// The trace id (32 lower-case hex digits).
    pub trace_id: String,
}

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
pub fn request_id(req: &Request<Bytes>) -> Option<&RequestId> {
    req.extensions().get::<RequestId>()
}
