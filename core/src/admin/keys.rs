//! Admin API: signing keys (`/admin/keys`): the published keys with their status
//! (`pending`, `active`, `retired`), and rotation with optional pre-publication (RFC 7517
//! JWKS; a new key is published before it signs, retired keys stay published until their
//! tokens expire).

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::json;

use super::{created, ok};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::keys::MAX_PREPUBLISH_SECS;

/// `GET /admin/keys`.
pub(super) async fn list(server: &Context) -> Result<http::Response<Bytes>> {
    let keys = server.keys().list(server.env()).await?;
    Ok(ok(json!({ "keys": keys })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// Seconds the new key is published before it signs (default `key_prepublish_secs`).
    #[serde(default)]
    prepublish_secs: Option<i64>,
}

/// `POST /admin/keys/rotate`, with an optional JSON body `{"prepublish_secs": N}`: 201 with
/// the new key (the key ring audits `key.rotated`).
pub(super) async fn rotate(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: RotateRequest = if req.body().iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        crate::request::json_body(req.headers(), req.body())?
    };
    let prepublish = body
        .prepublish_secs
        .unwrap_or(server.config().key_prepublish_secs);
    if !(0..=MAX_PREPUBLISH_SECS).contains(&prepublish) {
        return Err(Error::invalid_request(format!(
            "prepublish_secs must be between 0 and {MAX_PREPUBLISH_SECS}"
        )));
    }
    let key = server.keys().rotate_with(server.env(), prepublish).await?;
    Ok(created(
        serde_json::to_value(key).unwrap_or_else(|_| json!({})),
    ))
}

/// `POST /admin/rekey`: re-seals every value sealed under a previous master key under the
/// current one (after a master key rotation, see docs/operations.md) and answers the counts.
pub(super) async fn rekey(server: &Context, req: &Request<Bytes>) -> Result<http::Response<Bytes>> {
    let report = crate::maintenance::rekey::run(server).await?;
    let value = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
    super::record(
        server,
        req,
        "admin.rekey",
        None,
        None,
        json!({
            "current_key": report.current_key,
            "resealed": report.total_resealed(),
            "unreadable": report.total_unreadable(),
        }),
    )
    .await;
    Ok(super::ok(value))
}
