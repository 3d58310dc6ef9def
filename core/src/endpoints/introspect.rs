//! Token introspection (RFC 7662 §2) for authenticated (confidential) clients only. A client
//! learns about a token only if it is the token's client or is listed in the
//! `introspection_clients` of the token's audience (the resource server itself, RFC 7662 §4)
//! (V4); everything else, like every invalid, expired or revoked token, is `{"active": false}`.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::access_token::verify_access_token;
use crate::clients::Client;
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, Result};
use crate::request::{method_not_allowed, Params};
use crate::response::{error_json, json as json_response};
use crate::store::repo::{access, grants, refresh, resources, users};

/// `POST /oauth/introspect`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return error_json(&method_not_allowed("POST"));
    }
    let result = async {
        let params = Params::from_form(req.headers(), req.body())?;
        let client = crate::client_auth::authenticate(server, req.headers(), &params).await?;
        if client.is_public() {
            return Err(Error::invalid_client(
                "introspection requires an authenticated (confidential) client",
            ));
        }
        let token = params.require("token")?;
        introspect(server, &client, token).await
    }
    .await;
    match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => error_json(&e),
    }
}

/// Whether `client` may learn about a token of `token_client` for audience `aud`.
async fn entitled(
    server: &Context,
    client: &Client,
    token_client: &str,
    aud: &str,
) -> Result<bool> {
    if client.client_id == token_client {
        return Ok(true);
    }
    Ok(resources::get(server.env().sql.as_ref(), aud)
        .await?
        .is_some_and(|r| r.introspection_clients.contains(&client.client_id)))
}

/// K4, U1: a token stops being active the moment its client is suspended or deleted, or the
/// user it was issued for is disabled (a local JWT check cannot know; introspection does).
async fn holder_active(server: &Context, client_id: &str, subject: &str) -> Result<bool> {
    if !crate::client_policy::holder_active(server, client_id).await? {
        return Ok(false);
    }
    Ok(!users::by_id(server.env().sql.as_ref(), subject)
        .await?
        .is_some_and(|u| u.disabled))
}

fn inactive() -> Value {
    json!({ "active": false })
}

async fn introspect(server: &Context, client: &Client, token: &str) -> Result<Value> {
    let db = server.env().sql.as_ref();
    let now = server.now();
    if let Some(claims) = verify_access_token(server, token).await? {
        if claims.exp <= now || !entitled(server, client, &claims.client_id, &claims.aud).await? {
            return Ok(inactive());
        }
        if access::is_revoked(db, &claims.jti).await?
            || !holder_active(server, &claims.client_id, &claims.sub).await?
        {
            return Ok(inactive());
        }
        let mut body = json!({
            "active": true,
            "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "nbf": claims.nbf,
            "jti": claims.jti,
        });
        // The delegation chain of an exchanged token (RFC 8693 §4.1).
        if let Some(act) = claims.act {
            body["act"] = act;
        }
        // The agent the token was issued to (docs/mcp-servers.md, "Agent identity").
        if let Some(name) = &claims.agent_name {
            body["agent_name"] = json!(name);
        }
        if let Some(kind) = &claims.client_registration {
            body["client_registration"] = json!(kind);
        }
        // The DPoP key the token is bound to (RFC 9449 §6.2).
        if let Some(cnf) = &claims.cnf {
            body["cnf"] = json!({ "jkt": cnf.jkt });
        }
        return Ok(body);
    }
    if let Some(row) = refresh::get(db, &token_hash(token)).await? {
        let live = row.consumed_at.is_none() && row.expires_at > now;
        let aud = row.resource.clone().unwrap_or_default();
        if !live || !entitled(server, client, &row.client_id, &aud).await? {
            return Ok(inactive());
        }
        if grants::get(db, &row.grant_id)
            .await?
            .is_none_or(|g| g.revoked_at.is_some())
            || !holder_active(server, &row.client_id, &row.subject).await?
        {
            return Ok(inactive());
        }
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": row.scope,
            "client_id": row.client_id,
            "sub": row.subject,
            "aud": row.resource,
            "iss": server.issuer(),
            "exp": row.expires_at,
            "iat": row.created_at,
        }));
    }
    Ok(inactive())
}
