//! The console's calls into the admin API: each builds the request the API would receive
//! (same path, method and JSON body), marks it with the console session
//! ([`super::ConsoleActor`]) and runs it through the admin API's own router, so validation,
//! effects and audit rows are exactly the API's.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use serde_json::Value;

use super::{ConsoleActor, Ctx};
use crate::error::{Error, ErrorCode, Result};

/// One path segment, percent-encoded (RFC 3986 §3.3).
pub fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A query string from pairs (empty values left out).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.finish()
}

/// Calls the admin API: `path_and_query` under `/admin/`; the JSON answer, or the API's
/// error as an [`Error`] with its status and description.
pub async fn call(
    cx: &Ctx<'_>,
    method: Method,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<Value> {
    into_value(&raw(cx, method, path_and_query, body).await?)
}

/// An admin API answer as JSON, or its error as an [`Error`].
pub fn into_value(resp: &http::Response<Bytes>) -> Result<Value> {
    let status = resp.status();
    let parsed: Value = if resp.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null)
    };
    if status.is_success() {
        return Ok(parsed);
    }
    let detail = parsed["detail"]
        .as_str()
        .or(parsed["error_description"].as_str())
        .unwrap_or("the admin API refused the request")
        .to_owned();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::TemporarilyUnavailable,
        s if s.is_server_error() => ErrorCode::ServerError,
        _ => ErrorCode::InvalidRequest,
    };
    Err(Error::new(code, detail))
}

/// Calls the admin API and returns its response as is (exports).
pub async fn raw(
    cx: &Ctx<'_>,
    method: Method,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<http::Response<Bytes>> {
    let uri: http::Uri = format!("/admin/{path_and_query}")
        .parse()
        .map_err(|_| Error::invalid_request("that value cannot be part of a URL"))?;
    let bytes = body
        .as_ref()
        .map(|b| Bytes::from(b.to_string()))
        .unwrap_or_default();
    let mut req = Request::new(bytes);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    // The adapter's extensions (request id, client address, trace) carry over.
    *req.extensions_mut() = cx.req.extensions().clone();
    req.extensions_mut().insert(ConsoleActor(cx.session.id()));
    if body.is_some() {
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(super::super::route_trusted(cx.server, req).await)
}
