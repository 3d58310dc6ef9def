//! Admin API of the token vault: providers (`/admin/providers`, `/admin/providers/{name}`)
//! and connections (`/admin/connections`, `/admin/connections/{id}`). Client secrets are
//! write-only and no upstream token is ever returned.

use bytes::Bytes;
use http::Request;
use serde_json::{json, Value};

use super::{created, no_content, ok, record};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::{json_body, Params};
use crate::store::repo::connections::{self, ConnectionRow};
use crate::store::repo::providers as repo;
use crate::text::truncate;
use crate::vault::provider::ProviderInput;
use crate::vault::providers::{self, public_input, DeclareError};

fn provider_view(row: &repo::ProviderRow) -> Value {
    let input = public_input(row).unwrap_or_default();
    json!({
        "name": row.name,
        "preset": input.preset,
        "authorization_endpoint": input.authorization_endpoint,
        "token_endpoint": input.token_endpoint,
        "client_id": input.client_id,
        "scopes": input.scopes,
        "resource": input.resource,
        "vend_resources": input.vend_resources,
        "token_endpoint_auth_method": input.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic"),
        "source": row.source,
        "created_at": row.created_at,
    })
}

/// `GET /admin/providers`.
pub(super) async fn list_providers(server: &Context) -> Result<http::Response<Bytes>> {
    let rows = repo::list(server.env().sql.as_ref()).await?;
    Ok(ok(
        json!({ "providers": rows.iter().map(provider_view).collect::<Vec<_>>() }),
    ))
}

/// `POST /admin/providers`: creates or replaces a provider.
pub(super) async fn create_provider(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let input: ProviderInput = json_body(req.headers(), req.body())?;
    let provider = providers::declare(server, &input, "admin")
        .await
        .map_err(|e| match e {
            DeclareError::Invalid(e) => Error::invalid_request(format!("provider {e}")),
            DeclareError::Other(e) => e,
        })?;
    let row = repo::get(server.env().sql.as_ref(), &provider.name)
        .await?
        .ok_or_else(|| Error::server("the provider was not stored"))?;
    let view = provider_view(&row);
    record(
        server,
        req,
        "admin.provider.put",
        None,
        None,
        json!({ "provider": provider.name }),
    )
    .await;
    Ok(created(view))
}

/// `DELETE /admin/providers/{name}`: the provider, its connections and pending connects.
pub(super) async fn delete_provider(
    server: &Context,
    req: &Request<Bytes>,
    name: &str,
) -> Result<http::Response<Bytes>> {
    if !repo::delete(server.env().sql.as_ref(), name).await? {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("no provider '{}'", truncate(name, 64)),
        ));
    }
    record(
        server,
        req,
        "admin.provider.delete",
        None,
        None,
        json!({ "provider": name }),
    )
    .await;
    Ok(no_content())
}

fn connection_view(c: &ConnectionRow) -> Value {
    json!({
        "id": c.id,
        "user": c.owner,
        "provider": c.provider,
        "state": c.state,
        "scope": c.scope,
        "expires_at": c.expires_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

/// `GET /admin/connections[?user=&provider=&limit=]`.
pub(super) async fn list_connections(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let q = Params::from_query(req.uri())?;
    let limit = super::int_param(&q, "limit", 1, super::MAX_PAGE)?.unwrap_or(100);
    let rows = connections::list(
        server.env().sql.as_ref(),
        q.get("user"),
        q.get("provider"),
        limit,
    )
    .await?;
    Ok(ok(
        json!({ "connections": rows.iter().map(connection_view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /admin/connections/{id}`: revokes it (its tokens are forgotten at once).
pub(super) async fn revoke_connection(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let row = connections::by_id(server.env().sql.as_ref(), id)
        .await?
        .ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!("no connection '{}'", truncate(id, 64)),
            )
        })?;
    crate::vault::broker::revoke(server, &row, "admin").await?;
    record(
        server,
        req,
        "admin.connection.revoke",
        None,
        Some(&row.owner),
        json!({ "connection": row.id, "provider": row.provider }),
    )
    .await;
    Ok(no_content())
}
