//! What leaves: JSON and HTML responses with the hygiene headers of SECURITY-CHECKLIST H1/H2,
//! redirects, and CORS for the endpoints browsers call cross-origin.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::error::Error;

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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    use crate::error::ErrorCode;
    use crate::request::*;

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
