//! Admin API of federation: OIDC connectors (`/admin/connectors`, `/admin/connectors/{id}`,
//! the client secret write-only, the redirect URI to register at the IdP returned on create)
//! and the external identities linked to users (`/admin/identities`, unlink with
//! `DELETE /admin/identities/{connector}/{subject}`).

use bytes::Bytes;
use http::Request;
use serde_json::{json, Value};

use super::{created, no_content, ok, record};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::federation::connector::ConnectorInput;
use crate::federation::connectors::{self, public_input, DeclareError};
use crate::request::{json_body, Params};
use crate::store::repo::federation::{self as repo, ConnectorRow, IdentityRow};
use crate::store::repo::users;
use crate::text::truncate;

fn connector_view(server: &Context, row: &ConnectorRow) -> Value {
    let input = public_input(row).unwrap_or_default();
    json!({
        "id": row.id,
        "name": input.name,
        "issuer": input.issuer,
        "client_id": input.client_id,
        "token_endpoint_auth_method": input.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic"),
        "scopes": input.scopes,
        "claims": input.claims,
        "userinfo": input.userinfo,
        "allowed_groups": input.allowed_groups,
        "allowed_email_domains": input.allowed_email_domains,
        "link_by_email_domains": input.link_by_email_domains,
        "redirect_uri": connectors::redirect_uri(server, &row.id),
        "source": row.source,
        "created_at": row.created_at,
    })
}

/// `GET /admin/connectors`.
pub(super) async fn list(server: &Context) -> Result<http::Response<Bytes>> {
    let rows = repo::list_connectors(server.env().sql.as_ref()).await?;
    let views: Vec<Value> = rows.iter().map(|r| connector_view(server, r)).collect();
    Ok(ok(json!({ "connectors": views })))
}

/// `POST /admin/connectors`: creates or replaces a connector.
pub(super) async fn create(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let input: ConnectorInput = json_body(req.headers(), req.body())?;
    let connector = connectors::declare(server, &input, "admin")
        .await
        .map_err(|e| match e {
            DeclareError::Invalid(e) => Error::invalid_request(format!("connector {e}")),
            DeclareError::Other(e) => e,
        })?;
    let row = repo::get_connector(server.env().sql.as_ref(), &connector.id)
        .await?
        .ok_or_else(|| Error::server("the connector was not stored"))?;
    record(
        server,
        req,
        "admin.connector.put",
        None,
        None,
        json!({ "connector": connector.id }),
    )
    .await;
    Ok(created(connector_view(server, &row)))
}

/// `DELETE /admin/connectors/{id}`: the connector, its identities and pending logins (the
/// users stay).
pub(super) async fn delete(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    if !repo::delete_connector(server.env().sql.as_ref(), id).await? {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("no connector '{}'", truncate(id, 64)),
        ));
    }
    crate::federation::login::forget(server, id).await;
    record(
        server,
        req,
        "admin.connector.delete",
        None,
        None,
        json!({ "connector": id }),
    )
    .await;
    Ok(no_content())
}

async fn identity_view(server: &Context, i: &IdentityRow) -> Result<Value> {
    let username = users::by_id(server.env().sql.as_ref(), &i.user_id)
        .await?
        .map(|u| u.username);
    Ok(json!({
        "connector": i.connector,
        "subject": i.subject,
        "user_id": i.user_id,
        "username": username,
        "email": i.email,
        "groups": i.groups,
        "created_at": i.created_at,
        "last_login_at": i.last_login_at,
    }))
}

/// `GET /admin/identities[?user=&connector=&limit=]` (`user` is a username).
pub(super) async fn list_identities(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let q = Params::from_query(req.uri())?;
    let limit = super::int_param(&q, "limit", 1, super::MAX_PAGE)?.unwrap_or(100);
    let db = server.env().sql.as_ref();
    let user_id = match q.get("user") {
        Some(name) => match users::by_username(db, name).await? {
            Some(u) => Some(u.id),
            None => return Ok(ok(json!({ "identities": [] }))),
        },
        None => None,
    };
    let rows = repo::identity_list(db, user_id.as_deref(), q.get("connector"), limit).await?;
    let mut views = Vec::with_capacity(rows.len());
    for r in &rows {
        views.push(identity_view(server, r).await?);
    }
    Ok(ok(json!({ "identities": views })))
}

/// `DELETE /admin/identities/{connector}/{subject}`: unlinks it (the user stays; the next
/// login through it is a first login again).
pub(super) async fn unlink(
    server: &Context,
    req: &Request<Bytes>,
    connector: &str,
    subject: &str,
) -> Result<http::Response<Bytes>> {
    if !repo::identity_delete(server.env().sql.as_ref(), connector, subject).await? {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!(
                "no identity '{}' at connector '{}'",
                truncate(subject, 64),
                truncate(connector, 64)
            ),
        ));
    }
    record(
        server,
        req,
        "admin.identity.unlink",
        None,
        None,
        json!({ "connector": connector, "subject": subject }),
    )
    .await;
    Ok(no_content())
}
