//! OAuth 2.0 Protected Resource Metadata (RFC 9728 §3) for every registered resource, at
//! the path-inserted well-known URL: `/.well-known/oauth-protected-resource/<resource path>`.
//! An MCP server on another origin serves the same document itself (see README).

use bytes::Bytes;
use http::{header, Method, Request, Response};
use serde_json::{json, Value};

use crate::context::Context;
use crate::error::{Error, ErrorCode};
use crate::request::method_not_allowed;
use crate::response::{error_json, preflight, public_json};
use crate::store::repo::resources::{self, ResourceRow};

/// The metadata document for `resource`; an absent `resource_name` is omitted, never `null`
/// (RFC 9728 §2: optional members are left out; MCP clients' schemas reject `null`).
pub fn document(server: &Context, resource: &ResourceRow) -> Value {
    let mut doc = json!({
        "resource": resource.uri,
        "authorization_servers": [server.issuer()],
        "scopes_supported": resource.scopes,
        "bearer_methods_supported": ["header"],
        "resource_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": ["ES256"],
    });
    if let Some(name) = &resource.name {
        doc["resource_name"] = json!(name);
    }
    doc
}

/// Serves the document whose resource path is `rest` (`""` for an origin-only resource).
pub async fn handle(server: &Context, req: &Request<Bytes>, rest: &str) -> Response<Bytes> {
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return preflight(),
        _ => return error_json(&method_not_allowed("GET")),
    }
    let all = match resources::list(server.env().sql.as_ref()).await {
        Ok(all) => all,
        Err(e) => return error_json(&e.into()),
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let wanted = if rest.is_empty() { "/" } else { rest };
    let candidates: Vec<&ResourceRow> = all
        .iter()
        .filter(|r| {
            url::Url::parse(&r.uri)
                .map(|u| u.path() == wanted && u.query().is_none())
                .unwrap_or(false)
        })
        .collect();
    // Prefer the resource on the requested host; otherwise the only one with that path.
    let same_host = candidates.iter().find(|r| {
        url::Url::parse(&r.uri)
            .map(|u| authority(&u) == host)
            .unwrap_or(false)
    });
    let chosen = same_host.or(if candidates.len() == 1 {
        candidates.first()
    } else {
        None
    });
    match chosen {
        Some(r) => public_json(&document(server, r), 300),
        None => error_json(&Error::new(
            ErrorCode::NotFound,
            "no protected resource is registered at this path",
        )),
    }
}

fn authority(u: &url::Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_owned(),
    }
}
