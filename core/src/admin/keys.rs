//! Admin API: signing keys (`/admin/keys`): the published keys with their status, and
//! rotation (RFC 7517 JWKS; retired keys stay published until their tokens expire).

use bytes::Bytes;
use serde_json::json;

use super::{created, ok};
use crate::error::Result;
use crate::server::Portcullis;

/// `GET /admin/keys`.
pub(super) async fn list(server: &Portcullis) -> Result<http::Response<Bytes>> {
    let keys = server.keys().list(server.env()).await?;
    Ok(ok(json!({ "keys": keys })))
}

/// `POST /admin/keys/rotate`: 201 with the new key (the key ring audits `key.rotated`).
pub(super) async fn rotate(server: &Portcullis) -> Result<http::Response<Bytes>> {
    let key = server.keys().rotate(server).await?;
    Ok(created(
        serde_json::to_value(key).unwrap_or_else(|_| json!({})),
    ))
}
