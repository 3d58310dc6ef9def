//! The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): form-encoded POST, client
//! authentication, dispatch by `grant_type`, JSON answers with `Cache-Control: no-store` (H1)
//! and an audit event for every token issued or denied.

pub mod authorization_code;
pub mod client_credentials;
pub mod issue;
pub mod refresh;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use crate::audit::{self, Event};
use crate::clients::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::http_util::{error_json, json, method_not_allowed, Params};
use crate::server::Portcullis;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The access token (JWT).
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Granted scope.
    pub scope: String,
    /// A new refresh token, if any.
    pub refresh_token: Option<String>,
    /// The subject, for the audit log.
    pub subject: String,
    /// The access token's `jti`, for the audit log.
    pub jti: String,
    /// The audience.
    pub resource: String,
}

/// `POST /oauth/token`.
pub async fn handle(server: &Portcullis, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return error_json(&method_not_allowed("POST"));
    }
    let rid = super::request_id(&req);
    let params = match Params::from_form(req.headers(), req.body()) {
        Ok(p) => p,
        Err(e) => return error_json(&e),
    };
    let grant_type = params.get("grant_type").unwrap_or_default().to_owned();
    let mut client_id: Option<String> = None;
    let result = async {
        if grant_type.is_empty() {
            return Err(Error::invalid_request("missing parameter 'grant_type'"));
        }
        if !matches!(
            grant_type.as_str(),
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Err(Error::new(
                ErrorCode::UnsupportedGrantType,
                "supported grant types: authorization_code, refresh_token, client_credentials",
            ));
        }
        let client = crate::client_auth::authenticate(server, req.headers(), &params).await?;
        client_id = Some(client.client_id.clone());
        if !client.allows_grant(&grant_type) {
            return Err(Error::new(
                ErrorCode::UnauthorizedClient,
                format!("the client is not registered for the {grant_type} grant"),
            ));
        }
        dispatch(server, &grant_type, &client, &params, rid).await
    }
    .await;
    match result {
        Ok(issued) => {
            audit::record(
                server,
                Event {
                    action: "token.issued",
                    success: true,
                    client_id: client_id.as_deref(),
                    subject: Some(&issued.subject),
                    request_id: rid,
                    detail: Some(serde_json::json!({
                        "grant_type": grant_type,
                        "scope": issued.scope,
                        "resource": issued.resource,
                        "jti": issued.jti,
                    })),
                    ..Default::default()
                },
            )
            .await;
            let mut body = serde_json::json!({
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            });
            if let Some(rt) = issued.refresh_token {
                body["refresh_token"] = rt.into();
            }
            json(StatusCode::OK, &body)
        }
        Err(err) => {
            audit::record(
                server,
                Event {
                    action: "token.denied",
                    success: false,
                    client_id: client_id.as_deref(),
                    reason: Some(err.code.as_str()),
                    request_id: rid,
                    detail: Some(serde_json::json!({ "grant_type": grant_type })),
                    ..Default::default()
                },
            )
            .await;
            error_json(&err)
        }
    }
}

async fn dispatch(
    server: &Portcullis,
    grant_type: &str,
    client: &Client,
    params: &Params,
    rid: Option<&str>,
) -> Result<Issued> {
    match grant_type {
        "authorization_code" => authorization_code::exchange(server, client, params, rid).await,
        "refresh_token" => refresh::exchange(server, client, params, rid).await,
        _ => client_credentials::exchange(server, client, params).await,
    }
}
