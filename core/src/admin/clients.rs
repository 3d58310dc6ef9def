//! Admin API: static clients (`/admin/clients`), registered with RFC 7591 §2 metadata and
//! checked by the same rules as dynamic registration (including `jwks` / `jwks_uri` for
//! `private_key_jwt`, RFC 7523 §2.2). A secret-based client's secret is
//! returned once, in the creation response (RFC 7591 §3.2.1), and stored only as a hash
//! (SECURITY-CHECKLIST A4). `PATCH /admin/clients/{id}` edits the name, redirect URIs, scope
//! and grant types (validated as a whole again); `POST /admin/clients/{id}/secret` rotates the
//! secret (the old one stops working at once; the new one is returned once). `last_used_at` is
//! when the client last obtained a token, to five minutes (written by the token endpoint at
//! most once per five minutes per client).

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, page, query, record};
use crate::clients::ClientMetadata;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::json_body;
use crate::store::repo::clients::{self as repo, ClientRow};
use crate::store::StoreError;
use crate::text::truncate;

/// Longest client id, bytes.
const MAX_CLIENT_ID: usize = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    response_types: Vec<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    application_type: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
    /// Public keys for `private_key_jwt` (RFC 7523 §2.2).
    #[serde(default)]
    jwks: Option<Value>,
    /// Where the client publishes its public keys (https).
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// Checks an administrator-chosen client id: 1 to 255 unreserved characters
/// (RFC 3986 §2.3: letters, digits, `-._~`). URL-shaped ids are refused so a static client
/// can never shadow a client ID metadata document.
pub(crate) fn validate_client_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_CLIENT_ID {
        return Err(Error::invalid_request(format!(
            "client_id must be 1 to {MAX_CLIENT_ID} characters"
        )));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
    {
        return Err(Error::invalid_request(
            "client_id may only contain ASCII letters, digits and - . _ ~",
        ));
    }
    Ok(())
}

/// Whether clients with this authentication method hold a shared secret.
pub(crate) fn uses_secret(method: &str) -> bool {
    matches!(method, "client_secret_basic" | "client_secret_post")
}

/// The public view of a stored client: metadata plus provenance, never the secret hash.
pub(crate) fn view(c: &ClientRow) -> Value {
    let mut v = serde_json::to_value(&c.metadata).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("client_id".into(), c.client_id.clone().into());
        o.insert("source".into(), c.source.clone().into());
        o.insert("created_at".into(), c.created_at.into());
        o.insert("last_used_at".into(), c.last_used_at.into());
        o.insert(
            "confidential".into(),
            (c.metadata.token_endpoint_auth_method != "none").into(),
        );
    }
    v
}

fn no_such_client(id: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no client '{}'", truncate(id, 255)),
    )
}

/// `POST /admin/clients`.
pub(super) async fn create(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: NewClient = json_body(req.headers(), req.body())?;
    let rng = server.env().rng.as_ref();
    let client_id = match body.client_id {
        Some(id) => {
            validate_client_id(&id)?;
            id
        }
        None => crate::runtime::random_token(rng, 16),
    };
    let application_type = body
        .application_type
        .unwrap_or_else(|| super::seed::implied_application_type(&body.redirect_uris).into());
    let mut metadata = ClientMetadata {
        redirect_uris: body.redirect_uris,
        grant_types: body.grant_types,
        response_types: body.response_types,
        token_endpoint_auth_method: body.token_endpoint_auth_method.unwrap_or_default(),
        client_name: body.client_name,
        client_uri: body.client_uri,
        scope: body.scope,
        application_type,
        jwks: body.jwks,
        jwks_uri: body.jwks_uri,
        ..ClientMetadata::default()
    };
    crate::registration::validate_metadata(&mut metadata)?;

    let db = server.env().sql.as_ref();
    let taken = || {
        Error::new(
            ErrorCode::Conflict,
            format!("a client with id '{client_id}' already exists"),
        )
    };
    if repo::get(db, &client_id).await?.is_some() {
        return Err(taken());
    }
    let secret = uses_secret(&metadata.token_endpoint_auth_method)
        .then(|| crate::secret::Secret::new(crate::runtime::random_token(rng, 32)));
    let row = ClientRow {
        client_id: client_id.clone(),
        secret_hash: secret
            .as_ref()
            .map(|s| crate::crypto::token_hash(s.expose())),
        metadata,
        source: "static".into(),
        created_at: server.now(),
        last_used_at: None,
    };
    match repo::insert(db, &row).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(taken()),
        Err(e) => return Err(e.into()),
    }
    record(
        server,
        req,
        "admin.client.created",
        Some(&row.client_id),
        None,
        json!({ "source": row.source }),
    )
    .await;
    let mut out = view(&row);
    if let Some(o) = out.as_object_mut() {
        o.insert("client_id_issued_at".into(), row.created_at.into());
        if let Some(s) = &secret {
            o.insert("client_secret".into(), s.expose().into());
            o.insert("client_secret_expires_at".into(), 0.into());
        }
    }
    Ok(created(out))
}

/// `GET /admin/clients?limit=&offset=`.
pub(super) async fn list(server: &Context, req: &Request<Bytes>) -> Result<http::Response<Bytes>> {
    let (limit, offset) = page(&query(req)?, 100)?;
    let clients = repo::list(server.env().sql.as_ref(), limit, offset).await?;
    Ok(ok(
        json!({ "clients": clients.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `GET /admin/clients/{client_id}`.
pub(super) async fn get(server: &Context, id: &str) -> Result<http::Response<Bytes>> {
    let c = repo::get(server.env().sql.as_ref(), id)
        .await?
        .ok_or_else(|| no_such_client(id))?;
    Ok(ok(view(&c)))
}

/// `DELETE /admin/clients/{client_id}`.
pub(super) async fn delete(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let db = server.env().sql.as_ref();
    if !repo::delete(db, id).await? {
        return Err(no_such_client(id));
    }
    // Grants to the deleted client end, so a client re-created with the same id inherits nothing.
    crate::store::repo::grants::revoke_for_client(db, id, server.now()).await?;
    crate::store::repo::client_policies::delete(db, id).await?;
    record(
        server,
        req,
        "admin.client.deleted",
        Some(id),
        None,
        json!({}),
    )
    .await;
    Ok(no_content())
}

/// `PATCH /admin/clients/{client_id}`: the fields an operator may change; absent ones stay.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEdit {
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
}

/// `PATCH /admin/clients/{client_id}`: 200 with the client; audited as `admin.client.updated`
/// with the names of the changed fields.
pub(super) async fn update(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let edit: ClientEdit = json_body(req.headers(), req.body())?;
    let db = server.env().sql.as_ref();
    let mut row = repo::get(db, id).await?.ok_or_else(|| no_such_client(id))?;
    let mut changed = Vec::new();
    if let Some(name) = edit.client_name {
        // An empty name removes it (the id is shown instead).
        row.metadata.client_name = Some(name).filter(|n| !n.trim().is_empty());
        changed.push("client_name");
    }
    if let Some(uris) = edit.redirect_uris {
        row.metadata.redirect_uris = uris;
        changed.push("redirect_uris");
    }
    if let Some(scope) = edit.scope {
        row.metadata.scope = Some(scope).filter(|s| !s.trim().is_empty());
        changed.push("scope");
    }
    if let Some(grants) = edit.grant_types {
        row.metadata.grant_types = grants;
        // Derived again from the grant types (RFC 7591 §2.1).
        row.metadata.response_types = Vec::new();
        changed.push("grant_types");
    }
    if changed.is_empty() {
        return Err(Error::invalid_request(
            "nothing to change: send client_name, redirect_uris, scope or grant_types",
        ));
    }
    crate::registration::validate_metadata(&mut row.metadata)?;
    if !repo::update_metadata(db, id, &row.metadata).await? {
        return Err(no_such_client(id));
    }
    record(
        server,
        req,
        "admin.client.updated",
        Some(id),
        None,
        json!({ "fields": changed }),
    )
    .await;
    Ok(ok(view(&row)))
}

/// `POST /admin/clients/{client_id}/secret`: a new secret replaces the old one, which stops
/// working at once; 200 with `client_secret` (shown this once). Audited as
/// `admin.client.secret_rotated`. Clients without a shared secret are `invalid_request`.
pub(super) async fn rotate_secret(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let db = server.env().sql.as_ref();
    let row = repo::get(db, id).await?.ok_or_else(|| no_such_client(id))?;
    if !uses_secret(&row.metadata.token_endpoint_auth_method) {
        return Err(Error::invalid_request(format!(
            "the client authenticates with '{}', not a shared secret",
            row.metadata.token_endpoint_auth_method
        )));
    }
    let secret =
        crate::secret::Secret::new(crate::runtime::random_token(server.env().rng.as_ref(), 32));
    if !repo::set_secret_hash(db, id, &crate::crypto::token_hash(secret.expose())).await? {
        return Err(no_such_client(id));
    }
    record(
        server,
        req,
        "admin.client.secret_rotated",
        Some(id),
        None,
        json!({}),
    )
    .await;
    Ok(ok(json!({
        "client_id": id,
        "client_secret": secret.expose(),
        "client_secret_expires_at": 0,
    })))
}
