//! Sign-in through OIDC connectors, in the browser: the sign-in page's "Sign in with {name}"
//! links go to `GET /oauth/connectors/{id}/start?request=…`, which sends the person to the
//! IdP (OIDC Core §3.1.2.1); the IdP sends them back to `GET /oauth/connectors/{id}/callback`
//! (the connector's redirect URI), which finishes the login ([`crate::federation::login`]),
//! starts the session, binds the pending authorization request to it (H5) and continues to
//! consent, exactly as a password sign-in does. The vault's sign-in page (a connect link, the
//! connections page) offers the same links with `?continue=<page>` instead: the login then
//! starts the session and goes back to that page. The `state` is also kept in a cookie of the
//! browser that started the login, so a callback opened in another browser (login CSRF) is
//! refused; an `iss` in the callback (RFC 9207) must be the connector's.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use super::authorize::load_pending;
use super::browser::{add_cookie, read_cookie, set_cookie, SESSION_COOKIE};
use super::pages::{error_page, SignInOptions};
use crate::audit::{self, Event};
use crate::context::Context;
use crate::crypto::{ct_eq, token_hash};
use crate::error::Result;
use crate::federation::connector::Connector;
use crate::federation::login::{self, LoginError};
use crate::federation::{connectors, oidc::Refusal};
use crate::paths::{self, endpoint_url};
use crate::request::Params;
use crate::response::redirect;
use crate::store::repo::{auth_requests, sessions};

/// The cookie holding `{state}.{request handle}` of a login in progress.
const LOGIN_COOKIE: &str = "pc_connector";

/// The sign-in page's options for the pending request `handle`: a link per connector, and
/// the password form unless `login.local_passwords` is off.
pub async fn sign_in_options(server: &Context, handle: Option<&str>) -> Result<SignInOptions> {
    match handle {
        Some(handle) => options(server, ("request", handle)).await,
        None => options(server, ("", "")).await,
    }
}

/// The sign-in options of a page of this server that needs a session (the vault's connect
/// page, the connections page): a link per connector that comes back to `path` (a target
/// [`super::login::continue_target`] accepts), and the password form unless switched off.
pub async fn continue_options(server: &Context, path: &str) -> Result<SignInOptions> {
    options(server, ("continue", path)).await
}

/// The options, each connector link carrying `target` (none when its name is empty).
async fn options(server: &Context, target: (&str, &str)) -> Result<SignInOptions> {
    let connectors = if target.0.is_empty() {
        Vec::new()
    } else {
        connectors::buttons(server)
            .await?
            .into_iter()
            .map(|(id, name)| {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair(target.0, target.1)
                    .finish();
                let href = format!(
                    "{}{}/{id}/start?{query}",
                    server.issuer(),
                    paths::CONNECTORS
                );
                (name, href)
            })
            .collect()
    };
    Ok(SignInOptions {
        connectors,
        local_passwords: server.config().login.local_passwords,
    })
}

/// Where a connector login goes once finished: on to consent for a pending authorization
/// request, or back to a page of this server. Kept (as the login's "handle") in the pending
/// login's `request_hash` and in the login cookie; a page is `c:` + base64url(path), which no
/// request handle (base64url only) can look like.
enum Then {
    Consent(String),
    Page(String),
}

impl Then {
    fn handle(&self) -> String {
        match self {
            Then::Consent(handle) => handle.clone(),
            Then::Page(path) => format!("c:{}", crate::crypto::b64(path.as_bytes())),
        }
    }

    /// The target a handle names, if it is (still) an acceptable one.
    fn from_handle(server: &Context, handle: &str) -> Option<Self> {
        match handle.strip_prefix("c:") {
            Some(encoded) => {
                let path = String::from_utf8(crate::crypto::b64_decode(encoded)?).ok()?;
                continue_page(server, &path).map(Then::Page)
            }
            None => Some(Then::Consent(handle.to_owned())),
        }
    }
}

/// `path` when it is a page a sign-in may continue to (the vault's pages).
fn continue_page(server: &Context, path: &str) -> Option<String> {
    super::login::continue_target(&super::issuer_path(server), path).map(|_| path.to_owned())
}

/// `/oauth/connectors/{id}/start` and `/oauth/connectors/{id}/callback` (`rest` is what
/// follows `/oauth/connectors`).
pub async fn handle(server: &Context, req: Request<Bytes>, rest: &str) -> Response<Bytes> {
    if req.method() != Method::GET {
        return error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Open this page with a link.",
        );
    }
    let rest = rest.trim_start_matches('/');
    let (id, step) = rest.split_once('/').unwrap_or((rest, ""));
    let connector = match connectors::load(server, id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Unknown sign-in method",
                "There is no identity provider of that name on this server.",
            )
        }
        Err(e) => return error_page(e.code.status(), "Sign-in failed", &e.description),
    };
    let result = match step {
        "start" => start(server, &req, &connector).await,
        "callback" => callback(server, &req, &connector).await,
        _ => return super::not_found(),
    };
    result.unwrap_or_else(|e| error_page(e.code.status(), "Sign-in failed", &e.description))
}

fn expired() -> Response<Bytes> {
    error_page(
        StatusCode::BAD_REQUEST,
        "Request expired",
        &LoginError::Expired.to_string(),
    )
}

async fn start(server: &Context, req: &Request<Bytes>, c: &Connector) -> Result<Response<Bytes>> {
    let query = Params::from_query(req.uri())?;
    let then = match query.get("continue") {
        Some(path) => match continue_page(server, path) {
            Some(path) => Then::Page(path),
            None => return Ok(expired()),
        },
        None => {
            let handle = query.get("request").unwrap_or_default();
            if load_pending(server, handle).await?.is_none() {
                return Ok(expired());
            }
            Then::Consent(handle.to_owned())
        }
    };
    let handle = then.handle();
    match login::start(server, c, &handle).await {
        Ok((url, state)) => {
            let mut resp = redirect(url.as_str());
            let value = format!("{state}.{handle}");
            add_cookie(
                &mut resp,
                &set_cookie(server, LOGIN_COOKIE, &value, login::LOGIN_TTL_SECS),
            );
            Ok(resp)
        }
        Err(e) => Ok(refused(server, req, c, e, None).await),
    }
}

async fn callback(
    server: &Context,
    req: &Request<Bytes>,
    c: &Connector,
) -> Result<Response<Bytes>> {
    let query = Params::from_query(req.uri())?;
    let state = query.get("state").unwrap_or_default();
    let cookie = read_cookie(server, req.headers(), LOGIN_COOKIE).unwrap_or_default();
    let (cookie_state, handle) = cookie.split_once('.').unwrap_or(("", ""));
    if state.is_empty() || !ct_eq(state.as_bytes(), cookie_state.as_bytes()) {
        return Ok(expired());
    }
    let handle = handle.to_owned();
    if query.get("iss").is_some_and(|iss| iss != c.issuer) {
        let e = LoginError::Refused(Refusal::IdToken("it came from another issuer (iss)"));
        return Ok(refused(server, req, c, e, None).await);
    }
    if let Some(error) = query.get("error") {
        // Spend the pending login: this attempt is over.
        let _ = crate::store::repo::federation::consume_login(
            server.env().sql.as_ref(),
            &token_hash(state),
            server.now(),
        )
        .await;
        let e = LoginError::Refused(Refusal::Denied(crate::text::truncate(error, 64).to_owned()));
        return Ok(refused(server, req, c, e, None).await);
    }
    let code = query.get("code").unwrap_or_default();
    let finished = match login::finish(server, c, state, code).await {
        Ok(f) => f,
        Err(e) => return Ok(refused(server, req, c, e, None).await),
    };
    if !ct_eq(
        finished.request_hash.as_bytes(),
        token_hash(&handle).as_bytes(),
    ) {
        return Ok(expired());
    }
    let pending = match Then::from_handle(server, &handle) {
        Some(Then::Consent(_)) => match load_pending(server, &handle).await? {
            Some((_, pending)) => Some(pending),
            None => return Ok(expired()),
        },
        Some(Then::Page(_)) => None,
        None => return Ok(expired()),
    };
    let now = server.now();
    let session_id = crate::runtime::random_token(server.env().rng.as_ref(), 32);
    let session_hash = token_hash(&session_id);
    let db = server.env().sql.as_ref();
    sessions::insert(
        db,
        &sessions::SessionRow {
            id_hash: session_hash.clone(),
            subject: finished.user.id.clone(),
            auth_time: now,
            expires_at: now + server.config().session_ttl,
        },
    )
    .await?;
    if pending.is_some()
        && !auth_requests::bind_session(db, &token_hash(&handle), &session_hash).await?
    {
        return Ok(expired());
    }
    audit::record(
        server.env(),
        Event {
            action: "login",
            success: true,
            client_id: pending.as_ref().map(|p| p.client_id.as_str()),
            subject: Some(&finished.user.id),
            request: crate::request::request_id(req),
            detail: Some(serde_json::json!({
                "connector": c.id,
                "linked_now": finished.linked_now,
            })),
            ..Default::default()
        },
    )
    .await;
    let next = match Then::from_handle(server, &handle) {
        Some(Then::Page(path)) => {
            let origin = url::Url::parse(server.issuer())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            format!("{origin}{path}")
        }
        _ => format!(
            "{}?{}",
            endpoint_url(server, paths::CONSENT),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("request", &handle)
                .finish()
        ),
    };
    let mut resp = redirect(&next);
    add_cookie(
        &mut resp,
        &set_cookie(
            server,
            SESSION_COOKIE,
            &session_id,
            server.config().session_ttl,
        ),
    );
    add_cookie(&mut resp, &set_cookie(server, LOGIN_COOKIE, "", 0));
    Ok(resp)
}

/// The page for a refused login, and its audit row.
async fn refused(
    server: &Context,
    req: &Request<Bytes>,
    c: &Connector,
    e: LoginError,
    client_id: Option<&str>,
) -> Response<Bytes> {
    let (status, reason) = match &e {
        LoginError::Expired => (StatusCode::BAD_REQUEST, "expired"),
        LoginError::Refused(r @ Refusal::Unavailable(_)) => (StatusCode::BAD_GATEWAY, r.reason()),
        LoginError::Refused(r) => (StatusCode::FORBIDDEN, r.reason()),
        LoginError::Server(err) => (err.code.status(), "server_error"),
    };
    if let LoginError::Server(err) = &e {
        tracing::warn!(connector = %c.id, error = %err.description, "connector login failed");
    }
    audit::record(
        server.env(),
        Event {
            action: "login",
            success: false,
            client_id,
            reason: Some(reason),
            request: crate::request::request_id(req),
            detail: Some(serde_json::json!({ "connector": c.id })),
            ..Default::default()
        },
    )
    .await;
    let mut resp = error_page(status, "Sign-in failed", &e.to_string());
    add_cookie(&mut resp, &set_cookie(server, LOGIN_COOKIE, "", 0));
    resp
}
