//! Admin API: the operator's policy for one client (`/admin/clients/{id}/policy`, `…/suspend`,
//! `…/resume`): whether it may use `client_credentials`, its rate limit and daily token quota,
//! and suspension, which stops issuance at once and makes every token it holds introspect as
//! inactive (K1–K4 in `docs/security.md`). `{id}` is a stored client's id or a client ID
//! metadata document URL (percent-encoded).

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, record};
use crate::client_policy::limits;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::json_body;
use crate::store::repo::client_policies::{self as repo, ClientPolicy};
use crate::text::truncate;

/// `PUT /admin/clients/{id}/policy`: every field; a missing limit means the server default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyBody {
    #[serde(default)]
    pub(crate) client_credentials: bool,
    #[serde(default)]
    pub(crate) rate_limit_per_minute: Option<i64>,
    #[serde(default)]
    pub(crate) daily_token_quota: Option<i64>,
}

/// Checks a policy's limits (0 means none; negative is refused).
pub(crate) fn validate(body: &PolicyBody) -> Result<()> {
    for (name, v) in [
        ("rate_limit_per_minute", body.rate_limit_per_minute),
        ("daily_token_quota", body.daily_token_quota),
    ] {
        if v.is_some_and(|v| !(0..=1_000_000_000).contains(&v)) {
            return Err(Error::invalid_request(format!(
                "'{name}' must be between 0 (no limit) and 1000000000"
            )));
        }
    }
    Ok(())
}

/// Stored clients must exist; metadata document URLs need not (they are never stored).
async fn known(server: &Context, id: &str) -> Result<()> {
    if crate::cimd::is_metadata_document_id(id)
        || crate::store::repo::clients::get(server.env().sql.as_ref(), id)
            .await?
            .is_some()
    {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::NotFound,
        format!("no client '{}'", truncate(id, 255)),
    ))
}

fn view(server: &Context, id: &str, p: Option<&ClientPolicy>) -> Value {
    let effective = limits(&server.config().machine_clients, p);
    json!({
        "client_id": id,
        "client_credentials": p.is_some_and(|p| p.client_credentials),
        "rate_limit_per_minute": p.and_then(|p| p.rate_limit_per_minute),
        "daily_token_quota": p.and_then(|p| p.daily_token_quota),
        "effective_rate_limit_per_minute": effective.per_minute,
        "effective_daily_token_quota": effective.per_day,
        "suspended": p.is_some_and(|p| p.suspended_at.is_some()),
        "suspended_at": p.and_then(|p| p.suspended_at),
    })
}

/// `GET /admin/clients/{id}/policy`.
pub(super) async fn get(server: &Context, id: &str) -> Result<http::Response<Bytes>> {
    known(server, id).await?;
    let p = repo::get(server.env().sql.as_ref(), id).await?;
    Ok(ok(view(server, id, p.as_ref())))
}

/// `PUT /admin/clients/{id}/policy`.
pub(super) async fn put(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
) -> Result<http::Response<Bytes>> {
    let body: PolicyBody = json_body(req.headers(), req.body())?;
    validate(&body)?;
    known(server, id).await?;
    let db = server.env().sql.as_ref();
    repo::put(
        db,
        &ClientPolicy {
            client_id: id.to_owned(),
            client_credentials: body.client_credentials,
            rate_limit_per_minute: body.rate_limit_per_minute,
            daily_token_quota: body.daily_token_quota,
            suspended_at: None,
            updated_at: server.now(),
        },
    )
    .await?;
    let p = repo::get(db, id).await?;
    let v = view(server, id, p.as_ref());
    record(
        server,
        req,
        "admin.client.policy",
        Some(id),
        None,
        v.clone(),
    )
    .await;
    Ok(ok(v))
}

/// `POST /admin/clients/{id}/suspend` (`suspend = true`) or `…/resume`.
pub(super) async fn set_suspended(
    server: &Context,
    req: &Request<Bytes>,
    id: &str,
    suspend: bool,
) -> Result<http::Response<Bytes>> {
    known(server, id).await?;
    let now = server.now();
    repo::set_suspended(server.env().sql.as_ref(), id, suspend.then_some(now), now).await?;
    let action = if suspend {
        "admin.client.suspended"
    } else {
        "admin.client.resumed"
    };
    record(server, req, action, Some(id), None, json!({})).await;
    Ok(no_content())
}
