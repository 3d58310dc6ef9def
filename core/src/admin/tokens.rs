//! Admin API: access tokens by `jti` (RFC 9068 §2.2.2 `jti`, RFC 7009 revocation by the
//! administrator). `GET /admin/tokens/{jti}` answers what the store records about a token
//! (grant-issued and exchanged tokens; `client_credentials` tokens are recorded only once
//! revoked). `POST /admin/tokens/revoke` with `{"jti": …}` revokes a recorded token, or with
//! `{"token": "<JWT>"}` any live token this server issued (verified first); the token and
//! everything exchanged from it become inactive at introspection.

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
    Ok(ok(json!({
        "jti": row.jti,
        "client_id": row.client_id,
        "grant_id": row.grant_id,
        "parent_jti": row.parent_jti,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "revoked": revoked,
        "expired": row.expires_at <= server.now(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    token: Option<crate::secret::Secret>,
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
                "send exactly one of 'jti' and 'token'",
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
