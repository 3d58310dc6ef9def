//! Admin API: grants (`/admin/grants`), one per authorization: the code and the refresh-token
//! family descending from it (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2). `GET /admin/grants` finds
//! them by subject and/or client; `POST /admin/grants/{id}/revoke` ends one with every refresh
//! and access token issued under it (RFC 7009 §2.1 semantics, done by the administrator).

use bytes::Bytes;
use http::Request;
use serde_json::{json, Value};

use super::{ok, page, query, record};
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::Params;
use crate::store::repo::grants::{self as repo, GrantFilter, GrantRow};
use crate::text::truncate;

/// Longest subject or client id searched for, bytes.
const MAX_KEY: usize = 2048;

/// The public view of a grant.
pub(crate) fn view(g: &GrantRow) -> Value {
    json!({
        "id": g.id,
        "client_id": g.client_id,
        "subject": g.subject,
        "scope": g.scope,
        "resource": g.resource,
        "created_at": g.created_at,
        "revoked_at": g.revoked_at,
        "active": g.revoked_at.is_none(),
    })
}

/// An optional search key (`subject`, `client_id`), at most [`MAX_KEY`] bytes.
pub(super) fn key(params: &Params, name: &str) -> Result<Option<String>> {
    match params.get(name) {
        Some(v) if v.is_empty() || v.len() > MAX_KEY => Err(Error::invalid_request(format!(
            "'{name}' must be 1 to {MAX_KEY} bytes"
        ))),
        v => Ok(v.map(str::to_owned)),
    }
}

/// `active=true|false` (default false: every grant).
pub(super) fn active_only(params: &Params) -> Result<bool> {
    match params.get("active") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Error::invalid_request("'active' must be 'true' or 'false'")),
    }
}

/// `GET /admin/grants?subject=&client_id=&active=&limit=&offset=`: `{"grants": [...]}`,
/// newest first.
pub(super) async fn list(server: &Context, req: &Request<Bytes>) -> Result<http::Response<Bytes>> {
    let params = query(req)?;
    let (limit, offset) = page(&params, 100)?;
    let f = GrantFilter {
        subject: key(&params, "subject")?,
        client_id: key(&params, "client_id")?,
        active_only: active_only(&params)?,
    };
    let grants = repo::search(server.env().sql.as_ref(), &f, limit, offset).await?;
    Ok(ok(
        json!({ "grants": grants.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// Revokes grant `id` (idempotent) and writes `admin.grant.revoked`; the grant as it is now.
pub(super) async fn revoke_grant(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
    how: &str,
) -> Result<Value> {
    let db = server.env().sql.as_ref();
    let g = repo::get(db, id).await?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!("no grant '{}'", truncate(id, 64)),
        )
    })?;
    repo::revoke(db, id, server.now()).await?;
    record(
        server,
        req,
        "admin.grant.revoked",
        Some(&g.client_id),
        Some(&g.subject),
        json!({ "grant_id": id, "by": how }),
    )
    .await;
    let now = repo::get(db, id).await?.unwrap_or(g);
    Ok(view(&now))
}

/// `POST /admin/grants/{id}/revoke`: 200 with the revoked grant.
pub(super) async fn revoke(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    Ok(ok(revoke_grant(server, req, id, "grant_id").await?))
}
