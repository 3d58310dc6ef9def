//! Admin API: protected resources (`/admin/resources`), the MCP servers tokens are issued
//! for (RFC 8707 §2 resource indicators) with their scope catalogs, and the location of each
//! one's protected resource metadata (RFC 9728 §3.1).

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, query, record};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::store::repo::resources::{self as repo, ResourceRow};
use crate::text::truncate;

/// Longest resource URI, bytes.
const MAX_URI: usize = 2048;
/// Largest scope catalog.
const MAX_SCOPES: usize = 256;
/// Longest display name, characters.
const MAX_NAME: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewResource {
    uri: String,
    scopes: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    introspection_clients: Vec<String>,
    #[serde(default)]
    exchange_clients: Vec<String>,
}

/// Checks a resource URI (RFC 8707 §2): absolute, `https` (plain `http` only on a loopback
/// host), with a host, without a fragment, userinfo or whitespace.
pub(crate) fn validate_uri(uri: &str) -> Result<()> {
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(Error::invalid_request(format!(
            "resource uri must be 1 to {MAX_URI} bytes"
        )));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_request(
            "resource uri must not contain whitespace or control characters",
        ));
    }
    let parsed = url::Url::parse(uri)
        .map_err(|e| Error::invalid_request(format!("resource uri is not an absolute URL: {e}")))?;
    if uri.contains('#') || parsed.fragment().is_some() {
        return Err(Error::invalid_request(
            "resource uri must not contain a fragment (RFC 8707 §2)",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid_request(
            "resource uri must not contain userinfo",
        ));
    }
    if parsed.host().is_none() {
        return Err(Error::invalid_request("resource uri must have a host"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if crate::redirect::is_loopback_host(&parsed) => Ok(()),
        "http" => Err(Error::invalid_request(
            "resource uri must use https (plain http only on a loopback host)",
        )),
        other => Err(Error::invalid_request(format!(
            "resource uri must use https, not '{}'",
            truncate(other, 32)
        ))),
    }
}

/// Checks a scope catalog: at least one scope, each a single valid scope token
/// (RFC 6749 §3.3); duplicates are dropped, order is kept.
pub(crate) fn validate_scopes(scopes: &[String]) -> Result<Vec<String>> {
    if scopes.is_empty() {
        return Err(Error::invalid_request(
            "a resource needs at least one scope",
        ));
    }
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid_request(format!(
            "a resource may have at most {MAX_SCOPES} scopes"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        let invalid = |why: &str| {
            Error::invalid_request(format!(
                "scope '{}' is not a valid scope token{why}",
                truncate(s, 64)
            ))
        };
        let parsed =
            crate::scope::parse(s).map_err(|e| invalid(&format!(": {}", e.description)))?;
        if parsed.len() != 1 || parsed[0] != *s {
            return Err(invalid(" (one scope per entry, no spaces)"));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

/// Checks an optional display name.
pub(crate) fn validate_name(name: Option<&str>) -> Result<()> {
    if let Some(n) = name {
        if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
            return Err(Error::invalid_request(format!(
                "resource name must be 1 to {MAX_NAME} characters without control characters"
            )));
        }
    }
    Ok(())
}

/// Checks a list of client ids stored space-separated: at most 32, none empty, none with
/// whitespace.
fn validate_client_list(field: &str, clients: &[String]) -> Result<()> {
    if clients.len() > 32
        || clients
            .iter()
            .any(|c| c.is_empty() || c.len() > 255 || c.contains(char::is_whitespace))
    {
        return Err(Error::invalid_request(format!(
            "{field} must be at most 32 client ids without whitespace"
        )));
    }
    Ok(())
}

/// A validated resource row (created now unless it already exists; upsert keeps the date).
pub(crate) fn prepare(
    server: &Context,
    uri: &str,
    scopes: &[String],
    name: Option<&str>,
    introspection_clients: &[String],
    exchange_clients: &[String],
) -> Result<ResourceRow> {
    validate_uri(uri)?;
    let scopes = validate_scopes(scopes)?;
    validate_name(name)?;
    validate_client_list("introspection_clients", introspection_clients)?;
    validate_client_list("exchange_clients", exchange_clients)?;
    Ok(ResourceRow {
        uri: uri.to_owned(),
        name: name.map(str::to_owned),
        scopes,
        created_at: server.now(),
        introspection_clients: introspection_clients.to_vec(),
        exchange_clients: exchange_clients.to_vec(),
    })
}

fn view(r: &ResourceRow) -> Value {
    json!({
        "uri": r.uri,
        "name": r.name,
        "scopes": r.scopes,
        "introspection_clients": r.introspection_clients,
        "exchange_clients": r.exchange_clients,
        "created_at": r.created_at,
        "metadata_url": crate::paths::protected_resource_metadata_url(&r.uri),
    })
}

/// `POST /admin/resources`: creates a resource (201) or replaces the name and scope catalog
/// of an existing one (200).
pub(super) async fn create(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewResource = crate::request::json_body(req.headers(), req.body())?;
    let row = prepare(
        server,
        &body.uri,
        &body.scopes,
        body.name.as_deref(),
        &body.introspection_clients,
        &body.exchange_clients,
    )?;
    let db = server.env().sql.as_ref();
    let existed = repo::get(db, &row.uri).await?.is_some();
    repo::upsert(db, &row).await?;
    let stored = repo::get(db, &row.uri).await?.unwrap_or(row);
    let action = if existed {
        "admin.resource.updated"
    } else {
        "admin.resource.created"
    };
    record(
        server,
        req,
        action,
        None,
        None,
        json!({ "uri": stored.uri, "scopes": stored.scopes }),
    )
    .await;
    Ok(if existed {
        ok(view(&stored))
    } else {
        created(view(&stored))
    })
}

/// `GET /admin/resources`.
pub(super) async fn list(server: &Context) -> Result<http::Response<Bytes>> {
    let all = repo::list(server.env().sql.as_ref()).await?;
    Ok(ok(
        json!({ "resources": all.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /admin/resources?uri=...`.
pub(super) async fn delete(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let uri = params.require("uri")?;
    if !repo::delete(server.env().sql.as_ref(), uri).await? {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("no resource '{}'", truncate(uri, 256)),
        ));
    }
    record(
        server,
        req,
        "admin.resource.deleted",
        None,
        None,
        json!({ "uri": uri }),
    )
    .await;
    Ok(no_content())
}
