//! Resource indicators (RFC 8707 §2): the `resource` parameter selects a registered resource,
//! which becomes the token audience; requested scopes must come from that resource's
//! catalog (and, for a client an admin created, the `scope` ceiling it was given).

use crate::clients::{Client, ClientKind};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::scope;
use crate::store::repo::resources::{self, ResourceRow};

/// Resolves the `resource` parameter. It must be an absolute URI without a fragment (M1)
/// naming a registered resource. When absent and exactly one resource is registered, that
/// one is used; otherwise a resource is required.
pub async fn select(ctx: &Context, resource: Option<&str>) -> Result<ResourceRow> {
    let db = ctx.env().sql.as_ref();
    match resource {
        Some(uri) => {
            let parsed = url::Url::parse(uri)
                .map_err(|_| Error::invalid_target("resource must be an absolute URI"))?;
            if parsed.fragment().is_some() || uri.contains('#') {
                return Err(Error::invalid_target(
                    "resource must not contain a fragment",
                ));
            }
            resources::get(db, uri)
                .await?
                .ok_or_else(|| Error::invalid_target("resource is not registered at this server"))
        }
        None => {
            let mut all = resources::list(db).await?;
            if all.len() == 1 {
                Ok(all.remove(0))
            } else {
                Err(Error::invalid_target(
                    "the resource parameter is required (RFC 8707)",
                ))
            }
        }
    }
}

/// The scopes to grant: the requested ones, each in the resource catalog and the client's
/// ceiling (`invalid_scope` otherwise); when none are requested, the whole catalog within
/// the ceiling.
///
/// Only a client an admin created has a ceiling. The `scope` a client registered itself
/// (RFC 7591, or a metadata document) is what it asked for then, not a limit: an MCP client
/// that registered with the scope of its first challenge must be able to step up when a tool
/// answers `insufficient_scope` (MCP authorization, scope challenge handling), and a ceiling
/// the client chose itself protects nothing from that client.
pub fn select_scopes(
    requested: Option<&str>,
    resource: &ResourceRow,
    client: &Client,
) -> Result<Vec<String>> {
    let ceiling = match client.kind {
        ClientKind::Static => client
            .metadata
            .scope
            .as_deref()
            .map(scope::parse)
            .transpose()?,
        ClientKind::Dynamic | ClientKind::MetadataDocument => None,
    };
    let allowed =
        |s: &String| resource.scopes.contains(s) && ceiling.as_ref().is_none_or(|c| c.contains(s));
    match requested {
        Some(req) => {
            let wanted = scope::parse(req)?;
            if let Some(bad) = wanted.iter().find(|s| !allowed(s)) {
                return Err(Error::invalid_scope(format!(
                    "scope '{}' is not available for this resource and client",
                    crate::text::truncate(bad, 64)
                )));
            }
            Ok(wanted)
        }
        None => Ok(resource
            .scopes
            .iter()
            .filter(|s| allowed(s))
            .cloned()
            .collect()),
    }
}

/// K5: the scopes of a `client_credentials` request without `scope`: the client's registered
/// `scope` that the resource offers. A client that registered no scope must ask for one.
pub fn default_machine_scopes(resource: &ResourceRow, client: &Client) -> Result<Vec<String>> {
    let Some(registered) = client.metadata.scope.as_deref() else {
        return Err(Error::invalid_scope(
            "the client registered no default scope: request a scope",
        ));
    };
    let defaults: Vec<String> = scope::parse(registered)?
        .into_iter()
        .filter(|s| resource.scopes.contains(s))
        .collect();
    if defaults.is_empty() {
        return Err(Error::invalid_scope(
            "none of the client's registered scopes is offered by this resource: request a scope",
        ));
    }
    Ok(defaults)
}
