//! Admin API: access tokens by `jti` (RFC 9068 §2.2.2 `jti`, RFC 7009 revocation by the
//! administrator). `GET /admin/tokens/{jti}` answers what the store records about a token
//! (grant-issued and exchanged tokens; `client_credentials` tokens are recorded only once
//! revoked). `POST /admin/tokens/revoke` with `{"jti": …}` revokes a recorded token, or with
//! `{"token": "<JWT>"}` any live token this server issued (verified first); the token and
//! everything exchanged from it become inactive at introspection; with
//! `{"refresh_token": …}` the refresh token's whole family (its grant, RFC 9700 §4.14.2) is
//! revoked. `GET /admin/tokens?client_id=&subject=&active=` lists recorded tokens of a client
//! or (through their grants) of a subject.

use bytes::Bytes;
use http::Request;
use serde::Deserialize;
use serde_json::json;

use super::{ok, record};
use crate::access_token::verify_access_token;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::json_body;
use crate::store::repo::access;
use crate::text::truncate;

/// Longest `jti` looked up, bytes.
const MAX_JTI: usize = 256;

fn no_record(jti: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!(
            "no record of token '{}' (client_credentials tokens are recorded only when revoked; \
             revoke those by posting the token itself)",
            truncate(jti, 64)
        ),
    )
}

fn check_jti(jti: &str) -> Result<()> {
    if jti.is_empty() || jti.len() > MAX_JTI {
        return Err(Error::invalid_request(format!(
            "jti must be 1 to {MAX_JTI} bytes"
        )));
    }
    Ok(())
}

/// `GET /admin/tokens/{jti}`.
pub(super) async fn get(server: &Context, jti: &str) -> Result<http::Response<Bytes>> {
    check_jti(jti)?;
    let db = server.env().sql.as_ref();
    let row = access::get(db, jti).await?.ok_or_else(|| no_record(jti))?;
    let revoked = access::is_revoked(db, jti).await?;
    Ok(ok(view(&row, revoked, server.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    token: Option<crate::secret::Secret>,
    #[serde(default)]
    refresh_token: Option<crate::secret::Secret>,
}

/// The public view of a token record.
fn view(row: &access::AccessRecord, revoked: bool, now: i64) -> serde_json::Value {
    json!({
        "jti": row.jti,
        "client_id": row.client_id,
        "grant_id": row.grant_id,
        "parent_jti": row.parent_jti,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "revoked": revoked,
        "expired": row.expires_at <= now,
    })
}

/// Most records [`search`] checks for revocation through their lineage per page.
const SEARCH_PAGE: i64 = 100;

/// `GET /admin/tokens?client_id=&subject=&active=&limit=&offset=`: `{"tokens": [...]}`,
/// latest expiry first; at least one of `client_id` and `subject`. `active=true` keeps only
/// unexpired, unrevoked tokens.
pub(super) async fn search(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let params = super::query(req)?;
    let client_id = super::grants::key(&params, "client_id")?;
    let subject = super::grants::key(&params, "subject")?;
    if client_id.is_none() && subject.is_none() {
        return Err(Error::invalid_request(
            "send 'client_id' or 'subject' (or look one token up at /admin/tokens/{jti})",
        ));
    }
    let active = super::grants::active_only(&params)?;
    let limit = super::int_param(&params, "limit", 1, SEARCH_PAGE)?.unwrap_or(SEARCH_PAGE);
    let offset = super::int_param(&params, "offset", 0, i64::from(i32::MAX))?.unwrap_or(0);
    let db = server.env().sql.as_ref();
    let now = server.now();
    let rows = access::search(
        db,
        client_id.as_deref(),
        subject.as_deref(),
        active.then_some(now),
        limit,
        offset,
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let revoked = access::is_revoked(db, &row.jti).await?;
        if active && revoked {
            continue;
        }
        out.push(view(row, revoked, now));
    }
    Ok(ok(json!({ "tokens": out })))
}

/// `POST /admin/tokens/revoke`: 200 with `{"jti", "revoked": true}`; audited as
/// `admin.token.revoked`.
pub(super) async fn revoke(
    server: &Context,
    req: &Request<Bytes>,
) -> Result<http::Response<Bytes>> {
    let body: RevokeRequest = json_body(req.headers(), req.body())?;
    let db = server.env().sql.as_ref();
    let now = server.now();
    if let Some(rt) = body.refresh_token {
        if body.jti.is_some() || body.token.is_some() {
            return Err(Error::invalid_request(
                "send exactly one of 'jti', 'token' and 'refresh_token'",
            ));
        }
        let row = crate::store::repo::refresh::get(db, &crate::crypto::token_hash(rt.expose()))
            .await?
            .ok_or_else(|| {
                Error::invalid_request("that is not a refresh token this server issued")
            })?;
        let grant =
            super::grants::revoke_grant(server, req, &row.grant_id, "refresh_token").await?;
        return Ok(ok(json!({
            "grant_id": row.grant_id,
            "client_id": row.client_id,
            "revoked": true,
            "grant": grant,
        })));
    }
    let (jti, client_id, subject, exp) = match (body.jti, body.token) {
        (Some(jti), None) => {
            check_jti(&jti)?;
            let row = access::get(db, &jti)
                .await?
                .ok_or_else(|| no_record(&jti))?;
            (jti, row.client_id, None, row.expires_at)
        }
        (None, Some(token)) => {
            let claims = verify_access_token(server, token.expose())
                .await?
                .ok_or_else(|| {
                    Error::invalid_request(
                        "that is not a valid, unexpired access token of this server",
                    )
                })?;
            (claims.jti, claims.client_id, Some(claims.sub), claims.exp)
        }
        _ => {
            return Err(Error::invalid_request(
                "send exactly one of 'jti', 'token' and 'refresh_token'",
            ))
        }
    };
    access::revoke(db, &jti, &client_id, exp, now).await?;
    record(
        server,
        req,
        "admin.token.revoked",
        Some(&client_id),
        subject.as_deref(),
        json!({ "jti": jti }),
    )
    .await;
    Ok(ok(
        json!({ "jti": jti, "client_id": client_id, "revoked": true }),
    ))
}
