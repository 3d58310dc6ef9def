//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1): validates the request in
//! the order that decides where errors go (client and redirect URI problems are shown at the
//! server, R1/R2; everything after is an error redirect with `state` and `iss`, R8), stores
//! the validated request server-side, and shows the login or consent page.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::browser::{self, add_cookie};
use super::pages::{self, error_page, RequestView};
use super::token::on_behalf_of;
use crate::client_lookup;
use crate::clients::Client;
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, ErrorCode, Result};
use crate::paths::{self, endpoint_url};
use crate::request::{ip_bucket, Params, RemoteAddr};
use crate::store::repo::auth_requests::{self, AuthRequestRow};

/// How long a pending request lives while the user logs in and consents.
pub const PENDING_TTL: i64 = 15 * 60;

/// A validated authorization request, stored until the user decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The client.
    pub client_id: String,
    /// The (exactly matched) redirect URI.
    pub redirect_uri: String,
    /// Granted-to-be scopes.
    pub scopes: Vec<String>,
    /// The resource (audience).
    pub resource: String,
    /// Client state, returned verbatim.
    pub state: Option<String>,
    /// PKCE challenge (S256).
    pub code_challenge: String,
    /// Always `S256`.
    pub code_challenge_method: String,
    /// RFC 9449 §10: thumbprint of the DPoP key the code is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// Whether the request named `redirect_uri` (then the token request must too, R9).
    #[serde(default = "sent_by_default")]
    pub redirect_uri_sent: bool,
    /// The agent the user is asked to let act for them (`requested_actor`, on-behalf-of):
    /// a registered client's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_actor: Option<String>,
}

/// Requests stored before this field existed are treated strictly.
fn sent_by_default() -> bool {
    true
}

/// Where an authorization error goes.
enum Failure {
    /// Shown at the server (no trustworthy redirect URI).
    Page(StatusCode, String),
    /// Redirected to the client (an operator-trusted client), or shown at the server with a
    /// link to the client (anyone else: RFC 9700 §4.11.2, no open redirector, O1).
    Redirect {
        uri: String,
        error: Error,
        state: Option<String>,
        trusted: bool,
    },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Page(e.code.status(), e.description)
    }
}

/// `GET` or `POST /oauth/authorize`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    let params = match *req.method() {
        Method::GET => Params::from_query(req.uri()),
        Method::POST => Params::from_form(req.headers(), req.body()),
        _ => {
            return error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "The authorization endpoint accepts GET and POST.",
            )
        }
    };
    let result = match params {
        Ok(p) => validate(server, &p).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok((pending, client)) => start(server, &req, pending, &client)
            .await
            .unwrap_or_else(|e| {
                error_page(e.code.status(), "Authorization failed", &e.description)
            }),
        Err(Failure::Page(status, msg)) => {
            error_page(status, "Authorization request refused", &msg)
        }
        Err(Failure::Redirect {
            uri,
            error,
            state,
            trusted,
        }) => {
            crate::audit::record(
                server.env(),
                crate::audit::Event {
                    action: "authorize.denied",
                    success: false,
                    reason: Some(error.code.as_str()),
                    request: crate::request::request_id(&req),
                    ..Default::default()
                },
            )
            .await;
            let redirect = browser::error_redirect(server, &uri, &error, state.as_deref());
            if trusted {
                return redirect;
            }
            let href = redirect
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            pages::error_page_with_link(
                StatusCode::BAD_REQUEST,
                "Authorization request refused",
                &format!(
                    "The application's request was refused: {}",
                    error.description
                ),
                "Return to the application",
                href,
            )
        }
    }
}

/// Validates an authorization request.
async fn validate(server: &Context, p: &Params) -> Result<(PendingRequest, Client), Failure> {
    let client_id = p.get("client_id").ok_or_else(|| {
        Failure::Page(
            StatusCode::BAD_REQUEST,
            "The request has no client_id.".into(),
        )
    })?;
    let client = match client_lookup::resolve(server, client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(Failure::Page(
                StatusCode::BAD_REQUEST,
                "The application (client_id) is not known to this server.".into(),
            ))
        }
        Err(e) if e.code == ErrorCode::TemporarilyUnavailable => return Err(e.into()),
        Err(e) => return Err(Failure::Page(StatusCode::BAD_REQUEST, e.description)),
    };
    let policy = crate::client_policy::load(server, &client.client_id).await?;
    if crate::client_policy::check_not_suspended(policy.as_ref()).is_err() {
        return Err(Failure::Page(
            StatusCode::FORBIDDEN,
            "This application has been suspended by the operator of this server.".into(),
        ));
    }
    let trusted = crate::client_policy::operator_trusted(&client, policy.as_ref());
    let redirect_uri_sent = p.get("redirect_uri").is_some();
    let redirect_uri = match p.get("redirect_uri") {
        Some(r) => r.to_owned(),
        None if client.metadata.redirect_uris.len() == 1 => {
            client.metadata.redirect_uris[0].clone()
        }
        None => {
            return Err(Failure::Page(
                StatusCode::BAD_REQUEST,
                "The request has no redirect_uri and the application registered several.".into(),
            ))
        }
    };
    if crate::redirect::is_dangerous_scheme(&redirect_uri)
        || !crate::redirect::matches(&client.metadata.redirect_uris, &redirect_uri)
    {
        return Err(Failure::Page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not registered for this application.".into(),
        ));
    }
    let state = p.get("state").map(str::to_owned);
    let fail = |error: Error| Failure::Redirect {
        uri: redirect_uri.clone(),
        error,
        state: state.clone(),
        trusted,
    };

    match p.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(Error::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
        None => {
            return Err(fail(Error::invalid_request(
                "missing parameter 'response_type'",
            )))
        }
    }
    if p.get("request").is_some() || p.get("request_uri").is_some() {
        return Err(fail(Error::invalid_request(
            "request objects are not supported",
        )));
    }
    if !client.allows_grant("authorization_code") {
        return Err(fail(Error::new(
            ErrorCode::UnauthorizedClient,
            "the client is not registered for the authorization_code grant",
        )));
    }
    crate::pkce::validate_challenge(p.get("code_challenge"), p.get("code_challenge_method"))
        .map_err(fail)?;
    let resource = crate::resource::select(server, p.get("resource"))
        .await
        .map_err(fail)?;
    let scopes =
        crate::resource::select_scopes(p.get("scope"), &resource, &client).map_err(fail)?;
    let dpop_jkt = p.get("dpop_jkt").map(str::to_owned);
    if dpop_jkt.as_deref().is_some_and(|j| !is_thumbprint(j)) {
        return Err(fail(Error::invalid_request(
            "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 §10)",
        )));
    }
    let requested_actor = match p.get(on_behalf_of::REQUESTED_ACTOR) {
        Some(a) => Some(
            on_behalf_of::requested_agent(server, a)
                .await
                .map_err(fail)?
                .client_id,
        ),
        None => None,
    };
    if p.get("prompt") == Some("none") {
        return Err(fail(Error::new(
            ErrorCode::AccessDenied,
            "interaction is required (prompt=none is not supported without prior consent)",
        )));
    }
    Ok((
        PendingRequest {
            client_id: client.client_id.clone(),
            redirect_uri,
            scopes,
            resource: resource.uri,
            state,
            code_challenge: p.get("code_challenge").unwrap_or_default().to_owned(),
            code_challenge_method: "S256".into(),
            dpop_jkt,
            redirect_uri_sent,
            requested_actor,
        },
        client,
    ))
}

/// An RFC 7638 SHA-256 thumbprint: 43 base64url characters.
fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Stores the request and shows the login page, or the consent page when logged in.
async fn start(
    server: &Context,
    req: &Request<Bytes>,
    pending: PendingRequest,
    client: &Client,
) -> Result<Response<Bytes>> {
    let headers = req.headers();
    let handle = crate::runtime::random_token(server.env().rng.as_ref(), 32);
    let now = server.now();
    let session = browser::session(server, headers).await?;
    let row = AuthRequestRow {
        id_hash: token_hash(&handle),
        request: serde_json::to_string(&pending).map_err(|e| Error::server(e.to_string()))?,
        session_hash: session.as_ref().map(|s| s.id_hash.clone()),
        expires_at: now + PENDING_TTL,
        consumed_at: None,
        created_at: now,
    };
    // B3: one caller cannot fill the table. The address is stored only as a hash.
    let ip_bucket = req
        .extensions()
        .get::<RemoteAddr>()
        .map(|a| token_hash(&format!("ip:{}", ip_bucket(a.0))));
    let limits = &server.config().storage;
    let owner = auth_requests::Owner {
        client_id: &client.client_id,
        ip_bucket: ip_bucket.as_deref(),
        max_per_client: limits.max_pending_requests_per_client,
        max_per_ip: limits.max_pending_requests_per_ip,
    };
    if !auth_requests::insert_capped(server.env().sql.as_ref(), &row, &owner, now).await? {
        return Err(Error::new(
            ErrorCode::SlowDown,
            "too many authorization requests are waiting for this client or from this \
             address; finish or abandon one and try again later",
        )
        .with_header(http::header::RETRY_AFTER, PENDING_TTL.to_string()));
    }
    let granted = match &session {
        Some(s) => {
            crate::store::repo::grants::granted_scopes(
                server.env().sql.as_ref(),
                &client.client_id,
                &s.subject,
                &pending.resource,
            )
            .await?
        }
        None => Vec::new(),
    };
    let (csrf, set_csrf) = browser::csrf_token(server, headers);
    let scopes = match &session {
        Some(s) => super::consent::consentable(server, &s.subject, &pending).await?,
        None => pending.scopes.clone(),
    };
    let agent = super::consent::agent_of(server, &pending).await?;
    let view = RequestView {
        request: &handle,
        csrf: &csrf,
        client_name: client.display_name(),
        client_id: &client.client_id,
        redirect_uri: &pending.redirect_uri,
        scopes: &scopes,
        granted: &granted,
        resource: &pending.resource,
        agent: agent
            .as_ref()
            .map(|a| (a.display_name(), a.client_id.as_str())),
    };
    let mut resp = match session {
        Some(s) => {
            let username = crate::store::repo::users::by_id(server.env().sql.as_ref(), &s.subject)
                .await?
                .map(|u| u.username)
                .unwrap_or_else(|| s.subject.clone());
            super::consent::page(server, &view, &username)
        }
        None => pages::login_page_with(
            &endpoint_url(server, paths::LOGIN),
            pages::SignInFor::Authorization {
                request: &handle,
                client_name: client.display_name(),
            },
            &csrf,
            None,
            StatusCode::OK,
            &super::connectors::sign_in_options(server, Some(&handle)).await?,
        ),
    };
    if let Some(c) = set_csrf {
        add_cookie(&mut resp, &c);
    }
    Ok(resp)
}

/// Loads a live pending request by its handle.
pub async fn load_pending(
    server: &Context,
    handle: &str,
) -> Result<Option<(AuthRequestRow, PendingRequest)>> {
    if handle.is_empty() || handle.len() > 128 {
        return Ok(None);
    }
    let Some(row) =
        auth_requests::get_live(server.env().sql.as_ref(), &token_hash(handle), server.now())
            .await?
    else {
        return Ok(None);
    };
    let pending: PendingRequest = serde_json::from_str(&row.request)
        .map_err(|_| Error::server("stored authorization request is unreadable"))?;
    Ok(Some((row, pending)))
}
