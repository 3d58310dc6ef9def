//! The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): form-encoded POST, client
//! authentication, the DPoP proof (RFC 9449 §5), dispatch by `grant_type`, JSON answers with
//! `Cache-Control: no-store` (H1) and an audit event for every token issued or denied.

mod assertion_grant;
pub mod authorization_code;
pub mod client_credentials;
pub mod exchange;
pub mod grant_type;
mod id_jag_policy;
pub mod jwt_bearer;
pub mod mint;
pub mod on_behalf_of;
pub mod refresh;
mod replay;
pub mod workload;

pub use grant_type::GrantType;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use crate::audit::{self, Event};
use crate::clients::Client;
use crate::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::request::{method_not_allowed, Params};
use crate::response::{error_json, json};

pub use crate::grant_types::{GRANT_TYPES, JWT_BEARER, TOKEN_EXCHANGE};

/// Everything a grant handler needs about the request.
pub struct TokenRequest<'a> {
    /// The server.
    pub server: &'a Context,
    /// The authenticated client.
    pub client: &'a Client,
    /// The form parameters.
    pub params: &'a Params,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The request id, for audit events.
    pub rid: Option<&'a crate::request::RequestId>,
    /// Thumbprint of the key of a valid DPoP proof sent with the request (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
    /// The operator's policy for the client, if any ([`crate::client_policy`]).
    pub policy: Option<&'a crate::store::repo::client_policies::ClientPolicy>,
}

/// A successful token response (RFC 6749 §5.1). Its `Debug` shows no token (E3).
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The access token (JWT).
    pub access_token: String,
    /// `Bearer` or `DPoP` (RFC 9449 §5).
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Granted scope.
    pub scope: String,
    /// A new refresh token, if any.
    pub refresh_token: Option<String>,
    /// RFC 8693 `issued_token_type`, for token exchange.
    pub issued_token_type: Option<&'static str>,
    /// The subject, for the audit log.
    pub subject: String,
    /// The access token's `jti`, for the audit log.
    pub jti: String,
    /// The audience.
    pub resource: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("issued_token_type", &self.issued_token_type)
            .field("subject", &self.subject)
            .field("jti", &self.jti)
            .field("resource", &self.resource)
            .finish()
    }
}

impl Issued {
    /// `Bearer`, or `DPoP` when the token is bound to a key.
    pub fn token_type_for(dpop_jkt: Option<&str>) -> &'static str {
        if dpop_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        }
    }
}

/// `POST /oauth/token`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    if req.method() != Method::POST {
        return error_json(&method_not_allowed("POST"));
    }
    let rid = crate::request::request_id(&req);
    let params = match Params::from_form(req.headers(), req.body()) {
        Ok(p) => p,
        Err(e) => return error_json(&e),
    };
    let grant_type = params.get("grant_type").unwrap_or_default().to_owned();
    let mut client_id: Option<String> = None;
    // The client's stored last use, when it is a stored client (written back coarsely).
    let mut last_used: Option<Option<i64>> = None;
    let mut extra_headers: Vec<(http::HeaderName, String)> = Vec::new();
    let result = async {
        if grant_type.is_empty() {
            return Err(Error::invalid_request("missing parameter 'grant_type'"));
        }
        let Some(grant) = GrantType::parse(&grant_type) else {
            return Err(Error::new(
                ErrorCode::UnsupportedGrantType,
                format!("supported grant types: {}", GRANT_TYPES.join(", ")),
            ));
        };
        if grant == GrantType::JwtBearer && workload::is_workload_request(req.headers(), &params) {
            // Workload identity federation: no client authentication; the rule decides.
            let granted = workload::exchange(server, &req, &params, rid).await?;
            client_id = Some(granted.client_id);
            extra_headers = granted.headers;
            return Ok(granted.issued);
        }
        let client = crate::client_auth::authenticate(server, req.headers(), &params).await?;
        client_id = Some(client.client_id.clone());
        if client.kind != crate::clients::ClientKind::MetadataDocument {
            last_used = Some(client.last_used_at);
        }
        let policy = crate::client_policy::load(server, &client.client_id).await?;
        crate::client_policy::check_not_suspended(policy.as_ref())?;
        if !client.allows_grant(grant.as_str()) {
            return Err(Error::new(
                ErrorCode::UnauthorizedClient,
                format!("the client is not registered for the {grant} grant"),
            ));
        }
        let proof = crate::dpop::check_token_request(server, &req, &client).await?;
        extra_headers = proof.response_headers.clone();
        let ctx = TokenRequest {
            server,
            client: &client,
            params: &params,
            headers: req.headers(),
            rid,
            dpop_jkt: proof.jkt.as_deref(),
            policy: policy.as_ref(),
        };
        dispatch(&ctx, grant).await
    }
    .await;
    let mut resp = match result {
        Ok(issued) => {
            if let (Some(id), Some(last)) = (&client_id, last_used) {
                note_use(server, id, last).await;
            }
            audit::record(
                server.env(),
                Event {
                    action: "token.issued",
                    success: true,
                    client_id: client_id.as_deref(),
                    subject: Some(&issued.subject),
                    request: rid,
                    label: Some(grant_type.as_str()),
                    detail: Some(serde_json::json!({
                        "grant_type": grant_type,
                        "scope": issued.scope,
                        "resource": issued.resource,
                        "jti": issued.jti,
                        "token_type": issued.token_type,
                    })),
                    ..Default::default()
                },
            )
            .await;
            let mut body = serde_json::json!({
                "access_token": issued.access_token,
                "token_type": issued.token_type,
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            });
            if let Some(rt) = issued.refresh_token {
                body["refresh_token"] = rt.into();
            }
            if let Some(t) = issued.issued_token_type {
                body["issued_token_type"] = t.into();
            }
            json(StatusCode::OK, &body)
        }
        Err(err) => {
            audit::record(
                server.env(),
                Event {
                    action: "token.denied",
                    success: false,
                    client_id: client_id.as_deref(),
                    reason: Some(err.code.as_str()),
                    request: rid,
                    detail: Some(serde_json::json!({ "grant_type": grant_type })),
                    ..Default::default()
                },
            )
            .await;
            error_json(&err)
        }
    };
    for (name, value) in extra_headers {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Writes the client's last use when the stored one is older than
/// [`crate::store::repo::clients::LAST_USED_GRANULARITY`]: at most one write per client per interval, none otherwise.
/// A failed write is logged; it never fails the token request.
async fn note_use(server: &Context, client_id: &str, last_used_at: Option<i64>) {
    use crate::store::repo::clients as repo;
    let now = server.now();
    if !repo::use_is_news(last_used_at, now) {
        return;
    }
    if let Err(e) = repo::touch(server.env().sql.as_ref(), client_id, now).await {
        tracing::warn!(error = %e, "the client's last use was not recorded");
    }
}

/// Runs the grant: its reads, checks and single-use transitions end in a
/// [`mint::TokenDecision`], which [`mint::mint`] turns into tokens. Token exchange and the JWT
/// bearer grant mint inside their handlers, because their audit events report the result;
/// the refresh grant does, because a rotation lost to a concurrent request is reuse (F3).
async fn dispatch(ctx: &TokenRequest<'_>, grant: GrantType) -> Result<Issued> {
    let decision = match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(ctx).await?,
        GrantType::RefreshToken => return refresh::exchange(ctx).await,
        GrantType::ClientCredentials => client_credentials::exchange(ctx).await?,
        GrantType::TokenExchange => return exchange::exchange(ctx).await,
        GrantType::JwtBearer => return jwt_bearer::exchange(ctx).await,
    };
    mint::mint(ctx.server, ctx.client, &decision).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e3_issued_debug_shows_no_token() {
        let issued = Issued {
            access_token: "eyJ-S3CRET".into(),
            token_type: "Bearer",
            expires_in: 60,
            scope: "mcp:tools".into(),
            refresh_token: Some("rt-S3CRET".into()),
            issued_token_type: None,
            subject: "u1".into(),
            jti: "j1".into(),
            resource: "https://mcp.example/mcp".into(),
        };
        let shown = format!("{issued:?}");
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(shown.contains("mcp:tools"), "{shown}");
    }
}
