//! Token revocation (RFC 7009 §2). The client authenticates (public clients by `client_id`);
//! a refresh token ends its whole family, an access token itself and every token exchanged
//! from it (RFC 8693; `access::is_revoked` follows the lineage) (V2); a token of another
//! client is left alone (V1); `token_type_hint` is only a hint (V3). Unknown tokens answer 200
//! as §2.2 requires, so revocation is no token-validity oracle.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use crate::access_token::verify_access_token;
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, ErrorCode, Result};
use crate::request::{method_not_allowed, Params};
use crate::response::{error_json, json};
use crate::store::repo::{access, grants, refresh};

/// `POST /oauth/revoke`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return error_json(&method_not_allowed("POST"));
    }
    let rid = crate::request::request_id(&req);
    let result = async {
        let params = Params::from_form(req.headers(), req.body())?;
        let client = crate::client_auth::authenticate(server, req.headers(), &params).await?;
        let token = params.require("token")?;
        match params.get("token_type_hint") {
            None | Some("access_token") | Some("refresh_token") => {}
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::UnsupportedTokenType,
                    "token_type_hint must be access_token or refresh_token",
                ))
            }
        }
        let what = revoke(server, &client, token).await?;
        Ok((client, what))
    }
    .await;
    match result {
        Ok((client, what)) => {
            if let Some(kind) = what {
                audit::record(
                    server.env(),
                    Event {
                        action: "token.revoked",
                        success: true,
                        client_id: Some(&client.client_id),
                        request: rid,
                        detail: Some(serde_json::json!({ "token_type": kind })),
                        ..Default::default()
                    },
                )
                .await;
            }
            json(StatusCode::OK, &serde_json::json!({}))
        }
        Err(e) => error_json(&e),
    }
}

/// Revokes `token` if it is one of `client`'s; returns what was revoked.
async fn revoke(server: &Context, client: &Client, token: &str) -> Result<Option<&'static str>> {
    let db = server.env().sql.as_ref();
    let now = server.now();
    // Both lookups run whatever the hint says (V3).
    if let Some(row) = refresh::get(db, &token_hash(token)).await? {
        if row.client_id != client.client_id {
            return Ok(None);
        }
        grants::revoke(db, &row.grant_id, now).await?;
        return Ok(Some("refresh_token"));
    }
    if let Some(claims) = verify_access_token(server, token).await? {
        if claims.client_id != client.client_id {
            return Ok(None);
        }
        access::revoke(db, &claims.jti, &claims.client_id, claims.exp, now).await?;
        return Ok(Some("access_token"));
    }
    Ok(None)
}
