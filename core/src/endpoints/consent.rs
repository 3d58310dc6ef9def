//! The consent step: `GET` shows what the client asks for, `POST` records the decision. The
//! decision re-validates the client and redirect URI against the client record (R7), is bound
//! to the browser session and single-use (H5), and answers with an authorization response
//! carrying `code` (or `error`), `state` and `iss` (RFC 6749 §4.1.2, RFC 9207).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use super::authorize::{load_pending, PendingRequest};
use super::browser::{self, add_cookie};
use super::pages::{self, error_page, RequestView};
use crate::audit::{self, Event};
use crate::context::Context;
use crate::crypto::token_hash;
use crate::error::{Error, ErrorCode, Result};
use crate::paths::{self, endpoint_url};
use crate::request::Params;
use crate::store::repo::{auth_requests, codes, grants, users};

/// `GET` or `POST /oauth/consent`.
pub async fn handle(server: &Context, req: Request<Bytes>) -> Response<Bytes> {
    let result = match *req.method() {
        Method::GET => show(server, &req).await,
        Method::POST => decide(server, &req).await,
        _ => Err(crate::request::method_not_allowed("GET, POST")),
    };
    result.unwrap_or_else(|e| error_page(e.code.status(), "Authorization failed", &e.description))
}

/// The consent page for this server's endpoints.
pub fn page(server: &Context, view: &RequestView<'_>, username: &str) -> Response<Bytes> {
    let actions = pages::ConsentActions {
        consent: &endpoint_url(server, paths::CONSENT),
        logout: &endpoint_url(server, paths::LOGOUT),
    };
    pages::consent_page(&actions, view, username)
}

fn expired() -> Response<Bytes> {
    error_page(
        StatusCode::BAD_REQUEST,
        "Request expired",
        "This authorization request has expired, was already answered, or belongs to another sign-in. Start again from the application.",
    )
}

async fn show(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let q = Params::from_query(req.uri())?;
    let handle = q.get("request").unwrap_or_default();
    let Some(session) = browser::session(server, req.headers()).await? else {
        return Ok(expired());
    };
    let Some((row, pending)) = load_pending(server, handle).await? else {
        return Ok(expired());
    };
    if row.session_hash.as_deref() != Some(session.id_hash.as_str()) {
        return Ok(expired());
    }
    let client = crate::client_lookup::resolve(server, &pending.client_id)
        .await?
        .ok_or_else(|| Error::invalid_request("the application is no longer registered"))?;
    let granted = grants::granted_scopes(
        server.env().sql.as_ref(),
        &client.client_id,
        &session.subject,
        &pending.resource,
    )
    .await?;
    let username = users::by_id(server.env().sql.as_ref(), &session.subject)
        .await?
        .map(|u| u.username)
        .unwrap_or_else(|| session.subject.clone());
    let (csrf, set_csrf) = browser::csrf_token(server, req.headers());
    let scopes = consentable(server, &session.subject, &pending).await?;
    let agent = agent_of(server, &pending).await?;
    let view = RequestView {
        request: handle,
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
    let mut resp = page(server, &view, &username);
    if let Some(c) = set_csrf {
        add_cookie(&mut resp, &c);
    }
    Ok(resp)
}

async fn decide(server: &Context, req: &Request<Bytes>) -> Result<Response<Bytes>> {
    let form = Params::from_form(req.headers(), req.body())?;
    browser::check_csrf(server, req.headers(), form.get("csrf"))?;
    let handle = form.get("request").unwrap_or_default();
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(Error::invalid_request(
                "decision must be 'approve' or 'deny'",
            ))
        }
    };
    let Some(session) = browser::session(server, req.headers()).await? else {
        return Ok(expired());
    };
    let Some((_, mut pending)) = load_pending(server, handle).await? else {
        return Ok(expired());
    };
    // R7: nothing round-tripped through the browser is trusted; re-check the client record.
    let client = crate::client_lookup::resolve(server, &pending.client_id).await?;
    let still_valid = client.as_ref().is_some_and(|c| {
        c.allows_grant("authorization_code")
            && crate::redirect::matches(&c.metadata.redirect_uris, &pending.redirect_uri)
    });
    // The agent the user is about to let act for them must still be registered.
    match agent_of(server, &pending).await {
        Ok(_) => {}
        Err(e) if e.code == ErrorCode::InvalidRequest => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "Authorization request refused",
                "The agent this request names is no longer registered.",
            ))
        }
        Err(e) => return Err(e),
    }
    if !still_valid {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Authorization request refused",
            "The application's registration changed; its redirect URI is no longer allowed.",
        ));
    }
    let db = server.env().sql.as_ref();
    let now = server.now();
    if !auth_requests::consume(db, &token_hash(handle), &session.id_hash, now).await? {
        return Ok(expired());
    }
    let rid = crate::request::request_id(req);
    if !approve {
        audit::record(
            server.env(),
            Event {
                action: "consent",
                success: false,
                client_id: Some(&pending.client_id),
                subject: Some(&session.subject),
                reason: Some("denied_by_user"),
                request: rid,
                ..Default::default()
            },
        )
        .await;
        let err = Error::new(ErrorCode::AccessDenied, "the user denied the request");
        return Ok(browser::error_redirect(
            server,
            &pending.redirect_uri,
            &err,
            pending.state.as_deref(),
        ));
    }
    // A group-gated resource: only the scopes the person's IdP groups grant there.
    let scopes = consentable(server, &session.subject, &pending).await?;
    if scopes.is_empty() && !pending.scopes.is_empty() {
        audit::record(
            server.env(),
            Event {
                action: "consent",
                success: false,
                client_id: Some(&pending.client_id),
                subject: Some(&session.subject),
                reason: Some("no_group_grants_these_scopes"),
                request: rid,
                ..Default::default()
            },
        )
        .await;
        let err = Error::new(
            ErrorCode::AccessDenied,
            "none of the requested scopes is granted to the user's groups at this resource",
        );
        return Ok(browser::error_redirect(
            server,
            &pending.redirect_uri,
            &err,
            pending.state.as_deref(),
        ));
    }
    pending.scopes = scopes;
    let code = issue_code(server, &pending, &session.subject, session.auth_time).await?;
    audit::record(
        server.env(),
        Event {
            action: "consent",
            success: true,
            client_id: Some(&pending.client_id),
            subject: Some(&session.subject),
            request: rid,
            detail: Some(serde_json::json!({
                "scope": crate::scope::join(&pending.scopes),
                "resource": pending.resource,
                "actor": pending.requested_actor,
            })),
            ..Default::default()
        },
    )
    .await;
    Ok(browser::authorization_redirect(
        server,
        &pending.redirect_uri,
        &[("code", &code)],
        pending.state.as_deref(),
    ))
}

/// The scopes of `pending` that `subject` may consent to: all of them, unless the resource is
/// group-gated (`[[group_scopes]]`, [`crate::federation::groups`]).
pub(super) async fn consentable(
    server: &Context,
    subject: &str,
    pending: &PendingRequest,
) -> Result<Vec<String>> {
    Ok(
        match crate::federation::groups::allowed_scopes(server, subject, &pending.resource).await? {
            Some(allowed) => crate::federation::groups::narrow(&pending.scopes, &allowed),
            None => pending.scopes.clone(),
        },
    )
}

/// The agent a pending request names (`requested_actor`, on-behalf-of), looked up again: an
/// agent removed since the request is an error.
pub(super) async fn agent_of(
    server: &Context,
    pending: &PendingRequest,
) -> Result<Option<crate::clients::Client>> {
    match &pending.requested_actor {
        Some(a) => Ok(Some(
            super::token::on_behalf_of::requested_agent(server, a).await?,
        )),
        None => Ok(None),
    }
}

/// Creates the grant and its authorization code; returns the code (only its hash is stored).
async fn issue_code(
    server: &Context,
    p: &PendingRequest,
    subject: &str,
    auth_time: i64,
) -> Result<String> {
    let db = server.env().sql.as_ref();
    let rng = server.env().rng.as_ref();
    let now = server.now();
    let scope = crate::scope::join(&p.scopes);
    let grant_id = crate::runtime::random_token(rng, 16);
    grants::insert(
        db,
        &grants::GrantRow {
            id: grant_id.clone(),
            client_id: p.client_id.clone(),
            subject: subject.to_owned(),
            scope: scope.clone(),
            resource: Some(p.resource.clone()),
            created_at: now,
            revoked_at: None,
        },
    )
    .await?;
    if let Some(agent) = &p.requested_actor {
        grants::set_actor(db, &grant_id, agent).await?;
    }
    let code = crate::runtime::random_token(rng, 32);
    codes::insert_bound(
        db,
        &codes::CodeRow {
            code_hash: token_hash(&code),
            grant_id,
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            subject: subject.to_owned(),
            scope,
            resource: Some(p.resource.clone()),
            code_challenge: Some(p.code_challenge.clone()),
            code_challenge_method: Some(p.code_challenge_method.clone()),
            auth_time,
            expires_at: now + server.config().code_ttl,
            used_at: None,
            created_at: now,
            redirect_uri_sent: p.redirect_uri_sent,
        },
        p.dpop_jkt.as_deref(),
    )
    .await?;
    Ok(code)
}
